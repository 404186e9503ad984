"""The paper's SDE for scale-invariant models, in full form and in direction/norm (polar) form.

Time is in SGD steps. With learning rate ``eta(t)`` and weight decay ``lam(t)``:

full:   dW = -eta (grad L(W) + lam W) dt + eta S(W) dB                   (state W, shape (d,))

polar, for each scale-invariant group j (Wbar_j = W_j/|W_j|, G_j = |W_j|^4/eta^2, Sbar = Sigma(Wbar)):
        dWbar_j = -G_j^{-1/2} grad_j L(Wbar) dt + G_j^{-1/2} [Sbar^{1/2} dB]_j - 1/2 G_j^{-1} tr(Sbar_jj) Wbar_j dt
        dG_j    = (-4 lam_e G_j + 2 tr Sbar_jj) dt,   lam_e = eta lam
        (state (Wbar, G_1..G_k, eta_now), shape (d + k + 1,); the last entry records the learning
        rate in force so that at a learning-rate change every G_j is rescaled by
        (eta_old / eta_new)^2 inside the compiled loop, keeping |W_j|^4 = G_j eta^2 continuous).
"""

from typing import NamedTuple

import numba as nb
import numpy as np

from ..caching import disk_cached
from ..path_args import PerPath, per_path
from ..sde import SDE
from ._checks import check_bool, check_groups, check_model, check_real, check_weights
from .schedules import as_schedule, rate_of_path, schedule_value

__all__ = ["sgd_sde", "polar_sde", "polar_state", "full_from_polar", "SGDArgs"]


class SGDArgs(NamedTuple):
    """The ``args`` of :func:`sgd_sde` and :func:`polar_sde` (``sde.args``), read by name in their
    compiled functions. A rate is a step function of time (see
    :func:`~sdesim.normalized.schedules.schedule_value`); a per-path rate has no change times and
    one row of values per path."""

    params: tuple          #: the model's own parameters (``model.params``), handed to its kernels
    lr_times: np.ndarray   #: learning-rate change times (SGD steps)
    lr_values: object      #: learning rates (an array, or ``sdesim.per_path`` rows)
    wd_times: np.ndarray   #: weight-decay change times
    wd_values: object      #: weight-decay rates


def _schedule_args(model, lr, wd):
    return SGDArgs(model.params, *_rate_args(lr, "lr"), *_rate_args(wd, "wd"))


def _rate_args(x, name):
    """``(times, values)`` of a rate: a number, a Schedule, or ``sdesim.per_path(rates)`` (one
    constant positive rate per path: the values become a per-path entry, one row per path)."""
    if isinstance(x, PerPath):
        v = x.values
        if v.ndim != 1:
            raise ValueError(f"per-path {name} must be one number per path (a 1-d array), got shape {v.shape}")
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(f"per-path {name} must be finite and positive")
        return np.empty(0), per_path(v.astype(np.float64)[:, None])
    sched = as_schedule(x, name)
    return sched.times, sched.values


