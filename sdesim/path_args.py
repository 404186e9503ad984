"""Per-path parameters: an entry of an SDE's ``args`` that holds one value per path.

``SDE(..., args=(per_path(rates), 0.3))`` gives path ``p`` the argument ``rates[p]`` (a number if
``rates`` is 1-d, a row view otherwise) in every call of its functions, so a grid of parameters
runs as one solve. ``args`` may be a ``NamedTuple`` (its functions then read entries by name); the
splitting keeps its class. Path ``p`` of such a solve is bitwise the path ``p`` of a solve of the same SDE
with ``rates[p]`` in every path: the Brownian path depends on the path index, not on the values.
"""

import numpy as np

__all__ = ["PerPath", "per_path", "split_args", "args_of_path", "same_kind"]


class PerPath:
    """One value per path: ``values[p]`` for path ``p`` (leading axis = the number of paths)."""

    def __init__(self, values):
        arr = np.asarray(values)
        if arr.ndim < 1 or arr.shape[0] < 1:
            raise ValueError(f"per_path needs an array with a leading axis of one entry per path, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr) or arr.dtype == bool:
            raise TypeError(f"per_path values must be a real numeric array, got dtype {arr.dtype}")
        self.values = np.ascontiguousarray(arr)

    def __len__(self):
        return self.values.shape[0]

    def __repr__(self):
        return f"per_path(shape={self.values.shape}, dtype={self.values.dtype})"


def per_path(values):
    """Mark ``values`` (leading axis: one entry per path) as a per-path entry of ``SDE.args``."""
    return values if isinstance(values, PerPath) else PerPath(values)


def same_kind(args, items):
    """``items`` as a tuple of the kind ``args`` is: the same NamedTuple class, or a plain tuple."""
    items = tuple(items)
    return type(args)(*items) if hasattr(args, "_fields") else items


def split_args(args, n_paths):
    """``(plain, mask)``: ``args`` with per-path entries unwrapped to their arrays, and which entries
    are per path. A per-path entry must have exactly ``n_paths`` entries (a clear error otherwise)."""
    mask = tuple(isinstance(a, PerPath) for a in args)
    for i, a in enumerate(args):
        if isinstance(a, PerPath) and len(a) != n_paths:
            raise ValueError(f"args[{i}] is per path with {len(a)} entries but the solve has n_paths={n_paths}")
    return same_kind(args, (a.values if isinstance(a, PerPath) else a for a in args)), mask


def args_of_path(args, p):
    """The arguments path ``p`` sees (per-path entries replaced by their entry ``p``)."""
    return same_kind(args, (a.values[p] if isinstance(a, PerPath) else a for a in args))
