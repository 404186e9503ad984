"""Data sets for the normalized classifiers: scikit-learn's handwritten digits and a Gaussian mixture.

Features are float64 arrays of shape ``(n, p)`` whose last column is a constant 1 (a bias that
lives inside the normalized weights, so the loss stays scale-invariant); labels are int64 in
``[0, n_classes)``.
"""

from dataclasses import dataclass

import numpy as np

from ._checks import check_int, check_real

__all__ = ["Dataset", "load_digits", "gaussian_mixture", "check_dataset"]


@dataclass(frozen=True)
class Dataset:
    """A classification data set with a held-out part.

    ``X`` ``(n, p)``, ``y`` ``(n,)`` train; ``X_test`` ``(m, p)``, ``y_test`` ``(m,)`` held out.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str

    def __post_init__(self):
        """Checks every field; stores features as C-contiguous float64 and labels as int64."""
        k = check_int(self.n_classes, "n_classes", minimum=2)
        object.__setattr__(self, "n_classes", k)
        for xf, yf, part in (("X", "y", "train"), ("X_test", "y_test", "test")):
            X, y = np.asarray(getattr(self, xf)), np.asarray(getattr(self, yf))
            if X.dtype.kind not in "iuf" or y.dtype.kind not in "iuf":
                raise TypeError(f"{part} data: {xf} and {yf} must be real arrays, got dtypes {X.dtype} and {y.dtype}")
            if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
                raise ValueError(f"{part} data: X must be (n, p) and y (n,), got {X.shape} and {y.shape}")
            if not np.all(np.isfinite(X)):
                raise ValueError(f"{part} features contain NaN or inf")
            if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
                raise ValueError(f"{part} labels must be integers (NaN, inf or fractions found)")
            if y.size and (y.min() < 0 or y.max() >= k):
                raise ValueError(f"{part} labels must lie in [0, {k})")
            object.__setattr__(self, xf, np.ascontiguousarray(X, dtype=np.float64))
            object.__setattr__(self, yf, np.ascontiguousarray(y, dtype=np.int64))
        if self.X.shape[1] != self.X_test.shape[1]:
            raise ValueError("train and test features have different widths")
        if self.X.shape[0] < 2:
            raise ValueError("need at least two training samples")

    @property
    def n(self):
        """Number of training samples."""
        return self.X.shape[0]

    @property
    def p(self):
        """Number of features (bias column included)."""
        return self.X.shape[1]

    def __repr__(self):
        return f"Dataset({self.name!r}, n={self.n}, p={self.p}, classes={self.n_classes}, test={len(self.y_test)})"


def check_dataset(data, who):
    """``data`` if it is a :class:`Dataset`, else ``TypeError`` naming ``who``."""
    if not isinstance(data, Dataset):
        raise TypeError(f"{who} needs a Dataset (load_digits(), gaussian_mixture(...)), got {type(data).__name__}")
    return data


def _with_bias(X):
    return np.ascontiguousarray(np.hstack([X, np.ones((X.shape[0], 1))]), dtype=np.float64)


def _split(n, test_fraction, seed):
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return order[n_test:], order[:n_test]


def load_digits(test_fraction=0.25, seed=0):
    """The 8x8 handwritten digits shipped with scikit-learn (1797 images, 10 classes; no download).

    Pixels are scaled to [0, 1] and centred by the training mean; a bias column is appended
    (``p = 65``). ``seed`` picks the train/test split. Needs scikit-learn (the ``data`` extra).
    """
    test_fraction = check_real(test_fraction, "test_fraction", minimum=0.0, below=1.0)
    seed = check_int(seed, "seed", minimum=0)
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:
        raise ImportError("load_digits needs scikit-learn: pip install 'sdesim[data]'") from exc
    raw = _sk_load_digits()
    X = raw.data.astype(np.float64) / 16.0
    y = raw.target.astype(np.int64)
    train, test = _split(len(y), test_fraction, seed)
    mean = X[train].mean(axis=0)
    return Dataset(_with_bias(X[train] - mean), y[train], _with_bias(X[test] - mean), y[test], 10, "digits")


def gaussian_mixture(n=200, dim=5, n_classes=3, separation=2.0, n_test=0, seed=0):
    """A synthetic mixture: class means drawn N(0, separation^2 I / dim) in ``dim`` dimensions,
    unit isotropic noise around them, balanced random labels; a bias column is appended
    (``p = dim + 1``). For tests and small experiments.
    """
    n, dim = check_int(n, "n", minimum=2), check_int(dim, "dim", minimum=1)
    n_classes, n_test = check_int(n_classes, "n_classes", minimum=2), check_int(n_test, "n_test", minimum=0)
    separation = check_real(separation, "separation", minimum=0.0)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    means = rng.normal(scale=separation / np.sqrt(dim), size=(n_classes, dim))

    def draw(m):
        y = rng.integers(0, n_classes, size=m)
        return _with_bias(means[y] + rng.normal(size=(m, dim))), y.astype(np.int64)

    X, y = draw(n)
    X_test, y_test = draw(n_test)
    return Dataset(X, y, X_test, y_test, int(n_classes), f"mixture(n={n}, dim={dim}, K={n_classes})")
