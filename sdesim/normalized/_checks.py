"""Argument checks shared by the paper's models, builders, schedules, theory and discrete SGD.

Every check raises a one-line error naming the argument: ``TypeError`` for a value of the wrong
kind (a string, a bool, None, a complex number), ``ValueError`` for a number out of its range
(2.5 where an integer is needed, NaN, a negative rate). NumPy scalars pass like Python numbers.
"""

import numbers

import numpy as np

__all__ = ["check_int", "check_real", "check_reals", "check_bool", "check_weights", "check_groups", "check_point",
           "check_model"]


def _scalar(value):
    """A 0-d NumPy array as its scalar; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def check_int(value, name, minimum=None, maximum=None):
    """``value`` as an ``int``: an integer (Python or NumPy; not a bool, not 2.0) in ``[minimum, maximum]``."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Number):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}")
    return value


def _bound_text(positive, minimum, maximum, below):
    parts = []
    if positive:
        parts.append("> 0")
    elif minimum is not None:
        parts.append(f">= {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    if below is not None:
        parts.append(f"< {below:g}")
    return " and ".join(parts)


def check_real(value, name, *, positive=False, minimum=None, maximum=None, below=None):
    """``value`` as a finite ``float`` (not a bool or a string), optionally ``> 0``, ``>= minimum``,
    ``<= maximum`` or ``< below``."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    x = float(value)
    bad = (not np.isfinite(x) or (positive and not x > 0) or (minimum is not None and x < minimum)
           or (maximum is not None and x > maximum) or (below is not None and not x < below))
    if bad:
        bounds = _bound_text(positive, minimum, maximum, below)
        raise ValueError(f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    return x


def check_reals(value, name, *, positive=False, minimum=None, below=None):
    """A number or an array of numbers (every entry finite and in range) -> ``float`` or float64 array."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or an array of them, got {value!r}")
    if isinstance(value, numbers.Real):
        return check_real(value, name, positive=positive, minimum=minimum, below=below)
    try:
        arr = np.asarray(value)
    except Exception:  # ragged nested lists and the like
        raise TypeError(f"{name} must be a real number or an array of them, got {type(value).__name__}") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real number or an array of them, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if positive:
        bad |= ~(arr > 0)
    if minimum is not None:
        bad |= arr < minimum
    if below is not None:
        bad |= ~(arr < below)
    if np.any(bad):
        bounds = _bound_text(positive, minimum, None, below)
        raise ValueError(f"{name} must hold finite numbers{' ' + bounds if bounds else ''}; "
                         f"got {arr[bad].flat[0]!r}")
    return arr


def check_bool(value, name):
    """``value`` as a ``bool``: ``True``/``False`` (or a NumPy bool), not ``"no"`` or 1."""
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_weights(w, d, name):
    """``w`` as float64 of shape ``(d,)`` or ``(n, d)``, finite (a real array, not strings or complex)."""
    arr = np.asarray(w)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.shape[-1] != d:
        raise ValueError(f"{name} must have shape ({d},) or (n, {d}), got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def check_groups(w, offsets, name, rows="row"):
    """Refuse a scale-invariant group of ``w`` (``(d,)`` or ``(n, d)``, finite) whose norm is zero,
    or whose squared norm underflows or overflows in ``w``'s dtype (the kernels divide by it)."""
    w2 = np.atleast_2d(w)
    k = len(offsets) - 1
    for j, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        part = w2[:, a:b]
        sq = np.einsum("ij,ij->i", part, part)  # in w's own dtype, like the kernels

        def where(i):
            at = ([f"{rows} {int(i)}"] if w2.shape[0] > 1 else []) + ([f"group {j}, entries {a}:{b}"] if k > 1 else [])
            return f" ({', '.join(at)})" if at else ""

        zero = np.flatnonzero(sq == 0)
        if zero.size:
            if np.any(part[zero[0]] != 0):
                raise ValueError(f"a scale-invariant group of {name} has a norm too small to square in "
                                 f"{w2.dtype}{where(zero[0])}; rescale it (the model is scale-invariant)")
            raise ValueError(f"a scale-invariant group of {name} is zero; its direction is undefined{where(zero[0])}")
        big = np.flatnonzero(~np.isfinite(sq))
        if big.size:
            raise ValueError(f"a scale-invariant group of {name} has a norm too large to square in {w2.dtype}"
                             f"{where(big[0])}; rescale it (the model is scale-invariant)")


def check_point(w, d, offsets, name="w"):
    """One parameter vector: float64 of shape ``(d,)``, finite, every group of positive norm."""
    arr = np.asarray(w)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    if arr.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    check_groups(arr, offsets, name)
    return arr


def check_model(model, who):
    """A model of :mod:`sdesim.normalized` (anything with the model interface), else ``TypeError``."""
    needed = ("d", "noise_dim", "n_groups", "group_offsets", "params", "grad_kernel", "noise_product_kernel",
              "noise_factor_kernel", "noise_trace_kernel")
    missing = [a for a in needed if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{who} needs a model of sdesim.normalized (SphereModel, NormalizedLinearClassifier, "
                        f"WeightNormMLP), got {type(model).__name__} (no {missing[0]!r})")
    return model
