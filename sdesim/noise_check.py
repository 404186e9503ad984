"""Numerical check, at one state, that an SDE's diffusion has the noise structure it declares.

Milstein is strong order 1 only when the declared structure holds; otherwise it silently drops
to order 0.5 (and Euler on ``noise="additive"`` likewise). What is checked at ``(t, y)``:

* ``"diagonal"``: ``d g_i / d y_l == 0`` for ``l != i`` (``g_i`` depends on ``y_i`` only);
* ``"additive"``: ``d g_ik / d y_l == 0`` for all ``i, k, l`` (``g`` does not depend on ``y``);
* ``"commutative"``: ``L^j g_ik == L^k g_ij`` for all ``i, j, k``, ``L^j = sum_l g_lj d/dy_l``.

``"scalar"`` and ``"general"`` need no check. Derivatives come from ``sde.diffusion_derivative``
when given (not for diagonal noise, whose derivative holds only ``d g_i / d y_i``), else from
central differences: ``2 * dim`` diffusion evaluations. The commutative test then costs
``O(dim**2 noise_dim**2)`` flops. The check is skipped (a reason string is returned) when that
work, counted as below, exceeds :data:`NOISE_CHECK_LIMIT`, or when the diffusion is not finite
at the perturbed states (a state on the boundary of the SDE's domain).

Tolerance rule (one for all cases). Each derivative entry ``D_ikl = d g_ik / d y_l`` is known to
``delta * (|D_ikl| + |g_ik| / s_l)`` with ``s_l = max(1, |y_l|)``, where ``delta = eps**(2/3)``
for central differences with step ``h_l = eps**(1/3) s_l`` (rounding ``eps |g| / h`` plus
truncation ``h**2 |g'''| / 6``, both ``~ eps**(2/3)`` for a function varying on the scale
``s_l``) and ``delta = eps`` for an exact derivative. A checked quantity ``Q = sum c D`` has the
scale ``sum |c| (|D| + |g| / s)``; a violation is ``|Q| > C * delta * S``, with ``S`` the largest
scale over all checked quantities (so badly scaled but valid entries are not refused) and
``C = 1e3``, which covers the unit constants of the error model: evaluation error of ``g`` of
up to ~100 ulps, a third derivative a few times larger than the model, and rounding in the sums.
``C * delta`` is still ``~ 4e-8`` (FD) or ``~ 2e-13`` (exact), so real violations, of relative
size O(1), are found.
"""

import numpy as np

from .sde import derivative_shape, diffusion_shape

__all__ = ["NOISE_CHECK_LIMIT", "check_noise_structure"]

#: Largest work the check spends, in floating-point values: the derivative tensor's size
#: (diffusion entries x dim), times noise_dim for the commutative products. Above it: skipped.
NOISE_CHECK_LIMIT = 20_000_000

_EPS = np.finfo(np.float64).eps
_C = 1e3  # see the module docstring


