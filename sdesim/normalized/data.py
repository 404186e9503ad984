"""Data sets for the normalized classifiers: scikit-learn's handwritten digits and a Gaussian mixture.

Features are float64 arrays of shape ``(n, p)`` whose last column is a constant 1 (a bias that
lives inside the normalized weights, so the loss stays scale-invariant); labels are int64 in
``[0, n_classes)``.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "load_digits", "gaussian_mixture"]


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
        for X, y, part in ((self.X, self.y, "train"), (self.X_test, self.y_test, "test")):
            if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
                raise ValueError(f"{part} data: X must be (n, p) and y (n,), got {X.shape} and {y.shape}")
            if not np.all(np.isfinite(X)):
                raise ValueError(f"{part} features contain NaN or inf")
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(f"{part} labels must lie in [0, {self.n_classes})")
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


def _with_bias(X):
    return np.ascontiguousarray(np.hstack([X, np.ones((X.shape[0], 1))]), dtype=np.float64)


def _split(n, test_fraction, seed):
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return order[n_test:], order[:n_test]


def load_digits(test_fraction=0.25, seed=0):
    """The 8x8 handwritten digits shipped with scikit-learn (1797 images, 10 classes; no download).

    Pixels are scaled to [0, 1] and centred by the training mean; a bias column is appended
    (``p = 65``). ``seed`` picks the train/test split. Needs scikit-learn (the ``data`` extra).
    """
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
    if n < 2 or dim < 1 or n_classes < 2 or n_test < 0:
        raise ValueError("gaussian_mixture needs n >= 2, dim >= 1, n_classes >= 2, n_test >= 0")
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=separation / np.sqrt(dim), size=(n_classes, dim))

    def draw(m):
        y = rng.integers(0, n_classes, size=m)
        return _with_bias(means[y] + rng.normal(size=(m, dim))), y.astype(np.int64)

    X, y = draw(n)
    X_test, y_test = draw(n_test)
    return Dataset(X, y, X_test, y_test, int(n_classes), f"mixture(n={n}, dim={dim}, K={n_classes})")
