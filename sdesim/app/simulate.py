"""One simulation of the paper's SDE from a checked spec (:mod:`sdesim.app.config`): ``sdesim simulate``.

:func:`run_point` is what every grid point of ``sdesim sweep`` runs too; it is deterministic in
its spec (the thread count does not change a bit of the result).
"""

import contextlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from .models import CONFIG_MODELS
from ._io import probe_output_file, write_json_atomic, write_npz_atomic
from .config import ConfigError, check_simulation, load_toml, point_hash, save_times_array

__all__ = ["build_model", "check_outputs", "initial_state", "run_point", "simulate", "versions"]

_MODELS = {}


def build_model(m):
    """A model from its checked parameter dict; one object per distinct dict and process, so
    that points sharing a model share its compiled kernels."""
    key = json.dumps(m, sort_keys=True)
    if key in _MODELS:
        return _MODELS[key]
    model = CONFIG_MODELS[m["name"]].build(m)
    _MODELS[key] = model
    return model


def _schedule(rate):
    from ..normalized import Schedule
    if isinstance(rate, dict):
        return Schedule(rate["values"], rate["times"])
    return Schedule([rate])


def initial_state(spec, model):
    """Full-parameter initial weights ``(d,)`` (shared by every path) or ``(paths, d)``."""
    init = spec["init"]
    if init["file"]:
        try:
            w0 = np.load(init["file"], allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError("init.file", "a .npy file of numbers", f"{init['file']} ({exc})") from None
        if w0.shape not in ((model.d,), (spec["paths"], model.d)) or not np.all(np.isfinite(w0)):
            raise ConfigError("init.file", f"finite numbers of shape ({model.d},) or ({spec['paths']}, {model.d})",
                              f"shape {w0.shape}")
        return np.asarray(w0, dtype=np.float64)
    w = np.random.default_rng(init["seed"]).normal(size=model.d)
    for a, b in zip(model.group_offsets[:-1], model.group_offsets[1:]):
        w[a:b] *= init["norm"] / np.linalg.norm(w[a:b])
    return w


def run_point(spec):
    """Run one simulation: ``(arrays, meta)``.

    ``arrays``: ``ts``; with ``store = "paths"`` the states ``ys`` (T, paths, dim), the group
    norms ``norms`` and ``eta_eff = eta(t)/|W_j|^2`` (T, paths, k); with ``store = "mean"`` the
    ensemble ``mean``/``var`` of the state and ``count`` per save time.
    """
    import sdesim
    from ..normalized import full_from_polar, group_norms, polar_sde, polar_state, sgd_sde

    t0 = time.perf_counter()
    model = build_model(spec["model"])
    lr, wd = _schedule(spec["lr"]), _schedule(spec["wd"])
    ts = save_times_array(spec["save_times"])
    w0 = initial_state(spec, model)
    if spec["form"] == "full":
        sde, y0 = sgd_sde(model, lr, wd), w0
    else:
        sde, y0 = polar_sde(model, lr, wd, project=spec["project"]), polar_state(w0, lr, t0=ts[0], model=model)
    reduce = spec["store"] == "mean"
    sol = sdesim.solve(sde, y0, ts, method=spec["method"], dt=spec["dt"], n_paths=spec["paths"],
                       seed=spec["seed"], reduce=reduce, n_threads=spec.get("threads"))
    arrays = {"ts": sol.ts}
    summary = {}
    if reduce:
        arrays.update(mean=sol.mean, var=sol.var, count=sol.count)
    else:
        ys = sol.ys
        w = ys if spec["form"] == "full" else full_from_polar(ys, model)
        norms = group_norms(w, model.group_offsets)
        eta_t = lr(ts)[:, None, None]
        eta_eff = eta_t / norms**2
        arrays.update(ys=ys, norms=norms, eta_eff=eta_eff)
        summary = {"final_norm_mean": norms[-1].mean(axis=0).tolist(),
                   "final_eta_eff_mean": eta_eff[-1].mean(axis=0).tolist(),
                   "final_eta_eff_se": (eta_eff[-1].std(axis=0, ddof=1) / np.sqrt(norms.shape[1])).tolist()
                   if norms.shape[1] > 1 else None}
    meta = {"hash": point_hash(spec), "spec": spec, "model": repr(model), "dim": int(sde.dim),
            "n_groups": int(model.n_groups), "stats": sol.stats, "summary": summary,
            "arrays": {k: list(np.shape(v)) for k, v in arrays.items()},
            "wall_s": time.perf_counter() - t0}
    return arrays, meta


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions():
    """Versions of Python, the numerical stack, sdesim and the git commit (None outside a checkout)."""
    import numba
    import scipy
    import sdesim
    v = {"python": sys.version.split()[0], "platform": platform.platform(), "numpy": np.__version__,
         "numba": numba.__version__, "scipy": scipy.__version__, "sdesim": sdesim.__version__,
         "git_commit": _git_commit()}
    for mod in ("matplotlib", "sklearn", "dask", "distributed"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = None
    return v


def json_path(npz_path):
    return npz_path[:-4] + ".json" if npz_path.endswith(".npz") else npz_path + ".json"


def _missing_dirs(path):
    """The folders above ``path`` that do not exist yet, deepest first."""
    missing = []
    folder = os.path.dirname(os.path.abspath(path))
    while folder and not os.path.lexists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


def check_outputs(spec, config_path):
    """Refuse, before any work, outputs that would overwrite the config or cannot be written
    (:class:`ConfigError` / :class:`sdesim.app._io.OutputError`). Returns the folders it created."""
    out, js = spec["output"], json_path(spec["output"])
    config = os.path.realpath(config_path)
    for key, path in (("output", out), ("output (its .json)", js)):
        if os.path.realpath(path) == config:
            raise ConfigError(key, "a path other than the config file itself", path)
    created = _missing_dirs(out)
    try:
        probe_output_file(out, "output")
        probe_output_file(js, "output (its .json)")
    except BaseException:
        _remove_empty(created)
        raise
    return created


def _remove_empty(folders):
    for folder in folders:  # deepest first
        try:
            os.rmdir(folder)
        except OSError:
            break


def simulate(config_path):
    """Read, check and run a simulation config; write its .npz and .json atomically. -> meta.

    The output locations are checked before computing; on any failure or interrupt no output
    file is left, nor a folder made for it."""
    cfg = load_toml(config_path)
    spec = check_simulation(cfg, base_dir=os.path.dirname(os.path.abspath(config_path)))
    created = check_outputs(spec, config_path)
    try:
        arrays, meta = run_point(spec)
        meta = {**meta, "config_file": os.path.abspath(config_path), "versions": versions(),
                "npz": os.path.basename(spec["output"])}
        write_npz_atomic(spec["output"], **arrays)
        try:
            write_json_atomic(json_path(spec["output"]), meta)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(spec["output"])  # a result is its .npz and its .json, or nothing
            raise
    except BaseException:
        _remove_empty(created)
        raise
    return meta
