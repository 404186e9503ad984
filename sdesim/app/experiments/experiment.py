"""What an experiment of the paper declares: its claim, how it derives its seeds, its run, the
checks that turn its summary into verdict rows, and an example of the summary those checks read."""

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

__all__ = ["Experiment", "row", "fmt", "within"]


@dataclass(frozen=True)
class Experiment:
    """One check of the paper: ``run(quick, out, seed) -> summary`` and ``checks(summary) -> rows``.

    ``example_summary``: a summary shaped like ``run``'s (the keys ``checks`` reads) on which
    every check passes; the tests read it, so the keys are declared once, here.
    """

    name: str
    title: str
    claim: str
    run: Callable[..., Dict[str, Any]]
    checks: Callable[[Dict[str, Any]], List[Dict[str, Any]]]
    seeds: str = ""  # how the experiment derives its seeds from the one it is given
    expected_quick_s: float = 60.0  # rough quick-mode wall time, to start the long ones first
    example_summary: Any = None

    def runner(self):
        return self.run


def row(quantity, prediction, measured, tolerance, ok):
    """A table row; ``ok`` True/False gives pass/fail, None gives info."""
    verdict = "info" if ok is None else ("pass" if ok else "fail")
    return {"quantity": quantity, "prediction": prediction, "measured": measured, "tolerance": tolerance,
            "verdict": verdict}


def fmt(x, nd=3):
    """Compact number formatting for the table."""
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{nd - 1}e}"
    return f"{x:.{nd}g}"


def within(x, target, tol):
    """``x`` is a finite number within ``tol`` of ``target``."""
    return x is not None and math.isfinite(x) and abs(x - target) <= tol