def _cached(model, key, build):
    """Compiled SDE functions per model, so that new rates reuse the compiled kernels."""
    cache = model.__dict__.setdefault("_sde_functions", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def sgd_sde(model, lr, wd):
    """``dW = -eta (grad L + lam W) dt + eta Sigma^{1/2} dB`` as an :class:`sdesim.SDE` (general noise).

    ``lr``/``wd``: numbers, :class:`~sdesim.normalized.Schedule`, or ``sdesim.per_path(rates)``
    (one constant rate per path: a grid of ``(lr, wd)`` pairs in one solve, path ``p`` bitwise as
    a solve with ``rates[p]`` alone). Euler-Maruyama uses the
    matrix-free noise product; the full diffusion (``(d, noise_dim)``) is there for Milstein.
    :func:`sdesim.solve` refuses initial states with a zero-norm group (the direction, hence the
    SDE, is undefined there).
    """
    check_model(model, "sgd_sde")
    args = _schedule_args(model, lr, wd)
    drift, diffusion, product, both, block = _cached(model, "sgd", lambda: _sgd_functions(model))
    sde = SDE(drift, diffusion, dim=model.d, noise_dim=model.noise_dim, noise="general",
              args=args, diffusion_product=product, drift_and_product=both,
              state_check=_full_state_check(model), name=f"sgd_sde({model!r})")
    # models with a block form (the classifier, the MLP): Euler advances blocks of paths with one
    # GEMM per pass (sdesim.runners.block_kernel); None: one path at a time
    sde._euler_increment_block = block
    sde._block_per_path = ("lr_values", "wd_values")  # (the args it reads per path: the rates)
    sde._block_paths = dict(getattr(model, "block_paths", {}))  # (the most paths per block, by precision)
    return sde


def _full_state_check(model):
    offsets = np.asarray(model.group_offsets)

    def state_check(y0s):
        """Every scale-invariant group of every initial state has a positive, finite squared norm."""
        check_groups(y0s, offsets, "y0", rows="path")

    return state_check


#: |Wbar_j| of a polar initial state must lie in [1/POLAR_NORM_SLACK, POLAR_NORM_SLACK]: plain
#: Euler-Maruyama lets it drift (by tens of percent over long coarse solves), so a state carried
#: over from an earlier solve passes, a full-form W or a hand-made state with raw weights does not.
POLAR_NORM_SLACK = 2.0


def _polar_state_check(model):
    offsets = np.asarray(model.group_offsets)
    d, k = model.d, model.n_groups

    def state_check(y0s):
        """Polar initial states: unit-ish directions, ``G_j > 0`` and a positive learning rate."""
        check_groups(y0s[:, :d], offsets, "y0's direction Wbar", rows="path")
        for j, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
            r = np.sqrt(np.einsum("ij,ij->i", y0s[:, a:b], y0s[:, a:b]).astype(np.float64))
            bad = np.flatnonzero((r < 1.0 / POLAR_NORM_SLACK) | (r > POLAR_NORM_SLACK))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"y0's direction Wbar has |Wbar_{j}| = {r[i]:.4g} (path {i}), far from 1; build "
                                 "polar states with polar_state(w0, lr, model=model)")
        G = y0s[:, d:d + k]
        bad = np.argwhere(~(np.isfinite(G) & (G > 0)))
        if bad.size:
            i, j = (int(v) for v in bad[0])
            raise ValueError(f"y0's G_{j} = |W_{j}|^4/eta^2 must be positive and finite, "
                             f"got {float(G[i, j]):g} (path {i})")
        eta = y0s[:, d + k]
        bad = np.flatnonzero(~(np.isfinite(eta) & (eta > 0)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"y0's last entry (the learning rate in force) must be positive, "
                             f"got {float(eta[i]):g} (path {i})")

    return state_check


def _sgd_functions(model):
    d = model.d
    grad, product, factor = model.grad_kernel, model.noise_product_kernel, model.noise_factor_kernel

    @nb.njit(inline="always")
    def drift(t, y, args, out):
        eta = y.dtype.type(schedule_value(t, args.lr_times, args.lr_values))
        lam = y.dtype.type(schedule_value(t, args.wd_times, args.wd_values))
        grad(y, args.params, out)
        for i in range(d):
            out[i] = -eta * (out[i] + lam * y[i])

    @nb.njit(inline="always")
    def diffusion(t, y, args, out):
        eta = y.dtype.type(schedule_value(t, args.lr_times, args.lr_values))
        factor(y, args.params, out)
        _scale_in_place(out, eta)

    @nb.njit(inline="always")
    def noise_product(t, y, args, dB, out):
        eta = y.dtype.type(schedule_value(t, args.lr_times, args.lr_values))
        product(y, args.params, dB, out)
        for i in range(d):
            out[i] *= eta

    fused = getattr(model, "grad_and_noise_product_kernel", None)
    if fused is None:  # models without a shared forward pass: gradient and noise product in turn
        @nb.njit(inline="always")
        def fused(y, params, dB, a, gdw):
            grad(y, params, a)
            product(y, params, dB, gdw)

        fused = disk_cached(fused)  # (compiled on its own when drift_and_noise is checked in Python)

    @nb.njit(inline="always")
    def drift_and_noise(t, y, args, dB, a, gdw):
        # one schedule lookup per rate per step (each lookup reads arrays out of args)
        eta = y.dtype.type(schedule_value(t, args.lr_times, args.lr_values))
        lam = y.dtype.type(schedule_value(t, args.wd_times, args.wd_values))
        fused(y, args.params, dB, a, gdw)
        for i in range(d):
            a[i] = -eta * (a[i] + lam * y[i])
            gdw[i] *= eta

    return drift, diffusion, noise_product, drift_and_noise, _block_function(model)


def _scale_in_place(out, c):
    """``out *= c`` for a 2-d array: NumPy's when interpreted (the functions' check before a solve
    runs them as Python: a loop over a dense ``(d, noise_dim)`` factor took 0.13 s for the digits
    classifier), loops when compiled (the same products)."""
    out *= c


@nb.extending.overload(_scale_in_place, inline="always")
def _scale_in_place_compiled(out, c):
    def impl(out, c):
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] *= c
    return impl


