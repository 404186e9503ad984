"""The vectorised exp used by the classifier's softmax, against numpy.exp."""

import numpy as np

from sdesim.normalized._fastexp import exp_nonpositive


def test_exp_nonpositive_matches_numpy_to_a_few_ulp():
    rng = np.random.default_rng(3)
    x = np.concatenate([
        -rng.exponential(3.0, 200_000),              # typical softmax arguments
        -rng.uniform(0.0, 700.0, 200_000),           # the whole accepted range
        -np.linspace(0.0, 1.0, 10_001),              # around the k = 0, -1 boundaries
        -np.log(2.0) * (np.arange(1000) + 0.5),      # half-way points of the range reduction
        [0.0, -0.0, -1e-300, -5e-324, -700.0],
    ])
    got = np.empty_like(x)
    exp_nonpositive(x, got)
    want = np.exp(x)
    rel = np.abs(got - want) / want
    # numpy's exp is itself within ~1 ulp; 4 ulp (8.9e-16) bounds the two together
    assert rel.max() <= 4 * np.finfo(np.float64).eps, rel.max()
    assert got[-5] == 1.0 and got[-4] == 1.0


def test_exp_nonpositive_in_place_and_floor():
    x = np.array([-0.5, -701.0, -1e6, -np.inf, -3.0])
    want = np.exp(np.maximum(x, -700.0))
    exp_nonpositive(x, x)  # out may alias x
    np.testing.assert_allclose(x, want, rtol=4 * np.finfo(np.float64).eps)
    assert np.all(x > 0)


def test_exp_nonpositive_keeps_nan():
    x = np.array([-1.0, np.nan, -2.0])
    out = np.empty(3)
    exp_nonpositive(x, out)
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], np.exp([-1.0, -2.0]), rtol=4 * np.finfo(np.float64).eps)


def test_exp_nonpositive32_matches_float64_exp_to_a_few_float32_ulp():
    from sdesim.normalized._fastexp import exp_nonpositive32, exp_nonpositive_any
    rng = np.random.default_rng(4)
    x = np.concatenate([
        -rng.exponential(3.0, 200_000),
        -rng.uniform(0.0, 87.0, 200_000),              # the whole accepted range
        -np.linspace(0.0, 1.0, 10_001),
        -np.log(2.0) * (np.arange(120) + 0.5),          # half-way points of the range reduction
        [0.0, -0.0, -87.0],
    ]).astype(np.float32)
    got = np.empty_like(x)
    exp_nonpositive32(x, got)
    want = np.exp(x.astype(np.float64))  # exact to float32 precision
    rel = np.abs(got - want) / want
    # rounding the float64 value to float32 alone costs eps/2; 4 eps bounds the polynomial and reduction
    assert rel.max() <= 4 * np.finfo(np.float32).eps, rel.max()
    assert got[-3] == 1.0 and got[-2] == 1.0
    # below the floor: e^-87; NaN stays NaN; the dispatcher picks by dtype
    low = np.array([-88.0, -1e30, -np.inf, np.nan], dtype=np.float32)
    out = np.empty_like(low)
    exp_nonpositive_any(low, out)
    assert np.all(out[:3] == np.float32(np.exp(-87.0))) and np.isnan(out[3])
    x64 = x[:1000].astype(np.float64)
    a, b = np.empty_like(x64), np.empty_like(x64)
    exp_nonpositive_any(x64, a)
    exp_nonpositive(x64, b)
    assert a.tobytes() == b.tobytes()
