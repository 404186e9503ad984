"""The vectorised tanh of the MLP's hidden units, against numpy.tanh."""

import numpy as np

from sdesim.normalized._fasttanh import tanh_array, tanh_of


def test_tanh_matches_numpy_to_a_few_ulp():
    rng = np.random.default_rng(5)
    x = np.concatenate([
        rng.normal(size=200_000) * 2.0,               # typical pre-activations
        rng.uniform(-0.45, 0.45, 200_000),            # the series and its switch-over at |x| = 0.4
        np.linspace(-1.0, 1.0, 100_001),
        rng.uniform(-40.0, 40.0, 100_000),            # saturation
        np.nextafter(0.4, [0.0, 1.0]), -np.nextafter(0.4, [0.0, 1.0]),
        [1e-300, -1e-300, 5e-324, 1e-8, 19.0, 20.0],
    ])
    got, want = tanh_of(x), np.tanh(x)
    ulps = np.abs(got - want) / np.spacing(np.abs(want))
    # numpy's tanh is itself within ~1 ulp; the series (truncation < 1e-17 |x|) and (1 - e)/(1 + e)
    # with e = exp(-2|x|) <= 0.45 (exp within 4 ulp, amplified by e/(1-e) < 0.82) stay within 4 more
    assert ulps.max() <= 5, (ulps.max(), x[np.argmax(ulps)])
    assert np.all(np.abs(got) <= 1.0)


def test_float32_tanh_matches_numpy_to_a_few_float32_ulp():
    """The float32 form (the MLP's float32 block form): float32 arithmetic and float32's exp, against
    NumPy's float64 tanh rounded to float32. The series to x^13 (next term < 4e-9 |x| at 0.4)
    and (1 - e)/(1 + e) (float32's exp within a few ulp, amplified by e/(1-e) < 0.82): 3 ulp."""
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.normal(size=200_000) * 2.0, rng.uniform(-0.45, 0.45, 200_000),
                        np.linspace(-1.0, 1.0, 100_001), rng.uniform(-20.0, 20.0, 100_000),
                        [1e-30, -1e-30, 1e-8, 9.0, 10.0]]).astype(np.float32)
    got = tanh_of(x)
    assert got.dtype == np.float32
    want = np.tanh(x.astype(np.float64)).astype(np.float32)
    ulps = np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want)).astype(np.float64)
    assert ulps.max() <= 3, (ulps.max(), x[np.argmax(ulps)])
    edges = tanh_of(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 100.0], dtype=np.float32))
    assert edges[0] == 0.0 and np.signbit(edges[1]) and edges[2] == 1.0 and edges[3] == -1.0
    assert np.isnan(edges[4]) and edges[5] == 1.0


def test_tanh_edges_and_shapes():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 800.0, -800.0])
    got = tanh_of(x)
    assert got[0] == 0.0 and not np.signbit(got[0]) and np.signbit(got[1])
    assert got[2] == 1.0 and got[3] == -1.0 and np.isnan(got[4])
    assert got[5] == 1.0 and got[6] == -1.0
    m = np.random.default_rng(1).normal(size=(7, 5))
    np.testing.assert_array_equal(tanh_of(m), tanh_of(m.ravel()).reshape(7, 5))
    out = np.empty(35)
    tanh_array(m.ravel(), out)
    np.testing.assert_array_equal(out, tanh_of(m).ravel())
