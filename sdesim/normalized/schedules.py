"""Piecewise-constant schedules for the learning rate and the weight decay (time in SGD steps)."""

import numba as nb
import numpy as np

__all__ = ["Schedule", "as_schedule", "schedule_value"]


class Schedule:
    """``values[i]`` on ``[times[i-1], times[i])`` (``times[-1] = -inf``, last value to +inf).

    ``Schedule([0.1, 0.01], [5000])``: 0.1 before step 5000, 0.01 from it on.
    """

    def __init__(self, values, times=()):
        values = np.atleast_1d(np.asarray(values, dtype=np.float64))
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if values.ndim != 1 or times.ndim != 1 or values.size != times.size + 1:
            raise ValueError("a schedule needs len(values) == len(times) + 1")
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"schedule values must be finite and positive, got {values}")
        if times.size and (not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0)):
            raise ValueError(f"schedule times must be finite and strictly increasing, got {times}")
        self.values, self.times = values, times

    def __call__(self, t):
        """Value at time(s) ``t``."""
        return self.values[np.searchsorted(self.times, t, side="right")]

    def __repr__(self):
        return f"Schedule(values={self.values.tolist()}, times={self.times.tolist()})"


def as_schedule(x, name):
    """A number or a :class:`Schedule` -> :class:`Schedule`."""
    if isinstance(x, Schedule):
        return x
    try:
        return Schedule([float(x)])
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number or a Schedule, got {x!r}") from None


@nb.njit(inline="always")
def schedule_value(t, times, values):
    """Compiled lookup of a schedule at time ``t`` (linear scan: schedules are short)."""
    i = 0
    while i < times.size and t >= times[i]:
        i += 1
    return values[i]
