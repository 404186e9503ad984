"""What the benchmark scripts share: the best-of-n wall time of a call, compile excluded."""

import time

__all__ = ["best_time"]


def best_time(run, repeats):
    """``(seconds, result)``: the least wall time of ``repeats`` calls of ``run()`` after one warm-up
    call (which compiles, or loads, the kernels), and the last call's result."""
    result = run()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - t)
    return best, result
