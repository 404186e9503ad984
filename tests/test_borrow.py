"""Borrowed (not reference-counted) array views used inside the compiled time loop."""

import numba as nb
import numpy as np
import pytest

from sdesim.runners.borrow import borrowed, keep_alive


@nb.njit
def _write_through_borrowed(a):
    b = borrowed(a)
    for i in range(b.shape[0]):
        for j in range(b.shape[1]):
            b[i, j] = 10 * i + j
    return b.shape[0], b.shape[1], b.strides[0], b.strides[1]


@nb.njit
def _borrow_tuple(args):
    x, s, y = borrowed(args)
    x[0] = s
    y[-1] = 2 * s
    return x.sum() + y.sum()


@nb.njit
def _scratch_sum(n):
    own = (np.arange(n) * 1.0, np.ones(n))
    a, b = borrowed(own)
    # allocate and free other arrays while the views are in use: the owners must stay alive
    total = 0.0
    for k in range(50):
        tmp = np.full(n, -1.0)
        total += tmp[0]
    acc = 0.0
    for i in range(n):
        acc += a[i] * b[i]
    keep_alive(own)
    return acc + 0.0 * total


def test_borrowed_view_shares_data_shape_and_strides():
    a = np.zeros((3, 5))[:, ::2]  # non-contiguous
    shape0, shape1, s0, s1 = _write_through_borrowed(a)
    assert (shape0, shape1) == a.shape
    assert (s0, s1) == a.strides
    np.testing.assert_array_equal(a, 10 * np.arange(3)[:, None] + np.arange(3)[None, :])


def test_borrowed_tuple_borrows_arrays_and_passes_other_items():
    x, y = np.zeros(4), np.ones(3)
    total = _borrow_tuple((x, 2.5, y))
    assert x[0] == 2.5 and y[-1] == 5.0
    assert total == pytest.approx(2.5 + 1 + 1 + 5)


def test_borrowed_scratch_stays_valid_while_kept_alive():
    n = 257
    assert _scratch_sum(n) == pytest.approx(float(np.arange(n).sum()))


def test_borrowed_refuses_non_arrays():
    @nb.njit
    def f(x):
        return borrowed(x)

    with pytest.raises(nb.core.errors.TypingError):
        f(1.0)


def test_keep_alive_counts_its_arguments():
    assert keep_alive(np.zeros(2), np.zeros(3)) == 2
