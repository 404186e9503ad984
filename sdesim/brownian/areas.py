"""Areas of a step read from the Brownian tree's sub-points (compiled helpers for the kernels).

* :func:`levy_area`: the Levy area ``A_ab`` between components (general-noise Milstein).
* :func:`space_time_area`: the space-time Levy area ``H = (1/h) int_s^t (W(u) - W(s)) du - dW / 2``
  of each component (the strong order 1.5 schemes). ``H`` has mean 0 and variance ``h / 12`` and is
  independent of ``dW``; ``int_s^t (W(u) - W(s)) du = h (dW / 2 + H)`` is Kloeden and Platen's ``I_(1,0)``.

Both are those of the polygon through the step's sub-points (the same path at ``p`` equal pieces):
the space-time area of the polygon differs from the path's by the mean of the Brownian bridge over
each piece, an independent error of variance ``h / (12 p**2)``.
"""

import numba as nb

__all__ = ["levy_area", "space_time_area"]


@nb.njit(cache=True, fastmath=False)
def levy_area(w_start, buf, first, last, w_end, m, area):
    """Discrete Levy area of the polygon ``w_start, buf[first], ..., buf[last - 1], w_end``.

    ``area[a, b] = 1/2 sum_l ((X_a(l) - X_a(0)) dX_b(l) - (X_b(l) - X_b(0)) dX_a(l))``, shape
    ``(m, m)``. With ``p`` pieces of width ``h / p`` its mean-square error against the true
    Levy area is ``O(h**2 / p)``, which is ``O(h**3)`` (strong order 1) when ``p >= 1 / h``.
    Cost ``O(p m**2)``.
    """
    for a in range(m):
        for b in range(m):
            area[a, b] = 0.0
    n_pts = last - first
    for piece in range(n_pts + 1):
        for a in range(m):
            xa_prev = w_start[a] if piece == 0 else buf[first + piece - 1, a]
            xa_next = w_end[a] if piece == n_pts else buf[first + piece, a]
            da = xa_next - xa_prev
            ra = xa_prev - w_start[a]
            for b in range(a + 1, m):
                xb_prev = w_start[b] if piece == 0 else buf[first + piece - 1, b]
                xb_next = w_end[b] if piece == n_pts else buf[first + piece, b]
                area[a, b] += 0.5 * (ra * (xb_next - xb_prev) - (xb_prev - w_start[b]) * da)
    for a in range(m):
        for b in range(a + 1, m):
            area[b, a] = -area[a, b]


@nb.njit(cache=True, fastmath=False)
def space_time_area(w_start, t_start, buf, first, last, t_grid, delta, w_end, t_end, m, out):
    """``out[0, c]``: the space-time Levy area of component ``c`` of the polygon
    ``(t_start, w_start), (t_grid + j delta, buf[j]) for j = first .. last - 1, (t_end, w_end)``
    (``h = t_end - t_start > 0``): ``(1/h) int (W - w_start) du - (w_end - w_start) / 2``, the
    integral by the trapezoid rule, exact for the polygon."""
    h = t_end - t_start
    for c in range(m):
        acc = 0.0
        t_prev = t_start
        x_prev = 0.0
        for j in range(first, last + 1):
            if j < last:
                t_next = t_grid + j * delta
                x_next = buf[j, c] - w_start[c]
            else:
                t_next = t_end
                x_next = w_end[c] - w_start[c]
            acc += 0.5 * (t_next - t_prev) * (x_prev + x_next)
            t_prev = t_next
            x_prev = x_next
        out[0, c] = acc / h - 0.5 * x_prev
