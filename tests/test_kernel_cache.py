"""Compile once: kernels reused in a process by fingerprint, and across processes from the disk cache
(sdesim.caching): invalidation by a changed body, a changed callee and a new sdesim; corrupt entries;
the switch; fresh processes (two of them compiling at once)."""

import os
import subprocess
import sys
import textwrap
import types

import numba as nb
import numpy as np
import pytest

import sdesim
import sdesim.caching.fingerprints as fp_module
from sdesim.caching import fingerprint
from sdesim.runners import cpu
from sdesim import sde as sde_module
from sdesim.caching import flags as flags_module

TS = np.linspace(0.0, 0.5, 6)


def _module(source, name="user_mod"):
    """A fresh module made from ``source`` (what a user's file would be)."""
    mod = types.ModuleType(name)
    exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), mod.__dict__)
    return mod


USER = """
import numba as nb

@nb.njit
def rate(y):
    return RATE * y

def drift(t, y, args, out):
    for i in range(y.size):
        out[i] = -rate(y[i]) + args[0]

def diffusion(t, y, args, out):
    for i in range(y.size):
        out[i] = args[1] * y[i]
"""


def _solve(mod, args=(0.1, 0.3)):
    sde = sdesim.SDE(mod.drift, mod.diffusion, dim=2, noise="diagonal", args=args)
    return sdesim.solve(sde, np.array([1.0, 2.0]), TS, dt=0.05, n_paths=6, seed=4)


def _forget():
    """Drop the kernels compiled in this process (as a new process would start)."""
    cpu._KERNELS.clear()
    sde_module._JITTED.clear()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SDESIM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SDESIM_CACHE", raising=False)
    _forget()
    yield tmp_path / "kernels"
    _forget()


def test_fingerprint_follows_code_closures_and_globals():
    def make(c):
        def f(t, y, args, out):
            out[0] = c * y[0]
        return f

    assert fingerprint(make(2.0)) == fingerprint(make(2.0))  # new objects, same code and values
    assert fingerprint(make(2.0)) != fingerprint(make(3.0))  # a closure value is compiled in
    a = _module("RATE = 1.0\ndef g(y):\n    return RATE * y\n")
    b = _module("RATE = 2.0\ndef g(y):\n    return RATE * y\n")
    c = _module("RATE = 1.0\ndef g(y):\n    return RATE + y\n")
    assert fingerprint(a.g) != fingerprint(b.g) and fingerprint(a.g) != fingerprint(c.g)
    assert fingerprint(a.g) == fingerprint(_module("RATE = 1.0\ndef g(y):\n    return RATE * y\n").g)
    # numba types are told apart by value, not by class
    assert fingerprint(make(nb.float32)) != fingerprint(make(nb.float64))
    # an arbitrary object has no fingerprint: callers fall back to identity
    assert fingerprint(make(object())) is None


def test_an_sdes_fingerprint_is_computed_once_for_its_functions(cache_dir):
    """SDE.fingerprint is kept with the SDE (a small solve's overhead) and follows its functions:
    the same digest for a copy with other args, a new one once a function is replaced."""
    mod = _module(USER.replace("RATE", "1.25"))
    sde = sdesim.SDE(mod.drift, mod.diffusion, dim=2, noise="diagonal", args=(0.1, 0.3))
    first = sde.fingerprint()
    assert first is not None and first == fingerprint(sde.kernel_key())
    assert sde.with_args((0.5, 0.5)).fingerprint() == first
    other = _module(USER.replace("RATE", "2.5"))
    other_drift = sdesim.SDE(other.drift, other.diffusion, dim=2, noise="diagonal").drift
    calls = []
    real = sde_module.fingerprint
    try:
        sde_module.fingerprint = lambda obj: calls.append(obj) or real(obj)
        assert sde.fingerprint() == first and not calls  # kept, not computed again
        sde.drift = other_drift
        assert sde.fingerprint() != first and len(calls) == 1
    finally:
        sde_module.fingerprint = real


