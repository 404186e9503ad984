"""sdesim's SDEs as ``torchsde`` SDEs, and one problem run through both libraries.

``torchsde`` (Li et al. 2020) is the usual PyTorch SDE library; this module gives it each SDE in
its best formulation, so that comparisons of agreement and speed are fair:

* every function works on a batch of paths at once (state ``(n_paths, dim)``);
* matrix noise is applied matrix-free through ``f_and_g_prod(t, y, v)`` (drift and ``g(t, y) v``
  from one pass: e.g. the classifier's softmax is computed once per step); the dense
  ``(n_paths, dim, noise_dim)`` diffusion is never formed in a solve. It is there as
  ``dense_g`` (and :class:`DenseDiffusion`, which hands it to torchsde as ``g``) for checks;
* the Brownian motion is a ``torchsde.BrownianInterval`` built with the ``dt`` hint (without it
  torchsde draws several times more normals per step as the number of steps grows);
* Euler-Maruyama is torchsde's fastest fixed-step scheme for general noise (its Milstein and SRK
  accept scalar/diagonal/additive noise only).

Covered: the sphere model and the normalized linear classifier in full form
(``dW = -eta (grad L + lam W) dt + eta S(W) dB``, constant ``lr``/``wd``), and the core's test
SDEs of :mod:`sdesim.reference` (``gbm``, ``gbm_analytic``, ``ou``: diagonal; ``lin_scalar``:
scalar; ``lin_commutative``, ``noncommutative``: general). Others can be added with
:func:`register`.

    from sdesim.compare import torchsde as tb
    prob = tb.make_problem(SphereModel(100, s=1.0), lr=0.1, wd=1e-3)
    ens = tb.run_both(prob, w0, ts, dt=1.0, n_paths=1000, seed=0)
    ens.sdesim.shape, ens.torchsde.shape      # (T, 1000, 100) each, NumPy float64

Needs the ``torch`` extra (``pip install 'sdesim[torch]'``: torch, torchsde).
"""

import time
from dataclasses import dataclass, field

import numpy as np

try:
    import torch
    import torchsde
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("sdesim.compare.torchsde needs torch and torchsde: pip install 'sdesim[torch]'") from exc

import sdesim
from ..normalized.builders import sgd_sde
from ..normalized.classifier import NormalizedLinearClassifier
from ..normalized.models import SphereModel
from .torch_sdes import (ClassifierSGD, DenseDiffusion, SphereSGD, constant_rate, numpy_dtype, register,
                         registered, torch_dtype)

__all__ = ["Problem", "make_problem", "register", "to_torchsde", "torch_dtype", "DenseDiffusion",
           "SphereSGD", "ClassifierSGD", "run_sdesim", "run_torchsde", "run_both", "Ensembles",
           "brownian_interval", "METHODS"]

#: sdesim method -> torchsde method. Milstein maps to torchsde's Ito Milstein (scalar, diagonal
#: and additive noise only); it uses autograd for ``g'`` when the sdesim SDE has an analytic
#: ``diffusion_derivative`` and torchsde's derivative-free form (the same formula as sdesim's)
#: otherwise, so that both libraries run the very same scheme.
METHODS = {"euler": "euler", "milstein": "milstein"}


# ----------------------------------------------------------------------------- problems
@dataclass
class Problem:
    """One SDE for both libraries: the sdesim :class:`~sdesim.SDE` and a builder of its torchsde twin.

    ``eta`` is the (constant) learning rate for the SGD SDEs (None otherwise), used for the
    effective learning rate ``eta / |W|^2``.
    """

    name: str
    sde: sdesim.SDE
    build: object = field(repr=False)
    eta: float = None

    @property
    def noise(self):
        return self.sde.noise

    def torchsde(self, device="cpu", dtype="float64"):
        """The torchsde SDE (a ``torch.nn.Module``) on ``device`` in ``dtype``."""
        return self.build(torch.device(device), torch_dtype(dtype))


def make_problem(source, lr=None, wd=None):
    """A :class:`Problem` from a model and constant rates (``SphereModel``,
    ``NormalizedLinearClassifier``: the full-form SGD SDE ``sgd_sde(model, lr, wd)``), or from a
    registered sdesim SDE (those of :mod:`sdesim.reference`)."""
    if isinstance(source, (SphereModel, NormalizedLinearClassifier)):
        if lr is None or wd is None:
            raise ValueError("a model needs lr and wd")
        eta, lam = constant_rate(lr, "lr"), constant_rate(wd, "wd")
        cls = SphereSGD if isinstance(source, SphereModel) else ClassifierSGD
        return Problem(f"sgd_sde({source!r}, lr={eta}, wd={lam})", sgd_sde(source, eta, lam),
                       lambda dv, dt: cls(source, eta, lam, dv, dt), eta)
    if isinstance(source, sdesim.SDE):
        if lr is not None or wd is not None:
            raise ValueError("lr/wd apply to models, not to an SDE")
        builder = registered(source)
        if builder is None:
            raise TypeError(f"no torchsde translation for {source!r}; add one with "
                            "sdesim.compare.torchsde.register(drift, diffusion)")
        return Problem(source.name, source, lambda dv, dt: builder(source, dv, dt))
    raise TypeError(f"cannot translate {type(source).__name__}: pass a SphereModel or "
                    "NormalizedLinearClassifier with lr and wd, or a registered sdesim SDE")