def _block_function(model):
    """The Euler increment ``A h + G dW`` for a block of paths (rows of ``Y``, ``dB``, ``out``; row
    ``q`` is path ``paths[q]``, whose own rates are read where they are per path) from the model's
    ``combined_block_kernel``; None for models without one."""
    combined = getattr(model, "combined_block_kernel", None)
    if combined is None:
        return None
    d = model.d

    @nb.njit(fastmath=False)
    def euler_increment_block(t, h, Y, args, paths, dB, out):
        # -h eta (grad L + lam Y) + eta S dB, the gradient and the noise product in one weighted sum
        P = Y.shape[0]
        real = Y.dtype.type
        a, b, decay = np.empty(P, Y.dtype), np.empty(P, Y.dtype), np.empty(P, Y.dtype)
        for q in range(P):
            eta = real(rate_of_path(t, args.lr_times, args.lr_values, paths[q]))
            lam = real(rate_of_path(t, args.wd_times, args.wd_values, paths[q]))
            a[q], b[q], decay[q] = -h * eta, eta, h * eta * lam
        combined(Y, args.params, dB, a, b, out)
        for q in range(P):
            for i in range(d):
                out[q, i] -= decay[q] * Y[q, i]

    return euler_increment_block


def polar_sde(model, lr, wd, *, project=False):
    """The direction/norm SDE; state ``(Wbar, G_1..G_k, eta_now)``, shape ``(d + k + 1,)``
    for a model with ``k`` scale-invariant groups.

    ``project=True`` maps each group of ``Wbar`` back to its unit sphere after every step
    (plain EM lets ``|Wbar_j|`` drift by O(dt) per unit time). Build the initial state with
    :func:`polar_state`, map back with :func:`full_from_polar`. :func:`sdesim.solve` refuses
    initial states with a zero-norm direction group, ``|Wbar_j|`` far from 1, ``G_j <= 0`` or a
    learning-rate entry ``<= 0``.
    """
    check_model(model, "polar_sde")
    project = check_bool(project, "project")
    args = _schedule_args(model, lr, wd)
    drift, diffusion, product, on_step = _cached(model, ("polar", project),
                                                 lambda: _polar_functions(model, project))
    return SDE(drift, diffusion, dim=model.d + model.n_groups + 1, noise_dim=model.noise_dim, noise="general",
               args=args, diffusion_product=product, projection=on_step,
               state_check=_polar_state_check(model), name=f"polar_sde({model!r}, project={project})")


