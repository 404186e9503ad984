"""Discrete SGD's compiled loop, one kernel per model kind: the per-model pieces (draws, stochastic
gradient, evaluation) and the time loop with its geometry records and stop flag (Ctrl-C)."""

import numba as nb
import numpy as np

from ..caching import use_disk_cache
from .models import normalize_groups
from .schedules import schedule_value
from .sgd_random import TAG_BATCH, TAG_NOISE, _draw_batch, _fill_normals

__all__ = ["STOP_POLL"]

#: Sub-steps between two looks at the stop flag (Ctrl-C) within a run (a power of two minus one).
STOP_POLL = 1023


# ----------------------------------------------------------------------------- per-model pieces
def _gaussian_pieces(model):
    """Stochastic gradient ``grad L + S z`` (sphere model), its workspace and the loss."""
    grad, product, loss = model.grad_kernel, model.noise_product_kernel, model.loss_kernel

    @nb.njit
    def alloc(info):
        m, d = info[3], info[4]
        return np.empty(m), np.empty(m), np.empty(d)

    @nb.njit
    def draws(k0, k1, run, sub, two, info, ws):
        z1, z2, _ = ws
        m = info[3]
        _fill_normals(k0, k1, TAG_NOISE[0], m, sub, run, z1)
        if two:
            _fill_normals(k0, k1, TAG_NOISE[1], m, sub, run, z2)

    @nb.njit
    def stoch_grad(w, params, k0, k1, run, sub, two, r1, r2, info, g, ws):
        z1, z2, tmp = ws
        draws(k0, k1, run, sub, two, info, ws)
        if two:
            for i in range(z1.size):  # r1 (grad + S z1) + r2 (grad + S z2), r1 + r2 = 1
                z1[i] = r1 * z1[i] + r2 * z2[i]
        grad(w, params, g)
        product(w, params, z1, tmp)
        for i in range(g.size):
            g[i] += tmp[i]

    @nb.njit
    def evaluate(w, params, ev):
        return loss(w, params), np.nan, np.nan

    return alloc, draws, stoch_grad, evaluate


def _data_pieces(model):
    """Minibatch gradient from ``B`` (or ``2B`` under SVAG) drawn rows, workspace, and
    full-data loss/accuracy for the records."""
    minibatch, logits = model.minibatch_grad_kernel, model._logits

    @nb.njit
    def alloc(info):
        n, B = info[0], info[1]
        return np.empty(2 * B, np.int64), np.empty(2 * B), np.zeros(n, np.bool_)

    @nb.njit
    def draws(k0, k1, run, sub, two, info, ws):
        idx, _, mark = ws
        n, B, replace = info[0], info[1], info[2] != 0
        _draw_batch(k0, k1, TAG_BATCH[0], sub, run, n, B, replace, idx[:B], mark)
        if two:
            _draw_batch(k0, k1, TAG_BATCH[1], sub, run, n, B, replace, idx[B:], mark)

    @nb.njit
    def stoch_grad(w, params, k0, k1, run, sub, two, r1, r2, info, g, ws):
        idx, c, _ = ws
        B = info[1]
        draws(k0, k1, run, sub, two, info, ws)
        if two:
            for b in range(B):
                c[b] = r1 / B
                c[B + b] = r2 / B
            minibatch(w, params, idx, c, g)
        else:
            for b in range(B):
                c[b] = 1.0 / B
            minibatch(w, params, idx[:B], c[:B], g)

    @nb.njit
    def _ce_acc(wn, params, X, y):
        Z = logits(wn, params, X)
        n, K = Z.shape
        loss = 0.0
        hits = 0
        for i in range(n):
            zmax = Z[i, 0]
            best = 0
            for k in range(1, K):
                if Z[i, k] > zmax:
                    zmax = Z[i, k]
                    best = k
            total = 0.0
            for k in range(K):
                total += np.exp(Z[i, k] - zmax)
            loss += zmax + np.log(total) - Z[i, y[i]]
            hits += best == y[i]
        return loss / n, hits / n

    @nb.njit
    def evaluate(w, params, ev):
        X, y, Xt, yt = ev
        wn, _ = normalize_groups(w, params.offsets)
        loss, acc = _ce_acc(wn, params, X, y)
        tacc = np.nan
        if yt.size > 0:
            tacc = _ce_acc(wn, params, Xt, yt)[1]
        return loss, acc, tacc

    return alloc, draws, stoch_grad, evaluate


