"""The block kernel (sdesim.runners.block_kernel): Euler on blocks of paths (the model's block_paths for the
precision: the classifier 8 in float64, 32 in float32; the MLP 16) with GEMMs per pass,
for the digits classifier's sgd_sde (and the MLP's, at the end). The models' combined block kernel
(a grad L + b S dB for every path from one weighted sum) against their per-path gradient and noise
product, for weights a, b that no Euler step uses.

Against the per-path kernel on the same Brownian paths (agreement to rounding: the GEMMs sum in
another order; bound 1e-12 of the largest state after 10 steps in float64, 1e-5 in float32), the
same bits whatever the split of paths, n_paths or the thread count (the last block is padded, so
every GEMM has the same shape), reduce mode against stored paths, and when it is (not) used.
"""

import numba as nb
import numpy as np
import pytest

import sdesim
import sdesim.runners.cpu as cpu
from sdesim import per_path
from sdesim.normalized import NormalizedLinearClassifier, WeightNormMLP, load_digits, sgd_sde
from sdesim.runners.block_kernel import BLOCK_PATHS, block_size

TS = np.array([0.0, 4.0, 10.0])


@nb.njit
def _keep(t, y, args):  # a projection that changes nothing: only its presence matters
    pass


@pytest.fixture(scope="module")
def clf():
    model = NormalizedLinearClassifier(load_digits(), batch_size=32)
    return model, sgd_sde(model, 0.1, 1e-3), model.random_init(norm=1.0, seed=0)


