"""Fingerprints of compiled code's inputs: a digest that changes whenever what Numba would compile
from a Python function changes.

:func:`fingerprint` hashes a value together with everything a compiled function depends on: for a
function, its bytecode and constants (not its line numbers), its defaults, the values in its
closure and the globals its code names (recursively through the functions it calls); for a Numba
dispatcher, its options and Python function; numbers, strings, tuples, NumPy scalars, dtypes and
arrays by value. Objects of sdesim itself are named only (the package's source is hashed as a whole,
:func:`package_digest`); objects of NumPy, Numba, SciPy and the standard library by name and the
library's version. Anything else (an arbitrary object in a closure, a class of the user's) has no
fingerprint: :func:`fingerprint` returns ``None`` and callers fall back to object identity.
"""

import hashlib
import importlib.metadata
import os
import sys
import types

import numpy as np
from numba.core.dispatcher import Dispatcher

__all__ = ["fingerprint", "package_digest"]

#: Top-level modules whose objects are fingerprinted by name and the library's version.
_LIBRARIES = ("numpy", "numba", "scipy", "math", "cmath", "builtins", "operator", "llvmlite")
_PACKAGE = __name__.split(".")[0]  # "sdesim"
_PACKAGE_DIGEST = None


class _Unsupported(Exception):
    """A value with no fingerprint."""


def fingerprint(obj):
    """Hex digest of ``obj`` and what compiled code made from it depends on, or ``None`` if some
    part of it has no fingerprint (see the module docstring)."""
    h = hashlib.sha256()
    try:
        _feed(obj, h, set())
    except _Unsupported:
        return None
    return h.hexdigest()


def package_digest():
    """Digest of sdesim's own source (every ``.py`` file of the package) with its version and the
    versions of Python, NumPy, Numba and llvmlite: a new sdesim (or an edited one) gives new keys."""
    global _PACKAGE_DIGEST
    if _PACKAGE_DIGEST is None:
        h = hashlib.sha256()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
        h.update(repr((sys.version_info[:3], _version(_PACKAGE), _version("numpy"), _version("numba"),
                       _version("llvmlite"))).encode())
        _PACKAGE_DIGEST = h.hexdigest()
    return _PACKAGE_DIGEST


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _root(module_name):
    return (module_name or "").split(".")[0]


def _put(h, *parts):
    for p in parts:
        b = p if isinstance(p, bytes) else str(p).encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)


def _feed(obj, h, seen):
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        _put(h, type(obj).__name__, repr(obj))
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise _Unsupported("object array")
        _put(h, "ndarray", obj.dtype.str, obj.shape, hashlib.sha256(np.ascontiguousarray(obj).tobytes()).digest())
    elif isinstance(obj, np.generic):
        _put(h, "npscalar", obj.dtype.str, obj.tobytes())
    elif isinstance(obj, np.dtype):
        _put(h, "dtype", obj.str)
    elif isinstance(obj, (tuple, list)):
        _put(h, type(obj).__qualname__ if type(obj) in (tuple, list) or _is_named_tuple(obj) else _unsupported(obj),
             len(obj))
        for item in obj:
            _feed(item, h, seen)
    elif isinstance(obj, (set, frozenset)):
        items = sorted(obj, key=repr)
        _put(h, "set", len(items))
        for item in items:
            _feed(item, h, seen)
    elif isinstance(obj, dict):
        _put(h, "dict", len(obj))
        for key in sorted(obj, key=repr):
            _feed(key, h, seen)
            _feed(obj[key], h, seen)
    elif isinstance(obj, Dispatcher):
        _put(h, "dispatcher")
        _feed(_options(obj.targetoptions), h, seen)
        _feed(obj.py_func, h, seen)
    elif isinstance(obj, types.FunctionType):
        _feed_function(obj, h, seen)
    elif isinstance(obj, types.ModuleType):
        _feed_named(obj.__name__, "", h)
    elif _root(getattr(obj, "__module__", None)) in _LIBRARIES + (_PACKAGE,):
        if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
            _feed_named(obj.__module__, obj.__qualname__, h)
        elif _root(type(obj).__module__) == _PACKAGE and hasattr(obj, "__dict__"):  # e.g. a scheme
            _put(h, "object", type(obj).__module__, type(obj).__qualname__)
            _feed(vars(obj), h, seen)
        else:  # an instance (numba.float32 and numba.float64 are both Float): by its repr too
            _feed_named(obj.__module__, type(obj).__qualname__ + ":" + repr(obj), h)
    else:
        _unsupported(obj)


def _unsupported(obj):
    raise _Unsupported(type(obj).__qualname__)


def _is_named_tuple(obj):
    return isinstance(obj, tuple) and hasattr(type(obj), "_fields")


def _options(targetoptions):
    """A Numba dispatcher's options as plain values (sets of fast-math flags sorted)."""
    out = {}
    for key, value in targetoptions.items():
        if hasattr(value, "flags"):  # numba's FastMathOptions
            value = sorted(value.flags)
        out[key] = value
    return out


def _feed_named(module_name, qualname, h):
    """An object of a library (by name and version) or of sdesim (by name: its source is hashed)."""
    root = _root(module_name)
    version = "" if root == _PACKAGE else (_version(root) if root in sys.modules else "")
    _put(h, "named", module_name, qualname, version)


def _code_names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _feed_code(code, h, seen):
    _put(h, "code", code.co_code, code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
         code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(const, h, seen)
        else:
            _feed(const, h, seen)


def _feed_function(func, h, seen):
    root = _root(func.__module__)
    if root in _LIBRARIES:
        _feed_named(func.__module__, func.__qualname__, h)
        return
    if id(func) in seen:  # recursion (a function calling itself, directly or not)
        _put(h, "seen", func.__module__, func.__qualname__)
        return
    seen.add(id(func))
    _put(h, "function", func.__module__, func.__qualname__)
    if root != _PACKAGE:  # (sdesim's code and globals are in package_digest; its closures are not)
        _feed_code(func.__code__, h, seen)
    _feed(func.__defaults__, h, seen)
    _feed(func.__kwdefaults__, h, seen)
    for cell in func.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            _put(h, "empty cell")
            continue
        _feed(value, h, seen)
    if root == _PACKAGE:
        return
    names = _code_names(func.__code__)
    for name in sorted(names):
        if name not in func.__globals__:
            continue  # a builtin, or an attribute name
        value = func.__globals__[name]
        _put(h, "global", name)
        _feed(value, h, seen)
        if isinstance(value, types.ModuleType) and _root(value.__name__) not in _LIBRARIES + (_PACKAGE,):
            # a user module: the attributes the code may read from it (``mod.helper(...)``)
            for attr in sorted(names):
                if not attr.startswith("__") and hasattr(value, attr):
                    _put(h, "attribute", attr)
                    _feed(getattr(value, attr), h, seen)