def _polar_functions(model, project):
    d, n, k = model.d, model.noise_dim, model.n_groups
    grad, product, trace = model.grad_kernel, model.noise_product_kernel, model.noise_trace_kernel
    model_factor = model.noise_factor_kernel
    offsets = np.asarray(model.group_offsets, dtype=np.int64)

    @nb.njit(fastmath=False)
    def drift(t, y, args, out):
        eta = y.dtype.type(schedule_value(t, args.lr_times, args.lr_values))
        lam = y.dtype.type(schedule_value(t, args.wd_times, args.wd_values))
        wb = y[:d]
        tr = np.empty(k)
        trace(wb, args.params, tr)
        grad(wb, args.params, out[:d])
        for j in range(k):
            G = y[d + j]
            rg = 1.0 / np.sqrt(G)
            for i in range(offsets[j], offsets[j + 1]):
                out[i] = -rg * out[i] - 0.5 * tr[j] / G * wb[i]
            out[d + j] = -4.0 * eta * lam * G + 2.0 * tr[j]
        out[d + k] = 0.0

    @nb.njit(fastmath=False)
    def noise_product(t, y, args, dB, out):
        product(y[:d], args.params, dB, out[:d])
        for j in range(k):
            rg = 1.0 / np.sqrt(y[d + j])
            for i in range(offsets[j], offsets[j + 1]):
                out[i] *= rg
        for j in range(k + 1):
            out[d + j] = 0.0

    @nb.njit(fastmath=False)
    def diffusion(t, y, args, out):
        model_factor(y[:d], args.params, out[:d])
        for j in range(k):
            rg = 1.0 / np.sqrt(y[d + j])
            for i in range(offsets[j], offsets[j + 1]):
                for b in range(n):
                    out[i, b] *= rg
        for j in range(k + 1):
            for b in range(n):
                out[d + j, b] = 0.0

    @nb.njit(fastmath=False)
    def on_step(t, y, args):
        eta = schedule_value(t, args.lr_times, args.lr_values)
        if eta != y[d + k]:
            ratio = y[d + k] / eta
            for j in range(k):
                y[d + j] *= ratio * ratio
            y[d + k] = eta
        if project:
            for j in range(k):
                r = 0.0
                for i in range(offsets[j], offsets[j + 1]):
                    r += y[i] * y[i]
                r = np.sqrt(r)
                for i in range(offsets[j], offsets[j + 1]):
                    y[i] /= r

    return drift, diffusion, noise_product, on_step


def _offsets(model, d):
    return np.array([0, d]) if model is None else np.asarray(check_model(model, "the model argument").group_offsets)


def polar_state(w0, lr, t0=0.0, model=None):
    """Polar initial state ``(w0_j/|w0_j|, |w0_j|^4/eta^2 for each group j, eta)`` from full
    parameters ``w0`` (shape (d,) or (P, d)), ``eta = lr(t0)``; ``model`` gives the groups
    (default: one group). A zero-norm group is refused (its direction is undefined)."""
    d = (np.shape(w0)[-1] if np.ndim(w0) else 0) if model is None else check_model(model, "polar_state").d
    w0 = check_weights(w0, d, "w0")
    eta = float(as_schedule(lr, "lr")(check_real(t0, "t0")))
    offsets = _offsets(model, d)
    check_groups(w0, offsets, "w0")
    wbar = np.empty_like(w0)
    G = []
    for j, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        r = np.linalg.norm(w0[..., a:b], axis=-1, keepdims=True)
        wbar[..., a:b] = w0[..., a:b] / r
        Gj = r**4 / eta**2
        if not np.all(np.isfinite(Gj) & (Gj > 0)):
            raise ValueError(f"G_{j} = |w0_{j}|^4/eta^2 is outside the float64 range for group {j} of w0 "
                             "(norm too large or too small); rescale w0 (the model is scale-invariant)")
        G.append(Gj)
    G = np.concatenate(G, axis=-1)
    return np.concatenate([wbar, G, np.full_like(G[..., :1], eta)], axis=-1)


def full_from_polar(y, model=None):
    """``W_j = Wbar_j |W_j|`` with ``|W_j| = (G_j eta^2)^{1/4}`` from polar states ``(..., d + k + 1)``;
    ``model`` gives the groups (default: one group). Non-finite states (failed paths) map to NaN."""
    k = 1 if model is None else check_model(model, "full_from_polar").n_groups
    y = np.asarray(y)
    if y.dtype.kind not in "iuf":
        raise TypeError(f"y must be a real array of polar states, got dtype {y.dtype}")
    need = 3 if model is None else model.d + k + 1
    if y.ndim < 1 or (y.shape[-1] != need if model is not None else y.shape[-1] < need):
        raise ValueError(f"y must hold polar states of length {'>= 3' if model is None else need} "
                         f"(direction, {k} G, eta) in its last axis, got shape {y.shape}")
    d = y.shape[-1] - k - 1
    offsets = _offsets(model, d)
    w = np.array(y[..., :d], dtype=np.float64)
    eta = y[..., d + k]
    for j, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        w[..., a:b] *= ((y[..., d + j] * eta**2) ** 0.25)[..., None]
    return w