def _solve(sde, w0, **kw):
    kw.setdefault("n_paths", 70)
    return sdesim.solve(sde, w0, kw.pop("ts", TS), dt=1.0, seed=3, **kw)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_blocks_agree_with_the_per_path_kernel(clf, monkeypatch, dtype, tol):
    _, sde, w0 = clf
    blocks = _solve(sde, w0, dtype=dtype)
    assert blocks.stats["paths_per_block"] == {"float64": 8, "float32": 32}[dtype]
    monkeypatch.setattr(cpu, "block_eligible", lambda plan: False)
    single = _solve(sde, w0, dtype=dtype)
    assert single.stats["paths_per_block"] == 1
    scale = float(np.max(np.abs(single.ys)))
    np.testing.assert_allclose(blocks.ys, single.ys, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("n_paths,threads,dtype", [(5, 1, "float64"), (32, 2, "float64"), (33, 1, "float64"),
                                                  (130, 2, "float64"), (5, 2, "float32"), (130, 1, "float32")])
def test_a_paths_bits_do_not_depend_on_the_split_or_the_threads(clf, n_paths, threads, dtype):
    _, sde, w0 = clf
    ref = _solve(sde, w0, n_paths=70, n_threads=2, dtype=dtype)
    other = _solve(sde, w0, n_paths=n_paths, n_threads=threads, dtype=dtype)
    k = min(n_paths, 70)
    np.testing.assert_array_equal(other.ys[:, :k], ref.ys[:, :k])
    y0s = np.repeat(w0[None], 70, axis=0)  # per-path initial states: the same numbers
    np.testing.assert_array_equal(_solve(sde, y0s, n_paths=70, dtype=dtype).ys, ref.ys)


def test_diverging_paths_are_flagged_as_by_the_per_path_kernel(clf, monkeypatch):
    """lr = wd = 1e10: each step multiplies W by about -1e19 until it overflows. Both kernels flag
    every path at the same save time, the later save times NaN, the others untouched."""
    model, _, w0 = clf
    sde = sgd_sde(model, 1e10, 1e10)
    ts = np.arange(0.0, 41.0, 5.0)
    blocks = _solve(sde, w0, ts=ts, n_paths=40, on_nonfinite="flag")
    assert blocks.stats["paths_per_block"] == 8 and blocks.failed.size == 40
    monkeypatch.setattr(cpu, "block_eligible", lambda plan: False)
    single = _solve(sde, w0, ts=ts, n_paths=40, on_nonfinite="flag")
    np.testing.assert_array_equal(blocks.failed, single.failed)
    np.testing.assert_array_equal(blocks.failed_at, single.failed_at)
    assert np.array_equal(np.isnan(blocks.ys), np.isnan(single.ys))


def test_reduce_mode_gives_the_moments_of_the_stored_paths(clf):
    _, sde, w0 = clf
    stored = _solve(sde, w0, n_paths=150)
    red = _solve(sde, w0, n_paths=150, reduce=True)
    np.testing.assert_array_equal(red.count, 150)
    np.testing.assert_allclose(red.mean, stored.ys.mean(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(red.var, stored.ys.var(axis=1, ddof=1), rtol=1e-9, atol=1e-18)


def test_the_block_kernel_runs_only_plain_euler_solves(clf):
    """Saved Brownian values, off-grid save times, debug mode and projections go to the per-path
    kernel (which reads the same Brownian paths: the same numbers to rounding)."""
    model, sde, w0 = clf
    base = _solve(sde, w0, n_paths=3)
    for kw in (dict(save_brownian=True), dict(ts=np.array([0.0, 4.5, 10.0]))):
        sol = _solve(sde, w0, n_paths=3, **kw)
        assert sol.stats["paths_per_block"] == 1, kw
    np.testing.assert_allclose(_solve(sde, w0, n_paths=3, save_brownian=True).ys, base.ys, rtol=0,
                               atol=1e-12 * float(np.max(np.abs(base.ys))))
    assert _solve(sde, w0, n_paths=3, debug=True).stats["paths_per_block"] == 1
    projected = sde.with_args(sde.args)
    projected.projection = _keep
    from sdesim.runners.block_kernel import block_eligible
    from sdesim.plan import make_plan
    assert block_eligible(make_plan(sde, w0, TS, dt=1.0, n_paths=3))
    assert not block_eligible(make_plan(projected, w0, TS, dt=1.0, n_paths=3))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_per_path_rates_run_in_blocks_each_path_bitwise_as_alone(clf, monkeypatch, dtype):
    """A grid of (lr, wd) pairs, one per path (sdesim.per_path): on the block kernel, path p is
    bitwise the path p of a solve with its own rates for every path (sgd_sde's promise), and the
    grid agrees with the per-path kernel to rounding (1e-12 / 1e-5 of the largest state)."""
    model, _, w0 = clf
    rng = np.random.default_rng(5)
    n = 40
    lr, wd = rng.uniform(0.02, 0.3, n), rng.uniform(1e-4, 1e-2, n)
    grid = sgd_sde(model, per_path(lr), per_path(wd))
    sol = _solve(grid, w0, n_paths=n, dtype=dtype)
    assert sol.stats["paths_per_block"] == block_size(grid, dtype, False)
    for p in (0, 17, 33, 39):  # (several blocks; 39: in a padded block when 32 per block)
        alone = _solve(sgd_sde(model, lr[p], wd[p]), w0, n_paths=n, dtype=dtype)
        np.testing.assert_array_equal(sol.ys[:, p], alone.ys[:, p])
    only_lr = sgd_sde(model, per_path(lr), 1e-3)  # one per-path rate, one constant
    np.testing.assert_array_equal(_solve(only_lr, w0, n_paths=n, dtype=dtype).ys[:, 5],
                                  _solve(sgd_sde(model, lr[5], 1e-3), w0, n_paths=n, dtype=dtype).ys[:, 5])
    monkeypatch.setattr(cpu, "block_eligible", lambda plan: False)
    single = _solve(grid, w0, n_paths=n, dtype=dtype)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(sol.ys, single.ys, rtol=0, atol=tol * float(np.max(np.abs(single.ys))))


def test_per_path_rates_in_reduce_mode_read_the_absolute_path_index(clf, monkeypatch):
    """Reduce mode runs the paths in chunks (here of 32: path0 = 0, 32): each path still reads its
    own rates, so the moments equal those of the stored grid (1e-12)."""
    model, _, w0 = clf
    rng = np.random.default_rng(8)
    n = 70
    grid = sgd_sde(model, per_path(rng.uniform(0.02, 0.3, n)), per_path(rng.uniform(1e-4, 1e-2, n)))
    stored = _solve(grid, w0, n_paths=n)
    monkeypatch.setattr(cpu, "REDUCE_BLOCK", 32)
    red = _solve(grid, w0, n_paths=n, reduce=True)
    assert red.stats["paths_per_block"] == BLOCK_PATHS  # (reduce mode: 32 whatever the model)
    np.testing.assert_allclose(red.mean, stored.ys.mean(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(red.var, stored.ys.var(axis=1, ddof=1), rtol=1e-9, atol=1e-18)


def test_a_per_path_schedule_with_shared_change_times_runs_in_blocks(clf, monkeypatch):
    """Per-path lr values with a shared change time (args built by hand: lr_values one row of two
    values per path, lr_times = [5]): each block row follows its own schedule across t = 5, as the
    per-path kernel does (1e-12 of the largest state)."""
    model, sde, w0 = clf
    n = 40
    rng = np.random.default_rng(9)
    values = np.stack([rng.uniform(0.05, 0.2, n), rng.uniform(0.01, 0.05, n)], axis=1)
    scheduled = sde.with_args(sde.args._replace(lr_times=np.array([5.0]), lr_values=per_path(values)))
    blocks = _solve(scheduled, w0, n_paths=n)
    assert blocks.stats["paths_per_block"] == 8
    monkeypatch.setattr(cpu, "block_eligible", lambda plan: False)
    single = _solve(scheduled, w0, n_paths=n)
    np.testing.assert_allclose(blocks.ys, single.ys, rtol=0, atol=1e-12 * float(np.max(np.abs(single.ys))))
    constant = _solve(sde.with_args(sde.args._replace(lr_values=per_path(values[:, :1].copy()))), w0, n_paths=n)
    assert np.max(np.abs(constant.ys[-1] - single.ys[-1])) > 1e-6  # (the change at t = 5 matters)


def test_per_path_args_the_block_function_does_not_read_go_to_the_per_path_kernel(clf):
    """A per-path entry other than the rates' values (here the lr change times, one row per path)
    is not read per path by the block function: such a solve runs one path at a time."""
    from sdesim.plan import make_plan
    from sdesim.runners.block_kernel import block_eligible
    _, sde, w0 = clf
    assert block_eligible(make_plan(sgd_sde(clf[0], per_path(np.full(3, 0.1)), 1e-3), w0, TS, dt=1.0, n_paths=3))
    args = sde.args._replace(lr_times=per_path(np.zeros((3, 0))))
    assert not block_eligible(make_plan(sde.with_args(args), w0, TS, dt=1.0, n_paths=3))


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_the_mlp_in_blocks_agrees_with_the_per_path_kernel_and_keeps_its_bits(monkeypatch, dtype, tol):
    """The weight-normalized MLP (8 hidden units, 8 groups): the block form (passes over 64
    samples; float32 solves in float32) against the per-path kernel (float64 inside; 1e-12 of the
    largest state after 10 steps in float64, 1e-5 in float32), and a path's bits with other
    neighbours (5 paths against 40: the padding and the second block differ)."""
    model = WeightNormMLP(load_digits(), batch_size=32)
    sde = sgd_sde(model, 0.1, 1e-3)
    w0 = model.random_init(norm=1.0, seed=1)
    blocks = _solve(sde, w0, n_paths=40, dtype=dtype)
    assert blocks.stats["paths_per_block"] == 16 and blocks.ys.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(_solve(sde, w0, n_paths=5, n_threads=1, dtype=dtype).ys, blocks.ys[:, :5])
    np.testing.assert_array_equal(_solve(sde, w0, n_paths=21, n_threads=2, dtype=dtype).ys, blocks.ys[:, :21])
    monkeypatch.setattr(cpu, "block_eligible", lambda plan: False)
    single = _solve(sde, w0, n_paths=40, dtype=dtype)
    np.testing.assert_allclose(blocks.ys, single.ys, rtol=0, atol=tol * float(np.max(np.abs(single.ys))))


@pytest.mark.parametrize("make", [lambda data: NormalizedLinearClassifier(data, batch_size=32),
                                  lambda data: WeightNormMLP(data, batch_size=32),
                                  # logits bounded by more than LOGIT_BOUND_MAX: each path's largest shifts them
                                  lambda data: NormalizedLinearClassifier(data, batch_size=32, scale=200.0),
                                  lambda data: WeightNormMLP(data, batch_size=32, scale=400.0)],
                         ids=["classifier", "mlp", "classifier-large-logits", "mlp-large-logits"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_the_combined_block_kernel_is_a_grad_plus_b_noise_product(make, dtype, tol):
    """out[q] = a grad L(W[q]) + b S(W[q]) dB[q] for a block of paths of unequal norms, against the
    per-path float64 kernels (tolerance: rounding of sums over n = 1348 samples, relative to the
    largest entry: float64 1e-12; float32, eps 6e-8 times sqrt(n) ~ 2e-6, 1e-5)."""
    model = make(load_digits())
    rng = np.random.default_rng(11)
    W = model.random_init(BLOCK_PATHS, seed=4) * rng.uniform(0.5, 2.0, size=(BLOCK_PATHS, 1))
    dB = rng.normal(size=(BLOCK_PATHS, model.noise_dim))
    a, b = rng.uniform(-1.0, 1.0, BLOCK_PATHS), rng.uniform(-2.0, 2.0, BLOCK_PATHS)  # (one pair per path)
    out = np.empty(W.shape, dtype)
    model.combined_block_kernel(W.astype(dtype), model.params, dB.astype(dtype), a.astype(dtype), b.astype(dtype), out)
    want = np.empty_like(W)
    noise = np.empty(model.d)
    for q in range(BLOCK_PATHS):
        model.noise_product_kernel(W[q], model.params, dB[q], noise)
        want[q] = a[q] * model.grad(W[q]) + b[q] * noise
    np.testing.assert_allclose(out, want, rtol=0, atol=tol * float(np.max(np.abs(want))))


def test_the_block_size_is_the_models_for_the_precision_and_32_in_reduce_mode(clf):
    """sgd_sde carries the model's block_paths (by precision); reduce mode keeps BLOCK_PATHS (its
    moments are kept per block); an SDE without one, or a precision it does not name, takes
    BLOCK_PATHS. The size never depends on n_paths or threads (it is not an argument)."""
    model, sde, _ = clf
    assert model.block_paths == {"float64": 8, "float32": 32}
    assert [block_size(sde, dt, False) for dt in ("float64", "float32")] == [8, 32]
    assert block_size(sde, "float64", True) == BLOCK_PATHS
    plain = sde.with_args(sde.args)
    plain._block_paths = {"float32": 4}
    assert block_size(plain, np.float64, False) == BLOCK_PATHS and block_size(plain, "float32", False) == 4
    del plain._block_paths
    assert block_size(plain, "float32", False) == BLOCK_PATHS