def test_same_functions_reuse_the_kernel_in_a_process(cache_dir):
    first = _solve(_module(USER.replace("RATE", "1.5")))
    assert first.stats["kernel"] == "compiled"
    # the same code in new function objects (e.g. defined again in a loop), other args: no compile
    again = _solve(_module(USER.replace("RATE", "1.5")), args=(0.2, 0.3))
    assert again.stats["kernel"] == "memory" and again.stats["compile_s"] == 0.0


def test_disk_cache_loads_the_same_kernel_and_invalidates(cache_dir, monkeypatch):
    src = USER.replace("RATE", "1.5")
    compiled = _solve(_module(src))
    assert compiled.stats["kernel"] == "compiled"
    assert len(list(cache_dir.glob("solve-*.nbk"))) == 1
    _forget()
    loaded = _solve(_module(src))
    assert loaded.stats["kernel"] == "disk"
    np.testing.assert_array_equal(loaded.ys, compiled.ys)  # the very same code

    _forget()  # a changed body
    assert _solve(_module(src.replace("-rate(y[i]) + args[0]", "-rate(y[i]) - args[0]"))).stats["kernel"] == "compiled"
    _forget()  # a changed callee (a global the drift calls), body of the drift unchanged
    changed = _solve(_module(src.replace("return 1.5 * y", "return 1.5 * y * y")))
    assert changed.stats["kernel"] == "compiled"
    _forget()  # a new sdesim (its source digest is part of every key)
    monkeypatch.setattr(fp_module, "_PACKAGE_DIGEST", "another version")
    assert _solve(_module(src)).stats["kernel"] == "compiled"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key"])
def test_a_damaged_entry_is_compiled_again(cache_dir, damage):
    src = USER.replace("RATE", "0.5")
    good = _solve(_module(src))
    (entry,) = cache_dir.glob("solve-*.nbk")
    blob = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(b"\x00not a kernel" * 10)
    elif damage == "truncated":
        entry.write_bytes(blob[: len(blob) // 2])
    else:  # a well-formed entry whose recorded key is not this kernel's
        head, key, payload = blob.split(b"\n", 2)
        entry.write_bytes(head + b"\n" + b"0" * len(key) + b"\n" + payload)
    _forget()
    with pytest.warns(RuntimeWarning, match="dropping unreadable entry"):
        again = _solve(_module(src))
    assert again.stats["kernel"] == "compiled"
    np.testing.assert_array_equal(again.ys, good.ys)
    _forget()
    assert _solve(_module(src)).stats["kernel"] == "disk"  # rewritten


def test_the_cache_can_be_switched_off(cache_dir, monkeypatch):
    monkeypatch.setenv("SDESIM_CACHE", "0")
    assert _solve(_module(USER.replace("RATE", "0.25"))).stats["kernel"] == "compiled"
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


_CHILD = """
import sys, numpy as np, sdesim
sys.path.insert(0, sys.argv[1])
import cache_user as m
sde = sdesim.SDE(m.drift, m.diffusion, dim=2, noise="diagonal", args=(0.1, 0.3))
sol = sdesim.solve(sde, np.array([1.0, 2.0]), np.linspace(0.0, 0.5, 6), dt=0.05, n_paths=6, seed=4)
print(sol.stats["kernel"], repr(float(sol.ys[-1, 3, 1])))
"""


def test_fresh_processes_share_the_cache(tmp_path):
    """Two cold processes compile at once (both write the entry), a third loads it from disk."""
    (tmp_path / "cache_user.py").write_text(textwrap.dedent(USER.replace("RATE", "0.75")))
    env = dict(os.environ, SDESIM_CACHE_DIR=str(tmp_path / "cache"), SDESIM_CACHE="1")
    cmd = [sys.executable, "-c", _CHILD, str(tmp_path)]
    cold = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in cold]
    assert all(p.returncode == 0 for p in cold), [o[1][-2000:] for o in outs]
    warm = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    kinds = [o[0].split()[0] for o in outs] + [warm.stdout.split()[0]]
    values = {o[0].split()[1] for o in outs} | {warm.stdout.split()[1]}
    assert kinds[2] == "disk" and len(values) == 1, (kinds, values)


_FLAGS_CHILD = """
import hashlib, sys
import numba as nb
import numpy as np
import sdesim
from sdesim.normalized import SphereModel, polar_sde, polar_state

@nb.njit
def drift(t, y, args, out):      # a plain @njit: its fast-math flags are not set
    acc = 0.0
    for i in range(y.size):
        acc += y[i] * y[i] * 0.1
    for i in range(y.size):
        out[i] = -acc * y[i] + 0.3 * y[i] * 1.7

@nb.njit
def diffusion(t, y, args, out):
    for i in range(y.size):
        out[i] = 0.2 * y[i] + 0.1

model = SphereModel(10, s=0.7)
y0 = polar_state(np.ones(10), 0.1, model=model)
digests = []
for sde, start, ts, dt in [(polar_sde(model, 0.1, 0.01), y0, np.linspace(0, 50, 6), 0.5),
                           (sdesim.SDE(drift, diffusion, dim=7, noise="diagonal"), np.linspace(0.1, 1, 7),
                            np.linspace(0, 5, 6), 0.01)]:
    for _ in range(2):
        sol = sdesim.solve(sde, start, ts, dt=dt, n_paths=20, seed=3)
        digests.append(hashlib.sha256(sol.ys.tobytes()).hexdigest()[:16])
print(" ".join(digests))
"""


def test_a_cold_and_a_warm_process_give_the_same_bits(tmp_path):
    """Regression: non-inlined functions without explicit fast-math flags (polar_sde's, a user's
    ``@njit`` drift) were compiled with the flags of their first caller, so the process that
    compiled the kernel and one that loaded it from the disk cache gave results a few ulp apart."""
    env = dict(os.environ, SDESIM_CACHE_DIR=str(tmp_path / "cache"), SDESIM_CACHE="1")
    cmd = [sys.executable, "-c", _FLAGS_CHILD]
    cold = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True).stdout.split()
    warm = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True).stdout.split()
    assert cold == warm


