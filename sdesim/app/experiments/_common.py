"""What the experiments share: matplotlib on demand, atomic figure writes, the command line."""

import argparse
import os

__all__ = ["pyplot", "save_figure", "command_line"]


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend, or None (and a message) when it is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed; no figure")
        return None
    return plt


def save_figure(fig, path, dpi=110):
    """Write ``fig`` to ``path`` (PNG) through a temporary file and an atomic rename, then close it."""
    import matplotlib.pyplot as plt
    tmp = path + ".tmp.png"
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    except BaseException:  # interrupted or failed: leave no partial figure
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        plt.close(fig)


def command_line(run, doc, name, argv=None):
    """``--quick``, ``--out results/<name>``, ``--seed``; returns ``run(quick, out, seed)``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=f"results/{name}")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    return run(a.quick, a.out, a.seed)
