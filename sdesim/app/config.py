"""TOML configurations for ``sdesim simulate`` and ``sdesim sweep``: reading, checking, defaults.

A simulation config (every key, with its default; ``model``, ``lr``, ``wd``, ``dt`` and
``save_times`` are required)::

    lr = 0.1                          # positive number, or {values = [0.1, 0.01], times = [5000]}
    wd = 0.01                         # the same forms (weight decay lambda)
    form = "full"                     # "full" (W) or "polar" (direction and G = |W_j|^4/eta^2 per group)
    project = false                   # polar only: map directions back to their spheres every step
    method = "euler"                  # an Ito scheme of sdesim.SOLVERS ("euler", "milstein")
    dt = 0.5                          # step, in SGD steps
    paths = 100                       # number of paths
    seed = 0                          # Brownian seed (non-negative integer)
    save_times = {start = 0.0, stop = 1000.0, num = 101}   # or an increasing list [0.0, 10.0, ...]
    store = "paths"                   # "paths" (every path) or "mean" (ensemble mean/var only)
    threads = 2                       # optional: worker threads (results do not depend on it)
    output = "results/simulate/run.npz"   # .npz; the JSON metadata goes next to it (.json)

    [model]                           # name = "sphere" | "digits" | "mixture" | "mlp" and its parameters
    name = "sphere"
    d = 10
    s = 1.0
    h_diag = [0.0, 0.5, ...]          # optional: H = diag(h_diag), length d (default: flat loss)

    [init]                            # initial weights: a random direction with every group of norm `norm`
    norm = 1.0
    seed = 0
    file = "w0.npy"                   # optional instead: a .npy of shape (d,) or (paths, d)

Model parameters (defaults in :data:`MODEL_KEYS`): ``digits`` (normalized linear classifier on
scikit-learn's digits: batch_size, replace, scale, test_fraction, split_seed), ``mixture`` (the
same classifier on a Gaussian mixture: n, dim, n_classes, separation, n_test, data_seed,
batch_size, replace, scale), ``mlp`` (weight-normalized tanh MLP: data = "digits" or "mixture"
plus that data set's parameters, hidden, gain, scale, top_seed, batch_size, replace).

A sweep config has the same keys; ``model``, ``lr``, ``wd`` and ``seed`` may be arrays (the grid
is their product; a model array is ``[[model]]`` tables or ``model = [{...}, {...}]``), ``output``
is replaced by a ``[sweep]`` table: ``results`` (folder), ``workers`` (local Dask worker
processes), ``threads`` (threads per point).

Every mistake raises :class:`ConfigError` naming the key and the expected form.
"""

import copy
import hashlib
import itertools
import json
import math
import numbers
import os
import re
import reprlib

from ..solvers import schemes_for
from .models import CONFIG_MODELS, DIGITS_DATA, MIXTURE_DATA

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "load_toml", "check_simulation", "check_sweep", "expand_sweep", "point_hash",
           "MODEL_KEYS"]


class ConfigError(ValueError):
    """A user mistake in a configuration: ``key`` names where, ``expected`` what was expected."""

    def __init__(self, key, expected, got=None, *, show_got=True, unknown=False):
        self.key, self.expected = key, expected
        msg = f"{key}: unknown key (expected one of: {expected})" if unknown else f"{key}: expected {expected}"
        if show_got and not unknown:
            msg += f", got {_show(got)}"
        super().__init__(msg)


class _ShortRepr(reprlib.Repr):
    """reprlib, with huge integers by their size (repr refuses more than 4300 digits)."""

    def repr_int(self, x, level):
        return repr(x) if abs(x) < 10**60 else f"<an integer of {x.bit_length()} bits>"


_REPR = _ShortRepr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 8, 6, 60, 60


def _show(v):
    """A value for a message: short, one line (nested values are cut, never recursed into)."""
    if v is None:
        return "nothing"
    s = repr(v) if isinstance(v, str) else _REPR.repr(v)
    return s if len(s) <= 80 or isinstance(v, str) else s[:77] + "..."


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(k):
    """A TOML key as written in a config: bare if it can be, else quoted (so one line)."""
    return k if _BARE_KEY.fullmatch(k) else json.dumps(k)