# ----------------------------------------------------------------------------- the kernel
# Model-independent pieces live at module level (compiled once, cached on disk); the kernel
# itself is a closure over the model's compiled gradient, so it is built once per model class.
@nb.njit(cache=True)
def _record_geometry(q, run, w, prev, has_prev, eta, offsets, store_iter, norms, eta_eff, angle, iters):
    """Group norms, eta_eff, the angle to ``prev`` (one step earlier) and the iterate at record ``q``."""
    for j in range(offsets.size - 1):
        a, b = offsets[j], offsets[j + 1]
        r = 0.0
        for i in range(a, b):
            r += w[i] * w[i]
        r = np.sqrt(r)
        norms[q, run, j] = r
        eta_eff[q, run, j] = eta / (r * r)
        if has_prev:
            rp = 0.0
            for i in range(a, b):
                rp += prev[i] * prev[i]
            rp = np.sqrt(rp)
            dm = 0.0
            dp = 0.0
            for i in range(a, b):  # angle = 2 atan2(|u - v|, |u + v|): accurate for small angles
                u = w[i] / r
                v = prev[i] / rp
                dm += (u - v) * (u - v)
                dp += (u + v) * (u + v)
            angle[q, run, j] = 2.0 * np.arctan2(np.sqrt(dm), np.sqrt(dp))
        else:
            angle[q, run, j] = np.nan
    if store_iter:
        for i in range(w.size):
            iters[q, run, i] = w[i]


@nb.njit(cache=True)
def _mark_failed(q, run, offsets, do_eval, store_iter, norms, eta_eff, angle, loss, acc, tacc, iters):
    """NaN in every record of ``run`` from ``q`` on."""
    for qq in range(q, norms.shape[0]):
        for j in range(offsets.size - 1):
            norms[qq, run, j] = np.nan
            eta_eff[qq, run, j] = np.nan
            angle[qq, run, j] = np.nan
        if do_eval:
            loss[qq, run] = np.nan
            acc[qq, run] = np.nan
            tacc[qq, run] = np.nan
        if store_iter:
            for i in range(iters.shape[2]):
                iters[qq, run, i] = np.nan


@nb.njit(cache=True)
def _healthy(w, offsets):
    """Every group finite with a positive norm."""
    for j in range(offsets.size - 1):
        r = 0.0
        for i in range(offsets[j], offsets[j + 1]):
            r += w[i] * w[i]
        if not (np.isfinite(r) and r > 0.0):
            return False
    return True


@nb.njit(cache=True)
def _update(w, v, g, es, lam, mom):
    """Plain: ``w <- (1 - es lam) w - es g``; heavy ball: ``v <- a v + g + lam w``, ``w <- w - es v``."""
    if mom == 0.0:
        decay = 1.0 - es * lam
        for i in range(w.size):
            w[i] = decay * w[i] - es * g[i]
    else:
        for i in range(w.size):
            v[i] = mom * v[i] + g[i] + lam * w[i]
            w[i] -= es * v[i]


