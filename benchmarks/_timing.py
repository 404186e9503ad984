"""What the benchmark scripts share: the best-of-n wall time of a call (compile excluded), a child
process that measures in another checkout of sdesim, and the check of where results go."""

import json
import os
import platform
import subprocess
import sys
import time

__all__ = ["best_time", "run_in_checkout", "writable_out_dir", "add_comparison_options", "comparison_sides",
           "write_comparison"]


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


def run_in_checkout(root, code, *args):
    """Run the Python ``code`` (which prints a JSON object on its last line) with the sdesim of the
    checkout ``root`` (a folder holding ``sdesim/``), with ``args`` as its ``sys.argv[1:]``; returns
    the object. Alternating such children lets two checkouts be measured in one machine state."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(root))
    out = subprocess.run([sys.executable, "-c", code, *(str(a) for a in args)], env=env, capture_output=True,
                         text=True, check=True, cwd=os.path.abspath(root))
    return json.loads(out.stdout.strip().splitlines()[-1])


def writable_out_dir(path):
    """Make the folder of the results file ``path`` and check that it can be written, before any
    result is computed (nothing computed is then lost to a bad path)."""
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise SystemExit(f"cannot write to {out_dir}")


#: this checkout (the folder holding ``sdesim/`` and ``benchmarks/``)
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def add_comparison_options(ap, out, repeats):
    """The options of a this-checkout-against-another benchmark: ``--baseline``, ``--repeats``,
    ``--rounds`` (alternating rounds of both checkouts, best kept) and ``--out``."""
    ap.add_argument("--baseline", default=None, help="an earlier checkout of sdesim to measure beside this one")
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=out)


def comparison_sides(a):
    """Check where ``a.out`` goes (before anything is measured), put this checkout's sdesim first on
    ``sys.path`` and return the sides to measure: ``[("new", HERE)]`` and ``("baseline", path)``."""
    writable_out_dir(a.out)
    sys.path.insert(0, HERE)
    return [("new", HERE)] + ([("baseline", a.baseline)] if a.baseline else [])


def write_comparison(a, rows, **extra):
    """Write ``rows`` with the baseline's path, the machine and its load (and ``extra``) to ``a.out``,
    atomically."""
    from sdesim.app._io import write_json_atomic
    write_json_atomic(a.out, {"rows": rows, "baseline": a.baseline and os.path.abspath(a.baseline),
                              "machine": platform.processor() or platform.machine(),
                              "load_average": list(os.getloadavg()), **extra})
    print("->", a.out)