def _finite(x):
    """math.isfinite, False (not OverflowError) for integers beyond the float range."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


_NOT_GIVEN = object()

RATE_FORM = "a positive number or a table {values = [positive numbers], times = [increasing numbers]}"

#: model name -> {parameter: (kind, default)}, from the model registry (:mod:`.models`)
MODEL_KEYS = {name: spec.keys for name, spec in CONFIG_MODELS.items()}

_KIND_TEXT = {"int>=0": "a non-negative integer", "int>=1": "a positive integer", "int>=2": "an integer >= 2",
              "seed": "a non-negative integer", "positive": "a positive number",
              "fraction": "a number in [0, 1)", "bool": "true or false", "floats": "an array of numbers",
              "string": "a non-empty string (no NUL character)"}

SIM_KEYS = ("model", "lr", "wd", "form", "project", "method", "dt", "paths", "seed", "save_times", "store",
            "threads", "output", "init")
REQUIRED = ("model", "lr", "wd", "dt", "save_times")
#: largest array ``sdesim simulate`` stores (bytes), paths or ensemble statistics
MAX_STORE_BYTES = 2 << 30
#: paths: below 2**32 (the path index of the counter-based Brownian motion)
MAX_PATHS = 2**32
#: most grid points of one sweep
MAX_SWEEP_POINTS = 1_000_000


#: largest config file read (bytes): a config is a few lines; this refuses a wrong file early
MAX_CONFIG_BYTES = 16 << 20


def load_toml(path):
    """Read a TOML file; a missing, unreadable, non-UTF-8 or too deeply nested file, or bad TOML,
    is a :class:`ConfigError`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError("CONFIG", "an existing TOML file", path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError("CONFIG", f"a readable file ({exc.strerror or exc})", path) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("CONFIG", f"a TOML file of at most {MAX_CONFIG_BYTES >> 20} MiB", path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("CONFIG", f"a UTF-8 text file (byte {exc.start} is not UTF-8)", path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("CONFIG", f"valid TOML ({exc})", path) from None
    except RecursionError:  # tomllib recurses once per level of nested arrays / inline tables
        raise ConfigError("CONFIG", "TOML nested at most a few hundred levels deep", path) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError("CONFIG", f"valid TOML ({str(exc).split(';')[0]})", path) from None


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_kind(key, v, kind):
    if isinstance(kind, tuple):
        if v not in kind:
            raise ConfigError(key, " or ".join(repr(k) for k in kind), v)
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            raise ConfigError(key, _KIND_TEXT[kind], v)
        return v
    if kind == "string":
        if not isinstance(v, str) or not v or "\x00" in v:
            raise ConfigError(key, _KIND_TEXT[kind], v)
        return v
    if kind in ("int>=0", "int>=1", "int>=2", "seed"):
        lo = {"int>=0": 0, "seed": 0, "int>=1": 1, "int>=2": 2}[kind]
        if not _is_int(v) or v < lo:
            raise ConfigError(key, _KIND_TEXT[kind], v)
        hi = 2**64 if kind == "seed" else 2**63
        if v >= hi:
            raise ConfigError(key, f"{_KIND_TEXT[kind]} below 2**{hi.bit_length() - 1}", v)
        return int(v)
    if kind == "positive":
        if not _is_number(v) or not _finite(v) or v <= 0:
            raise ConfigError(key, _KIND_TEXT[kind], v)
        return float(v)
    if kind == "fraction":
        if not _is_number(v) or not 0 <= v < 1:
            raise ConfigError(key, _KIND_TEXT[kind], v)
        return float(v)
    if kind == "floats":
        if not isinstance(v, list) or not all(_is_number(x) and _finite(x) for x in v):
            raise ConfigError(key, "an array of finite numbers", v)
        return [float(x) for x in v]
    raise AssertionError(kind)


def _check_table(key, v):
    if not isinstance(v, dict):
        raise ConfigError(key, "a table", v)
    return v


def _unknown(prefix, table, allowed):
    for k in table:
        if k not in allowed:
            where = f"{prefix}.{_key(k)}" if prefix else _key(k)
            raise ConfigError(where, ", ".join(allowed), unknown=True)


def check_model(v, key="model"):
    """A model table -> the full parameter dict (defaults filled in)."""
    v = _check_table(key, v)
    if "name" not in v:
        raise ConfigError(f"{key}.name", "one of " + ", ".join(repr(n) for n in MODEL_KEYS), None)
    name = v["name"]
    if not isinstance(name, str) or name not in MODEL_KEYS:
        raise ConfigError(f"{key}.name", "one of " + ", ".join(repr(n) for n in MODEL_KEYS), name)
    schema = MODEL_KEYS[name]
    if "data" in schema:  # a choice of data set: that data set's own parameters only
        data = _check_kind(f"{key}.data", v.get("data", schema["data"][1]), schema["data"][0])
        other = MIXTURE_DATA if data == "digits" else DIGITS_DATA
        schema = {k: s for k, s in schema.items() if k not in other}
    _unknown(key, v, ("name",) + tuple(schema))
    out = {"name": name}
    for k, (kind, default) in schema.items():
        out[k] = default if k not in v else _check_kind(f"{key}.{k}", v[k], kind)
    check = CONFIG_MODELS[name].check
    if check is not None:
        def fail(k, expected, got):
            raise ConfigError(f"{key}.{k}", expected, got)
        check(out, fail)
    return out


def check_rate(key, v):
    """A learning rate / weight decay: number -> float; schedule table -> {values, times}."""
    if _is_number(v):
        if not _finite(v) or v <= 0:
            raise ConfigError(key, RATE_FORM, v)
        return float(v)
    if isinstance(v, dict):
        _unknown(key, v, ("values", "times"))
        if "values" not in v:
            raise ConfigError(f"{key}.values", "an array of positive numbers", None)
        values, times = v["values"], v.get("times", [])
        if (not isinstance(values, list) or not values
                or not all(_is_number(x) and _finite(x) and x > 0 for x in values)):
            raise ConfigError(f"{key}.values", "a non-empty array of positive numbers", values)
        if not isinstance(times, list) or not all(_is_number(x) and _finite(x) for x in times):
            raise ConfigError(f"{key}.times", "an array of numbers", times)
        if len(times) != len(values) - 1:
            raise ConfigError(f"{key}.times", f"{len(values) - 1} times (one fewer than values)", times)
        if any(b <= a for a, b in zip(times, times[1:])):
            raise ConfigError(f"{key}.times", "strictly increasing numbers", times)
        return {"values": [float(x) for x in values], "times": [float(x) for x in times]}
    raise ConfigError(key, RATE_FORM, v)


def check_save_times(v, key="save_times"):
    if isinstance(v, list):
        if (len(v) < 2 or not all(_is_number(x) and _finite(x) and x >= 0 for x in v)
                or any(b <= a for a, b in zip(v, v[1:]))):
            raise ConfigError(key, "a strictly increasing array of at least two non-negative numbers", v)
        return [float(x) for x in v]
    if isinstance(v, dict):
        _unknown(key, v, ("start", "stop", "num"))
        if "stop" not in v:
            raise ConfigError(f"{key}.stop", "a positive number (the last save time)", None)
        start = v.get("start", 0.0)
        if not _is_number(start) or not _finite(start) or start < 0:
            raise ConfigError(f"{key}.start", "a non-negative number", start)
        stop = v["stop"]
        if not _is_number(stop) or not _finite(stop) or stop <= start:
            raise ConfigError(f"{key}.stop", f"a number > start = {start}", stop)
        num = v.get("num", 101)
        if not _is_int(num) or num < 2:
            raise ConfigError(f"{key}.num", "an integer >= 2", num)
        return {"start": float(start), "stop": float(stop), "num": int(num)}
    raise ConfigError(key, "an array of increasing times or a table {start, stop, num}", v)


def check_init(v, seed_default=0, base_dir="."):
    v = _check_table("init", v)
    _unknown("init", v, ("norm", "seed", "file"))
    out = {"norm": _check_kind("init.norm", v.get("norm", 1.0), "positive"),
           "seed": _check_kind("init.seed", v.get("seed", seed_default), "seed"),
           "file": None}
    if "file" in v:
        f = _check_kind("init.file", v["file"], "string")
        path = f if os.path.isabs(f) else os.path.normpath(os.path.join(base_dir, f))
        if not os.path.isfile(path):
            raise ConfigError("init.file", "an existing .npy file of shape (d,) or (paths, d)", f)
        out["file"] = os.path.abspath(path)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise ConfigError("init.file", f"a readable .npy file ({exc.strerror or exc})", f) from None
        out["file_sha256"] = digest.hexdigest()
    return out


def _check_common(cfg, base_dir, *, grid_keys=()):
    """The keys shared by simulate and sweep; ``grid_keys`` were already expanded by the caller."""
    for k in REQUIRED:
        if k not in cfg:
            form = {"model": "a [model] table with name = 'sphere' | 'digits' | 'mixture' | 'mlp'",
                    "lr": RATE_FORM, "wd": RATE_FORM, "dt": "a positive number",
                    "save_times": "an array of increasing times or a table {start, stop, num}"}[k]
            raise ConfigError(k, form + " (required)", show_got=False)
    out = {}
    out["form"] = _check_kind("form", cfg.get("form", "full"), ("full", "polar"))
    out["project"] = _check_kind("project", cfg.get("project", False), "bool")
    if out["project"] and out["form"] != "polar":
        raise ConfigError("project", "false unless form = 'polar'", True)
    out["method"] = _check_kind("method", cfg.get("method", "euler"), schemes_for("ito"))  # (Ito SDEs)
    out["dt"] = _check_kind("dt", cfg["dt"], "positive")
    out["paths"] = _check_kind("paths", cfg.get("paths", 100), "int>=1")
    if out["paths"] >= MAX_PATHS:
        raise ConfigError("paths", "a positive integer below 2**32", out["paths"])
    out["save_times"] = check_save_times(cfg["save_times"])
    out["store"] = _check_kind("store", cfg.get("store", "paths"), ("paths", "mean"))
    out["threads"] = None if "threads" not in cfg else _check_kind("threads", cfg["threads"], "int>=1")
    out["init"] = check_init(cfg.get("init", {}), 0, base_dir)
    if "model" not in grid_keys:
        out["model"] = check_model(cfg["model"])
    for k in ("lr", "wd"):
        if k not in grid_keys:
            out[k] = check_rate(k, cfg[k])
    if "seed" not in grid_keys:
        out["seed"] = _check_kind("seed", cfg.get("seed", 0), "seed")
    return out


def save_times_array(st):
    import numpy as np
    if isinstance(st, dict):
        return np.linspace(st["start"], st["stop"], st["num"])
    return np.asarray(st, dtype=np.float64)


def _check_size(spec, key="paths"):
    """Refuse to store more than MAX_STORE_BYTES: of paths (store = "paths"), or of the
    per-save-time mean and variance (store = "mean", which also bounds the model's size)."""
    m = spec["model"]
    d = CONFIG_MODELS[m["name"]].dim(m)
    T = spec["save_times"]["num"] if isinstance(spec["save_times"], dict) else len(spec["save_times"])
    if spec["store"] == "paths" and T * spec["paths"] * (d + 8) * 8 > MAX_STORE_BYTES:
        raise ConfigError(key, f"at most {MAX_STORE_BYTES >> 30} GiB of stored paths (here {T} save times x "
                          f"{spec['paths']} paths x {_show(d)} dims); lower it or use store = 'mean'", spec["paths"])
    if spec["store"] == "mean" and T * (d + 8) * 8 * 3 > MAX_STORE_BYTES:
        what = "save_times.num" if isinstance(spec["save_times"], dict) else "save_times"
        raise ConfigError(what, f"at most {MAX_STORE_BYTES >> 30} GiB of ensemble statistics (here {_show(T)} save "
                          f"times x {_show(d)} dims); lower the number of save times or the model size", T)


def check_simulation(cfg, base_dir="."):
    """A parsed simulation config (dict) -> the resolved spec with every default filled in."""
    _check_table("CONFIG", cfg)
    _unknown("", cfg, SIM_KEYS)
    if isinstance(cfg.get("model"), list) or any(isinstance(cfg.get(k), list) for k in ("lr", "wd", "seed")):
        k = next(k for k in ("model", "lr", "wd", "seed") if isinstance(cfg.get(k), list))
        raise ConfigError(k, "a single value (arrays make a grid only in `sdesim sweep`)", cfg[k])
    spec = _check_common(cfg, base_dir)
    out = cfg.get("output", "results/simulate/simulation.npz")
    out = _check_kind("output", out, "string")
    if not out.endswith(".npz"):
        raise ConfigError("output", "a path ending in .npz", out)
    spec["output"] = out if os.path.isabs(out) else os.path.normpath(os.path.join(base_dir, out))
    _check_size(spec)
    return spec


SWEEP_KEYS = tuple(k for k in SIM_KEYS if k != "output") + ("sweep",)
GRID_KEYS = ("model", "lr", "wd", "seed")


def check_sweep(cfg, base_dir="."):
    """A parsed sweep config -> ``(base spec, axes, options)``; ``axes`` maps each of model, lr,
    wd, seed to its checked list of values."""
    _check_table("CONFIG", cfg)
    if "output" in cfg:
        raise ConfigError("output", "no output in a sweep config (results go to sweep.results)", show_got=False)
    _unknown("", cfg, SWEEP_KEYS)
    base = _check_common(cfg, base_dir, grid_keys=GRID_KEYS)
    axes = {}
    checkers = {"model": lambda k, v: check_model(v, k), "lr": check_rate, "wd": check_rate,
                "seed": lambda k, v: _check_kind(k, v, "seed")}
    for k in GRID_KEYS:
        v = cfg.get(k, 0) if k == "seed" else cfg[k]
        if isinstance(v, list):
            if not v:
                raise ConfigError(k, "a non-empty array", v)
            axes[k] = [checkers[k](f"{k}[{i}]", x) for i, x in enumerate(v)]
        else:
            axes[k] = [checkers[k](k, v)]
    n_points = math.prod(len(a) for a in axes.values())
    if n_points > MAX_SWEEP_POINTS:
        raise ConfigError(", ".join(k for k in GRID_KEYS if len(axes[k]) > 1),
                          f"a grid of at most {MAX_SWEEP_POINTS:,} points (model x lr x wd x seed)", n_points)
    sw = _check_table("sweep", cfg.get("sweep", {}))
    _unknown("sweep", sw, ("results", "workers", "threads"))
    results = _check_kind("sweep.results", sw.get("results", "results/sweep"), "string")
    opts = {"results": results if os.path.isabs(results) else os.path.normpath(os.path.join(base_dir, results)),
            "workers": _check_kind("sweep.workers", sw.get("workers", os.cpu_count() or 1), "int>=1"),
            "threads": _check_kind("sweep.threads", sw.get("threads", 1), "int>=1")}
    if base["threads"] is None:
        base["threads"] = opts["threads"]
    for m in axes["model"]:
        _check_size({**base, "model": m})
    return base, axes, opts


def expand_sweep(base, axes):
    """The grid: a list of point specs (model x lr x wd x seed, in that nesting order)."""
    points = []
    for model, lr, wd, seed in itertools.product(axes["model"], axes["lr"], axes["wd"], axes["seed"]):
        p = copy.deepcopy(base)
        p.update(model=copy.deepcopy(model), lr=copy.deepcopy(lr), wd=copy.deepcopy(wd), seed=seed)
        points.append(p)
    return points


#: keys that do not change a result (left out of the hash)
_NOT_HASHED = ("threads", "output")


def point_hash(spec):
    """16 hex digits of the SHA-256 of the spec's canonical JSON (threads and output left out;
    an init file enters through its content hash, not its path)."""
    s = {k: v for k, v in spec.items() if k not in _NOT_HASHED}
    if s.get("init", {}).get("file"):
        s["init"] = {k: v for k, v in s["init"].items() if k != "file"}
    text = json.dumps(s, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
