"""What the runners share after the kernels: ensemble moments merged in a fixed order, and the
paths that became non-finite raised or flagged."""

import numpy as np

from ..solution import NonFiniteError

__all__ = ["finish_failures", "merge_chunk_moments", "reduced_mean", "sample_variance"]


def finish_failures(sol, failed, failed_q, ts, n_paths, on_nonfinite):
    """Raise :class:`NonFiniteError` for the paths ``failed`` that became non-finite (at save index
    ``failed_q``), or record them in ``sol.failed``/``failed_at`` (``on_nonfinite="flag"``)."""
    if failed.size:
        times = ts[failed_q]
        if on_nonfinite == "raise":
            raise NonFiniteError(failed, times, n_paths)
        sol.failed, sol.failed_at = failed, times
    return sol


def merge_chunk_moments(count, mean, m2, acc_n, acc_mean, acc_m2):
    """Merge per-chunk (count, mean, M2) into running ones, chunk by chunk in a fixed order (Chan et
    al.): ``count`` (T,), ``mean``/``m2`` (T, n_f); ``acc_*`` have a leading chunk axis."""
    for ch in range(acc_n.shape[0]):
        nb_ = acc_n[ch].astype(np.float64)[:, None]
        na = count[:, None]
        tot = na + nb_
        safe = np.where(tot > 0, tot, 1.0)
        delta = acc_mean[ch] - mean
        mean = mean + delta * (nb_ / safe)
        m2 = m2 + acc_m2[ch] + delta**2 * (na * nb_ / safe)
        count = tot[:, 0]
    return count, mean, m2


def sample_variance(count, m2):
    """``M2 / (count - 1)`` per save time; NaN where fewer than two paths were counted."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[:, None] > 1, m2 / np.maximum(count[:, None] - 1, 1), np.nan)


# ----------------------------------------------------------------------------- validation


def reduced_mean(count, mean):
    """The merged mean, NaN at save times where no path was counted (all failed before them)."""
    return np.where(count[:, None] > 0, mean, np.nan)
