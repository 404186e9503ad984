"""What an experiment of the paper declares: its claim, how it derives its seeds, its run, the
checks that turn its summary into verdict rows, the type of that summary (a ``TypedDict``: the
keys the checks read) and an example of it."""

import math
import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

__all__ = ["Experiment", "row", "fmt", "within", "summary_problems"]


@dataclass(frozen=True)
class Experiment:
    """One check of the paper: ``run(quick, out, seed) -> summary`` and ``checks(summary) -> rows``.

    ``summary_type``: the ``TypedDict`` of the summary ``run`` returns (what ``checks`` reads; a
    run's summary may hold more); the report refuses a summary that does not match it
    (:func:`summary_problems`). ``example_summary``: a summary of that type on which every check
    passes; the tests read both, so the keys are declared once, here.
    """

    name: str
    title: str
    claim: str
    run: Callable[..., Dict[str, Any]]
    checks: Callable[[Dict[str, Any]], List[Dict[str, Any]]]
    seeds: str = ""  # how the experiment derives its seeds from the one it is given
    expected_quick_s: float = 60.0  # rough quick-mode wall time, to start the long ones first
    example_summary: Any = None
    summary_type: Any = None

    def runner(self):
        return self.run


def summary_problems(value, kind, where="summary"):
    """What in ``value`` does not match the type ``kind`` (``TypedDict``, ``List[...]``,
    ``Dict[str, ...]``, ``float``, ``int``, ``bool``, ``str``, ``Any``): a list of one-line problems
    (empty if it matches). A ``float`` accepts ints and None (JSON's NaN); extra keys are allowed,
    keys of a ``total=False`` TypedDict may be missing."""
    if kind is Any:
        return []
    if isinstance(kind, type) and issubclass(kind, dict) and hasattr(kind, "__annotations__"):  # a TypedDict
        if not isinstance(value, dict):
            return [f"{where} is {type(value).__name__}, not a dict"]
        problems = []
        for key, sub in typing.get_type_hints(kind).items():
            if key in value:
                problems += summary_problems(value[key], sub, f"{where}[{key!r}]")
            elif key in kind.__required_keys__:
                problems.append(f"{where} has no key {key!r}")
        return problems
    origin, params = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        if not isinstance(value, list):
            return [f"{where} is {type(value).__name__}, not a list"]
        return [p for i, item in enumerate(value) for p in summary_problems(item, params[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where} is {type(value).__name__}, not a dict"]
        return [p for k, item in value.items() for p in summary_problems(item, params[1], f"{where}[{k!r}]")]
    if kind is float:
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    return [] if ok else [f"{where} is {type(value).__name__} {value!r:.40}, not {kind.__name__}"]


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