def test_dispatchers_get_explicit_fastmath_flags_and_error_model():
    @nb.njit
    def plain(t, y, args, out):
        out[0] = y[0]

    @nb.njit(fastmath=True, error_model="python")
    def chosen(t, y, args, out):
        out[0] = y[0]

    @nb.njit(inline="always")
    def inlined(t, y, args, out):
        out[0] = y[0]

    flagged = flags_module.explicit_flags(plain)
    assert flagged is not plain and flagged.targetoptions["fastmath"] is False
    assert flagged.targetoptions["error_model"] == "numpy"
    half = flags_module.explicit_flags(nb.njit(fastmath=True)(plain.py_func))
    assert half.targetoptions["fastmath"] is True and half.targetoptions["error_model"] == "numpy"
    assert flagged.py_func is plain.py_func and flags_module.explicit_flags(plain) is flagged
    assert flags_module.explicit_flags(chosen) is chosen and flags_module.explicit_flags(inlined) is inlined


def test_explicit_flags_keep_declared_types_and_signatures():
    @nb.njit(locals={"x": nb.float32})
    def narrowing(t, y, args, out):
        x = y[0] * 1.0000001  # declared float32: rounded
        out[0] = x

    @nb.njit("void(float64, float64[:], UniTuple(float64, 0), float64[:])")
    def fixed(t, y, args, out):
        out[0] = y[0]

    flagged = flags_module.explicit_flags(narrowing)
    out = np.empty(1)
    flagged(0.0, np.array([1.0]), (), out)
    assert out[0] == np.float32(1.0000001)  # the float32 declaration survived
    flagged_fixed = flags_module.explicit_flags(fixed)
    assert flagged_fixed.signatures == fixed.signatures and not flagged_fixed._can_compile
