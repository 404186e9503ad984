"""Piecewise-constant schedules for the learning rate and the weight decay (time in SGD steps)."""

import numbers

import numba as nb
import numpy as np

__all__ = ["Schedule", "as_schedule", "schedule_value", "rate_of_path"]


class Schedule:
    """``values[i]`` on ``[times[i-1], times[i])`` (``times[-1] = -inf``, last value to +inf).

    ``Schedule([0.1, 0.01], [5000])``: 0.1 before step 5000, 0.01 from it on.
    """

    def __init__(self, values, times=()):
        values, times = _numbers(values, "values"), _numbers(times, "times")
        if values.size != times.size + 1:
            raise ValueError(f"a schedule needs len(values) == len(times) + 1, got {values.size} values "
                             f"and {times.size} times")
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"schedule values must be finite and positive, got {values.tolist()}")
        if not np.all(np.isfinite(times)):
            raise ValueError(f"schedule times must be finite, got {times.tolist()}")
        if np.any(np.diff(times) <= 0):
            raise ValueError(f"schedule times must be strictly increasing, got {times.tolist()}")
        self.values, self.times = values, times

    def __call__(self, t):
        """Value at time(s) ``t`` (numbers, not NaN)."""
        t_arr = np.asarray(t)
        if t_arr.dtype.kind not in "iuf" or np.any(np.isnan(t_arr)):
            raise ValueError(f"a schedule is evaluated at real times, not NaN; got {t!r}")
        return self.values[np.searchsorted(self.times, t_arr, side="right")]

    def __repr__(self):
        return f"Schedule(values={self.values.tolist()}, times={self.times.tolist()})"


def _numbers(x, name):
    """A schedule's ``values`` or ``times`` as a 1-d float64 array (a number counts as one entry)."""
    if isinstance(x, (bool, np.bool_, str, bytes)):
        raise TypeError(f"schedule {name} must be numbers, got {x!r}")
    try:
        arr = np.asarray(x)
    except Exception:  # ragged lists
        raise TypeError(f"schedule {name} must be a 1-d sequence of numbers, got {x!r}") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"schedule {name} must be numbers, got dtype {arr.dtype} ({x!r})")
    if arr.ndim > 1:
        raise ValueError(f"schedule {name} must be 1-d, got shape {arr.shape}")
    return np.atleast_1d(arr).astype(np.float64)


def as_schedule(x, name):
    """A number or a :class:`Schedule` -> :class:`Schedule`; ``TypeError``/``ValueError`` naming
    ``name`` for anything else (a string, a bool, a non-positive or non-finite number)."""
    if isinstance(x, Schedule):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a positive number or a Schedule, got {x!r}")
    if not (np.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a positive number or a Schedule, got {x!r}")
    return Schedule([float(x)])


@nb.njit(inline="always", cache=True)
def schedule_value(t, times, values):
    """Compiled lookup of a schedule at time ``t`` (linear scan: schedules are short)."""
    i = 0
    while i < times.size and t >= times[i]:
        i += 1
    return values[i]


def rate_of_path(t, times, values, path):
    """A rate of path ``path`` at time ``t``: the schedule ``(times, values[path])`` where the values
    are per path (2-d, one row per path: :func:`sdesim.per_path`, whose rows have no change times),
    else the schedule ``(times, values)`` of every path (:func:`schedule_value`). Compiled code only."""
    raise NotImplementedError("rate_of_path is for compiled code")


@nb.extending.overload(rate_of_path)
def _rate_of_path(t, times, values, path):
    if values.ndim == 2:
        return lambda t, times, values, path: schedule_value(t, times, values[path])
    return lambda t, times, values, path: schedule_value(t, times, values)