def check_noise_structure(sde, t, y, dtype=np.float64) -> str:
    """Check at ``(t, y)`` that ``sde``'s diffusion has the declared ``sde.noise`` structure.

    Returns ``"checked"``, or a string starting ``"skipped"``/``"not needed"`` saying why not.
    Raises ``ValueError`` naming the SDE, the worst offending indices and the relative size of
    the violation when the structure does not hold. The check runs in float64 whatever
    ``dtype`` the solve uses (``dtype`` is accepted for symmetry with :meth:`SDE.check_at`).
    """
    noise, dim, m = sde.noise, sde.dim, sde.noise_dim
    if noise in ("scalar", "general"):
        return f"not needed for noise={noise!r}"
    n_g = int(np.prod(diffusion_shape(noise, dim, m)))
    work, formula = n_g * dim, ("dim * dim" if noise == "diagonal" else "dim * noise_dim * dim")
    if noise == "commutative":
        work, formula = work * m, formula + " * noise_dim"
    if work > NOISE_CHECK_LIMIT:
        return f"skipped: {formula} = {work} above NOISE_CHECK_LIMIT ({NOISE_CHECK_LIMIT})"
    t, y = float(t), np.array(y, dtype=np.float64).reshape(dim)
    g = _diffusion(sde, t, y)
    if g is None:
        raise ValueError(f"diffusion of {sde.name!r} is not finite at t={t}, y={y}")
    s = np.maximum(1.0, np.abs(y))
    if sde.diffusion_derivative is not None and noise != "diagonal":
        D = np.full(derivative_shape(noise, dim, m), np.nan)
        sde.diffusion_derivative(t, y.copy(), sde.args, D)
        if not np.all(np.isfinite(D)):
            raise ValueError(f"diffusion_derivative of {sde.name!r} is not finite at t={t}")
        delta, how = _EPS, "diffusion_derivative"
    else:
        D = np.empty(g.shape + (dim,))
        for l in range(dim):  # central differences, h_l = eps**(1/3) * s_l
            h = _EPS ** (1 / 3) * s[l]
            yp, ym = y.copy(), y.copy()
            yp[l] += h
            ym[l] -= h
            gp, gm = _diffusion(sde, t, yp), _diffusion(sde, t, ym)
            if gp is None or gm is None:
                return f"skipped: diffusion of {sde.name!r} not finite at y[{l}] +- {h:.3g}"
            D[..., l] = (gp - gm) / ((yp[l] - y[l]) + (y[l] - ym[l]))  # the steps actually taken
        delta, how = _EPS ** (2 / 3), "central differences"
    U = np.abs(D) + np.abs(g)[..., None] / s  # the error model's scale of each derivative entry
    if noise == "diagonal":
        Q, S = D * (1.0 - np.eye(dim)), U  # Q[i, l] = d g_i / d y_l, l != i
        what = ("g[{0}] depends on y[{1}] (d g[{0}]/d y[{1}] = {v:.3g}); "
                "noise='diagonal' needs g_i to depend on y_i only")
        fix = "declare noise='commutative' if L^j g_k = L^k g_j holds, else noise='general'"
    elif noise == "additive":
        Q, S = D, U
        what = ("g[{0}, {1}] depends on y[{2}] (d g[{0}, {1}]/d y[{2}] = {v:.3g}); "
                "noise='additive' needs g independent of y")
        fix = "declare noise='commutative' or noise='general' (noise='diagonal' if g is diagonal)"
    else:
        A = D @ g  # A[i, k, j] = sum_l D[i, k, l] g[l, j] = L^j g_ik
        Q = A - A.transpose(0, 2, 1)
        SA = U @ np.abs(g)
        S = SA + SA.transpose(0, 2, 1)
        what = ("(L^j g_k)[i] != (L^k g_j)[i] at i={0}, j={2}, k={1} (difference {v:.3g}); "
                "noise='commutative' needs L^j g_k = L^k g_j, L^j = sum_l g_lj d/dy_l")
        fix = "declare noise='general' (Milstein then simulates the Levy area)"
    scale = float(np.max(S, initial=0.0))
    worst = np.unravel_index(int(np.argmax(np.abs(Q))), Q.shape)
    v = float(Q[worst])
    if abs(v) > _C * delta * scale + np.finfo(np.float64).tiny:
        raise ValueError(
            f"SDE {sde.name!r} declares noise={noise!r}, but at t={t} its diffusion does not have "
            f"that structure: {what.format(*worst, v=v)}. The violation is {abs(v) / scale:.3g} of the "
            f"size of the terms (tolerance {_C * delta:.2g}, derivatives by {how}); with the wrong "
            f"structure Milstein (Euler-Maruyama for additive noise) silently drops to strong order 0.5. "
            f"Fix: {fix}.")
    return "checked"


def _diffusion(sde, t, y):
    """``g(t, y)`` as a float64 array, or ``None`` when it is not finite (exceptions propagate)."""
    out = np.full(diffusion_shape(sde.noise, sde.dim, sde.noise_dim), np.nan)
    sde.diffusion(t, y.copy(), sde.args, out)
    return out if np.all(np.isfinite(out)) else None