def _build_kernel(alloc, stoch_grad, evaluate):
    """One compiled loop for every model kind: runs ``lo..hi-1``, steps in a compiled loop.
    Returns early (results unused) once ``stop[0] != 0``: checked before each run, every
    ``STOP_POLL + 1`` sub-steps and after each full-data evaluation."""

    @nb.njit(nogil=True)
    def kernel(w0s, l, r1, r2, mom, rec, lrT, lrV, wdT, wdV, k0, k1, params, info, offsets, ev,
               do_eval, store_iter, norms, eta_eff, angle, loss, acc, tacc, iters, fail, stop, lo, hi):
        d = w0s.shape[1]
        T = rec.size
        per_run = w0s.shape[0] > 1
        two = l > 1
        for run in range(lo, hi):
            if stop[0] != 0:  # Ctrl-C (sdesim.runners.threads)
                return
            w = w0s[run if per_run else 0].copy()
            v = np.zeros(d)
            g = np.empty(d)
            prev = np.empty(d)
            ws = alloc(info)
            q = 0
            k = 0
            bad = False
            while q < T:
                target = rec[q]
                while k < target:
                    if k == target - 1:
                        for i in range(d):
                            prev[i] = w[i]
                    for s in range(l):
                        sub = k * l + s
                        if (sub & STOP_POLL) == STOP_POLL and stop[0] != 0:
                            return
                        t = sub / l
                        eta = schedule_value(t, lrT, lrV)
                        lam = schedule_value(t, wdT, wdV)
                        stoch_grad(w, params, k0, k1, run, sub, two, r1, r2, info, g, ws)
                        _update(w, v, g, eta / l, lam, mom)
                    k += 1
                    if not _healthy(w, offsets):
                        bad = True
                        fail[run] = k
                        break
                if bad:
                    _mark_failed(q, run, offsets, do_eval, store_iter, norms, eta_eff, angle, loss, acc,
                                 tacc, iters)
                    break
                _record_geometry(q, run, w, prev, target > 0, schedule_value(float(target), lrT, lrV),
                                 offsets, store_iter, norms, eta_eff, angle, iters)
                if do_eval:
                    loss[q, run], acc[q, run], tacc[q, run] = evaluate(w, params, ev)
                    if stop[0] != 0:  # a record can cost a pass over the data: look after each
                        return
                q += 1

    return kernel


_CACHE = {}
#: the pieces of each sgd_kind (sdesim.normalized.contract.SGD_KINDS)
_PIECES = {"gaussian": _gaussian_pieces, "data": _data_pieces}


def _kind(model):
    """How discrete SGD draws the model's gradient: its declared ``sgd_kind`` (normalized.contract)."""
    kind = getattr(model, "sgd_kind", None)
    if kind not in _PIECES:
        raise TypeError(f"run_sgd supports scale-invariant models declaring sgd_kind in {tuple(_PIECES)} "
                        f"(SphereModel, NormalizedLinearClassifier, WeightNormMLP), got {type(model).__name__}")
    return kind


def _pieces(model):
    """(kind, alloc, draws, stoch_grad, evaluate, kernel), compiled once per model class."""
    kind = _kind(model)
    if kind == "data":
        key = (kind, model.minibatch_grad_kernel, model._logits)
    else:
        key = (kind, model.grad_kernel, model.noise_product_kernel, model.loss_kernel)
    if key not in _CACHE:
        alloc, draws, stoch_grad, evaluate = _PIECES[kind](model)
        kernel = _build_kernel(alloc, stoch_grad, evaluate)
        use_disk_cache(kernel, "sgd", key, f"the discrete-SGD kernel of {type(model).__name__}")
        _CACHE[key] = (kind, alloc, draws, stoch_grad, evaluate, kernel)
    return _CACHE[key]


def _info(model, kind):
    if kind == "data":
        n, B, rep = model.data.n, model.batch_size, int(model.replace)
    else:
        n, B, rep = 0, 0, 0
    return np.array([n, B, rep, model.noise_dim, model.d], dtype=np.int64)


def _eval_args(model, kind):
    if kind == "data":
        data = model.data
        return (np.ascontiguousarray(data.X, dtype=np.float64), np.ascontiguousarray(data.y, dtype=np.int64),
                np.ascontiguousarray(data.X_test, dtype=np.float64),
                np.ascontiguousarray(data.y_test, dtype=np.int64))
    return (np.zeros((0, 1)), np.zeros(0, np.int64), np.zeros((0, 1)), np.zeros(0, np.int64))
