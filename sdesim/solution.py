"""The result object of :func:`sdesim.solve`."""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Solution", "NonFiniteError"]


class NonFiniteError(FloatingPointError):
    """Some paths became NaN or infinite. ``paths`` are their indices, ``times`` the first
    save time at which each was seen non-finite."""

    def __init__(self, paths, times, n_paths):
        self.paths = np.asarray(paths)
        self.times = np.asarray(times)
        shown = ", ".join(f"path {p} by t={t:g}" for p, t in zip(self.paths[:5], self.times[:5]))
        more = "" if len(self.paths) <= 5 else f", ... ({len(self.paths) - 5} more)"
        super().__init__(
            f"{len(self.paths)} of {n_paths} paths became non-finite: {shown}{more}. "
            "Reduce dt, check the drift/diffusion, or pass on_nonfinite='flag' to get the "
            "finite paths with the failed ones marked.")


@dataclass
class Solution:
    """What :func:`sdesim.solve` returns.

    Attributes
    ----------
    ts : (T,) save times.
    ys : (T, n_paths, dim) states at the save times, or None when reduced on the fly.
    ws : (T, n_paths, noise_dim) Brownian path ``W(ts) - W(ts[0])`` of each path, or None (the
        true values for failed paths too).
    mean, var : (T, F) ensemble mean and (unbiased) variance of the state or functional at
        each save time, when ``reduce=True``; None otherwise.
    count : (T,) number of finite paths in ``mean``/``var`` (reduce mode).
    failed : indices of paths that became non-finite (only with ``on_nonfinite="flag"``);
        their ``ys`` rows are NaN from ``failed_at`` on.
    failed_at : first save time at which each failed path was non-finite.
    brownian : the :class:`~sdesim.BrownianPath` the solve read (``ws`` equals
        ``brownian.values(ts, paths, dt=dt)`` to rounding); pass it as ``bm=`` to read it again.
    event_t : (n_paths,) the time of each path's event (``solve(..., event=)``): the first time the
        event function is ``>= 0``, NaN if it is not reached by ``ts[-1]``; None without an event.
    method, dt, seed, dtype : how the solve was made.
    stats : compile and run seconds, number of steps, Levy sub-steps.
    """

    ts: np.ndarray
    ys: np.ndarray = None
    ws: np.ndarray = None
    mean: np.ndarray = None
    var: np.ndarray = None
    count: np.ndarray = None
    failed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    failed_at: np.ndarray = field(default_factory=lambda: np.zeros(0))
    event_t: np.ndarray = None
    method: str = "euler"
    dt: float = None
    brownian: object = None
    seed: int = 0
    dtype: str = "float64"
    stats: dict = field(default_factory=dict)

    @property
    def success(self):
        """True when no path became non-finite."""
        return self.failed.size == 0

    @property
    def n_paths(self):
        return self.stats.get("n_paths")

    def __repr__(self):
        shape = None if self.ys is None else self.ys.shape
        return (f"Solution(method={self.method!r}, dt={self.dt}, T={len(self.ts)}, ys.shape={shape}, "
                f"reduced={self.mean is not None}, failed={self.failed.size})")