def to_torchsde(source, lr=None, wd=None, *, device="cpu", dtype="float64"):
    """The torchsde SDE for ``source`` (see :func:`make_problem`) on ``device`` in ``dtype``."""
    return make_problem(source, lr, wd).torchsde(device, dtype)


def brownian_interval(t0, t1, n_paths, noise_dim, dt, *, seed=0, device="cpu", dtype="float64"):
    """torchsde's ``BrownianInterval`` for fixed steps ``dt`` (the hint matters for speed), no Levy area."""
    return torchsde.BrownianInterval(t0=float(t0), t1=float(t1), size=(n_paths, noise_dim), dt=float(dt),
                                     entropy=int(seed), device=torch.device(device), dtype=torch_dtype(dtype),
                                     levy_area_approximation="none")


def _method(problem, method):
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    if method == "milstein" and problem.noise not in ("scalar", "diagonal", "additive"):
        raise ValueError(f"torchsde's Milstein takes scalar, diagonal or additive noise, not {problem.noise!r}")
    options = None
    if method == "milstein" and problem.noise != "additive":
        options = {"grad_free": problem.sde.diffusion_derivative is None}
    return METHODS[method], options


def _check_grid(ts, dt):
    """torchsde steps ``t += dt`` and interpolates linearly at save times off that grid."""
    ts = np.asarray(ts, dtype=np.float64)
    k = (ts - ts[0]) / dt
    if np.any(np.abs(k - np.round(k)) > 1e-9):
        raise ValueError("every save time must be ts[0] + a multiple of dt (torchsde interpolates "
                         "linearly between steps, sdesim does not)")
    return ts


def _y0_batch(y0, n_paths, dim):
    y0 = np.asarray(y0, dtype=np.float64)
    if y0.shape == (dim,):
        return y0, np.broadcast_to(y0, (n_paths, dim))
    if y0.shape == (n_paths, dim):
        return y0, y0
    raise ValueError(f"y0 must have shape ({dim},) or ({n_paths}, {dim}), got {y0.shape}")


def run_sdesim(problem, y0, ts, *, dt, n_paths, seed=0, method="euler", dtype="float64", n_threads=None):
    """sdesim's ensemble ``(T, n_paths, dim)`` and ``{"run_s", "compile_s"}``."""
    y0_in, _ = _y0_batch(y0, n_paths, problem.sde.dim)
    sol = sdesim.solve(problem.sde, y0_in, np.asarray(ts, dtype=np.float64), method=method, dt=dt,
                       n_paths=n_paths, seed=seed, dtype=dtype, n_threads=n_threads)
    return sol.ys, {"run_s": sol.stats["run_s"], "compile_s": sol.stats["compile_s"]}


def run_torchsde(problem, y0, ts, *, dt, n_paths, seed=0, method="euler", device="cpu", dtype="float64",
                 sde=None):
    """torchsde's ensemble ``(T, n_paths, dim)`` (a torch tensor on ``device``) and ``{"run_s"}``.

    Euler (or Milstein) with fixed steps ``dt`` on a ``BrownianInterval`` with the ``dt`` hint,
    no autograd graph. ``ts`` must lie on the step grid. ``sde`` overrides the torchsde SDE (e.g.
    a :class:`DenseDiffusion`).
    """
    ts = _check_grid(ts, dt)
    tdt = torch_dtype(dtype)
    dev = torch.device(device)
    sde = problem.torchsde(dev, tdt) if sde is None else sde
    tmethod, options = _method(problem, method)
    _, y0b = _y0_batch(y0, n_paths, sde.dim)
    y0_t = torch.as_tensor(np.ascontiguousarray(y0b), dtype=tdt, device=dev)
    ts_t = torch.as_tensor(ts, dtype=torch.float64)  # on the host: torchsde's step loop needs no device syncs
    t = time.perf_counter()
    bm = brownian_interval(ts[0], ts[-1], n_paths, sde.noise_dim, dt, seed=seed, device=dev, dtype=tdt)
    with torch.no_grad():
        ys = torchsde.sdeint(sde, y0_t, ts_t, bm=bm, method=tmethod, dt=dt, options=options)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return ys, {"run_s": time.perf_counter() - t}


@dataclass
class Ensembles:
    """Two ensembles of the same problem: ``sdesim`` and ``torchsde``, each ``(T, n_paths, dim)``
    NumPy float64, at ``ts``; ``info`` holds the options and timings."""

    ts: np.ndarray
    sdesim: np.ndarray
    torchsde: np.ndarray
    info: dict


def run_both(problem, y0, ts, dt, n_paths, seed=0, method="euler", device="cpu", dtype="float64"):
    """Run ``problem`` through sdesim (CPU, compiled) and torchsde (``device``) with the same scheme,
    step, save times, number of paths and dtype. The Brownian paths differ (two generators;
    ``seed`` seeds both), so the ensembles are independent samples of the same law."""
    ts = _check_grid(ts, dt)
    ys_a, info_a = run_sdesim(problem, y0, ts, dt=dt, n_paths=n_paths, seed=seed, method=method, dtype=dtype)
    ys_b, info_b = run_torchsde(problem, y0, ts, dt=dt, n_paths=n_paths, seed=seed, method=method,
                                device=device, dtype=dtype)
    info = {"problem": problem.name, "method": method, "dt": dt, "n_paths": n_paths, "seed": seed,
            "device": str(device), "dtype": numpy_dtype(dtype), "sdesim": info_a, "torchsde": info_b}
    return Ensembles(ts, np.asarray(ys_a, dtype=np.float64),
                     ys_b.detach().cpu().to(torch.float64).numpy(), info)
