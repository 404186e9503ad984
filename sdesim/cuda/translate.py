"""The user's Python functions, compiled a second time for the GPU.

An SDE's drift, diffusion, ... are plain Python functions (or ``numba.njit`` dispatchers around
them) that may call other njit functions by name: globals (``schedule_value``) or closure
variables (the model kernels ``sgd_sde`` captures). :func:`device_function` rebuilds each such
function from its own code object with every njit function it reaches replaced by its CUDA twin
(recursively), and compiles the result with ``numba.cuda.jit(device=True)``. The CPU and GPU
backends therefore run the very same source.

What a per-thread kernel cannot do is refused before compiling, with the function's name:
allocating arrays (``np.empty``, ``np.zeros``, ...), BLAS (``np.dot``, ``@``) and copies. A
thread has fixed-size local arrays only; the state, drift, diffusion and increments sdesim
hands the user functions are such arrays.
"""

import dis
import math
import types

import numpy as np
from numba import config, cuda
from numba.core.dispatcher import Dispatcher

from .errors import GPUUnsupportedError

__all__ = ["device_function", "problems_of"]

#: NumPy functions a per-thread CUDA kernel has no equivalent for (they allocate, or call BLAS).
_NUMPY_ALLOCATING = frozenset({
    "empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like", "full_like",
    "array", "asarray", "ascontiguousarray", "copy", "arange", "linspace", "concatenate", "stack",
    "hstack", "vstack", "dot", "vdot", "matmul", "inner", "outer", "tensordot", "einsum", "linalg",
    "sort", "argsort", "cumsum"})
#: Array methods that allocate or call BLAS.
_METHODS_ALLOCATING = frozenset({"dot", "copy", "astype", "flatten", "tolist"})


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _problems(py):
    """Names of what ``py`` does that a CUDA thread cannot: ``["np.dot", "@", ...]``."""
    found = []
    g = py.__globals__
    for code in _code_objects(py.__code__):
        prev = None
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                name = ins.argval
                base = g.get(prev.argval) if prev is not None and prev.opname == "LOAD_GLOBAL" else None
                if base is np and name in _NUMPY_ALLOCATING:
                    found.append(f"np.{name}")
                elif base is None and name in _METHODS_ALLOCATING:
                    found.append(f".{name}()")
            elif ins.opname == "BINARY_OP" and ins.argrepr in ("@", "@="):
                found.append("@ (matrix product)")
            elif ins.opname in ("BINARY_MATRIX_MULTIPLY", "INPLACE_MATRIX_MULTIPLY"):
                found.append("@ (matrix product)")
            prev = ins
    return sorted(set(found))


def problems_of(func, what):
    """``None`` if ``func`` and every njit function it reaches can run in a CUDA thread, else a
    message naming the functions and what they do that a thread cannot (allocate, call BLAS)."""
    found = []
    _walk(func, set(), found)
    if not found:
        return None
    where = "; ".join(f"{q} (in {mod}) uses {', '.join(bad)}" for q, mod, bad in found[:4])
    return (f"{what}: {where}{' ...' if len(found) > 4 else ''}. A CUDA thread has fixed-size local "
            "arrays only, no allocation and no BLAS: write the functions with loops over the arrays "
            "sdesim passes in, or run with device='cpu'.")


def _walk(func, seen, found):
    py = func.py_func if isinstance(func, Dispatcher) else func
    if py in seen:
        return
    seen.add(py)
    bad = _problems(py)
    if bad:
        found.append((py.__qualname__, py.__module__, bad))
    for callee in _callees(py).values():
        _walk(callee, seen, found)


def _callees(py):
    """The njit dispatchers ``py`` reaches by name: ``{("g", name) or ("c", i): dispatcher}``."""
    out = {}
    names = set()
    for code in _code_objects(py.__code__):
        names.update(code.co_names)
    for name in names:
        val = py.__globals__.get(name)
        if isinstance(val, Dispatcher):
            out[("g", name)] = val
    for i, cell in enumerate(py.__closure__ or ()):
        try:
            val = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(val, Dispatcher):
            out[("c", i)] = val
    return out


#: NumPy scalar math the CUDA target may not lower (numba-cuda's ufunc table has no np.sqrt, say),
#: and the ``math`` function (same result on float32/float64 scalars) that it does.
_NP_TO_MATH = {
    "sqrt": math.sqrt, "exp": math.exp, "expm1": math.expm1, "log": math.log, "log1p": math.log1p,
    "log2": math.log2, "log10": math.log10, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan, "arctan2": math.atan2,
    "hypot": math.hypot, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
    "arcsinh": math.asinh, "arccosh": math.acosh, "arctanh": math.atanh, "fabs": math.fabs,
    "abs": abs, "absolute": abs, "isfinite": math.isfinite, "isnan": math.isnan, "isinf": math.isinf,
    "copysign": math.copysign, "maximum": max, "minimum": min}


def _numpy_for_cuda():
    """A stand-in for the ``numpy`` module in device code: scalar math from :data:`_NP_TO_MATH`,
    everything else numpy's own."""
    mod = types.ModuleType("numpy_for_cuda")
    mod.__dict__.update(_NP_TO_MATH)
    mod.__getattr__ = lambda name: getattr(np, name)
    return mod


_NP = _numpy_for_cuda()

#: compiled CUDA device functions, by the Python function they come from
_DEVICE = {}


def device_function(func, what="function"):
    """The CUDA device function compiled from ``func`` (a Python function or an njit dispatcher).

    Every njit dispatcher ``func`` calls through a global or a closure variable is translated
    the same way. Refuses (``GPUUnsupportedError``) functions that allocate or call BLAS.
    """
    msg = problems_of(func, what)
    if msg is not None:
        raise GPUUnsupportedError(msg)
    return _translate(func, ())


def _translate(func, stack):
    py = func.py_func if isinstance(func, Dispatcher) else func
    if py in _DEVICE:
        return _DEVICE[py]
    if py in stack:
        raise GPUUnsupportedError(f"{py.__qualname__} is recursive; CUDA device functions cannot recurse here")
    callees = _callees(py)
    names = set()
    for code in _code_objects(py.__code__):
        names.update(code.co_names)
    # on a GPU, numpy's scalar math goes through `math` (the simulator runs numpy itself)
    np_names = [] if config.ENABLE_CUDASIM else [n for n in names if py.__globals__.get(n) is np]
    glob, closure = py.__globals__, py.__closure__
    if callees or np_names:
        replaced = {key: _translate(disp, stack + (py,)) for key, disp in callees.items()}
        glob = dict(py.__globals__)
        for n in np_names:
            glob[n] = _NP
        cells = list(py.__closure__ or ())
        for (kind, key), dev in replaced.items():
            if kind == "g":
                glob[key] = dev
            else:
                cells[key] = types.CellType(dev)
        closure = tuple(cells) if py.__closure__ is not None else None
    clone = types.FunctionType(py.__code__, glob, py.__name__, py.__defaults__, closure)
    clone.__qualname__, clone.__module__ = py.__qualname__, py.__module__
    clone.__kwdefaults__ = py.__kwdefaults__
    # njit(inline="always") helpers (e.g. one returning a reshaped view) must be inlined at the
    # IR level on the device too: a device function cannot return an array it made
    inline = func.targetoptions.get("inline") if isinstance(func, Dispatcher) else None
    dev = cuda.jit(device=True, inline="always")(clone) if inline == "always" else cuda.jit(device=True)(clone)
    _DEVICE[py] = dev
    return dev
