"""sdesim against torchsde: the same SDEs and schemes must give the same law.

Both libraries run the same scheme with the same step on the same SDE, so the two ensembles are
independent samples of one distribution: means and variances (state, |W|, eta_eff = eta/|W|^2)
must agree within 4 combined standard errors at every save time, and a two-sample KS test must
not reject at the 1% level. Also: the matrix-free torch diffusion equals the dense one and
sdesim's compiled functions. Skipped when the optional extra (torch, torchsde) is absent.
"""

import subprocess
import sys

import numpy as np
import pytest

from sdesim import reference as ref
from sdesim.compare.agreement import compare, ks, moment_z
from sdesim.normalized import NormalizedLinearClassifier, Schedule, SphereModel, gaussian_mixture, load_digits

Z_MAX, KS_LEVEL = 4.0, 0.01
ETA, LAM = 0.1, 0.01


@pytest.fixture(scope="module")
def tb():
    pytest.importorskip("torch", reason="torch is not installed (optional extra: pip install 'sdesim[torch]')")
    pytest.importorskip("torchsde", reason="torchsde is not installed (optional extra: pip install 'sdesim[torch]')")
    import torch

    from sdesim.compare import torchsde as backend
    # One torch thread: these are small problems, and torch's OpenMP team slows down many times
    # when the cores are shared with other jobs (correctness tests, not timings).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield backend
    torch.set_num_threads(threads)


def test_core_imports_without_torch():
    code = ("import sys, sdesim, sdesim.compare, sdesim.compare.agreement, sdesim.normalized; "
            "assert 'torch' not in sys.modules and 'torchsde' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_moment_z_and_ks_on_known_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4000, 2)), rng.normal(size=(4000, 2))
    zm, zv = moment_z(a, b)
    assert np.all(np.abs(zm) < Z_MAX) and np.all(np.abs(zv) < Z_MAX)
    zm, zv = moment_z(a, 1.3 * b + 0.2)
    assert np.all(np.abs(zm) > Z_MAX) and np.all(np.abs(zv) > Z_MAX)
    assert ks(a[:, 0], b[:, 0])[1] > KS_LEVEL and ks(a[:, 0], b[:, 0] + 0.3)[1] < 1e-6


# ----------------------------------------------------------------------------- models and problems
SPHERE = SphereModel(8, s=0.7, H=np.diag(np.linspace(0.0, 2.0, 8)))
MIXTURE = NormalizedLinearClassifier(gaussian_mixture(n=60, dim=4, n_classes=3, seed=1), batch_size=8)


def _digits():
    pytest.importorskip("sklearn", reason="load_digits needs scikit-learn (the data extra)")
    return NormalizedLinearClassifier(load_digits(), batch_size=32)


def _unit_rows(k, d, seed):
    u = np.random.default_rng(seed).normal(size=(k, d))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def _norm(ys):
    return np.linalg.norm(ys, axis=-1)


def _quantities(d, state=True, eta=None):
    u = _unit_rows(3, d, 7)
    q = {"proj": lambda ys: ys @ u.T, "norm": _norm}
    if state:
        q["state"] = lambda ys: ys
    if eta is not None:
        q["eta_eff"] = lambda ys: eta / _norm(ys) ** 2
    return q


def _assert_agree(ens, quantities, ks_names=("norm", "proj")):
    stats = compare(ens.sdesim, ens.torchsde, quantities, ks_quantities=list(ks_names))
    print(f"\n{ens.info['problem']} [{ens.info['method']}, {ens.info['dtype']}, {ens.info['n_paths']} paths]: "
          + "; ".join(f"{k}: |z_mean|<={v['max_abs_z_mean']:.2f} |z_var|<={v['max_abs_z_var']:.2f}"
                      + (f" KS p={v['ks_p']:.3f}" if "ks_p" in v else "") for k, v in stats.items()))
    for name, row in stats.items():
        assert row["max_abs_z_mean"] < Z_MAX, (name, row)
        assert row["max_abs_z_var"] < Z_MAX, (name, row)
        if "ks_p" in row:
            assert row["ks_p"] > KS_LEVEL, (name, row)
    return stats


# ----------------------------------------------------------------------------- the same SDE
@pytest.mark.parametrize("model", [SPHERE, SphereModel(5, s=1.3), MIXTURE], ids=["sphere_H", "sphere_flat", "mixture"])
def test_torch_functions_match_dense_and_sdesim(tb, model):
    import torch

    prob = tb.make_problem(model, ETA, LAM)
    tsde = prob.torchsde("cpu", "float64")
    P = 4
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(P, model.d, dtype=torch.float64, generator=gen) * 2.0
    v = torch.randn(P, model.noise_dim, dtype=torch.float64, generator=gen)
    G = tsde.dense_g(0.0, y)
    assert G.shape == (P, model.d, model.noise_dim)
    f, gv = tsde.f_and_g_prod(0.0, y, v)
    torch.testing.assert_close(torch.bmm(G, v[:, :, None])[..., 0], gv, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(tsde.g_prod(0.0, y, v), gv, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(tsde.f(0.0, y), f, rtol=1e-12, atol=1e-15)
    sde = prob.sde
    for p in range(P):
        yp, vp = y[p].numpy(), v[p].numpy()
        a, b = np.empty(model.d), np.empty(model.d)
        S = np.empty((model.d, model.noise_dim))
        sde.drift(0.0, yp, sde.args, a)
        sde.diffusion_product(0.0, yp, sde.args, vp, b)
        sde.diffusion(0.0, yp, sde.args, S)
        np.testing.assert_allclose(f[p].numpy(), a, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(gv[p].numpy(), b, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(G[p].numpy(), S, rtol=1e-10, atol=1e-13)


def test_matrix_free_solve_equals_dense_solve(tb):
    """torchsde on the same Brownian path: matrix-free g_prod and dense g give the same paths."""
    prob = tb.make_problem(MIXTURE, ETA, LAM)
    w0 = MIXTURE.random_init(norm=2.0, seed=0)
    ts = np.arange(0.0, 21.0, 5.0)
    free, _ = tb.run_torchsde(prob, w0, ts, dt=1.0, n_paths=16, seed=3)
    dense, _ = tb.run_torchsde(prob, w0, ts, dt=1.0, n_paths=16, seed=3,
                               sde=tb.DenseDiffusion(prob.torchsde()))
    np.testing.assert_allclose(free.numpy(), dense.numpy(), rtol=1e-9, atol=1e-12)


def test_reference_translations_match_sdesim(tb):
    import torch

    y = torch.tensor([[0.3, -0.8], [1.1, 0.4]], dtype=torch.float64)
    v = torch.tensor([[0.5, -1.0], [0.2, 0.7]], dtype=torch.float64)
    for sde in (ref.gbm, ref.noncommutative, ref.lin_commutative):
        tsde = tb.to_torchsde(sde)
        for p in range(2):
            a = np.empty(2)
            g = np.empty(sde.diffusion_shape)
            sde.drift(0.0, y[p].numpy(), sde.args, a)
            sde.diffusion(0.0, y[p].numpy(), sde.args, g)
            np.testing.assert_allclose(tsde.f(0.0, y)[p].numpy(), a, rtol=1e-12)
            np.testing.assert_allclose(tsde.g(0.0, y)[p].numpy(), g, rtol=1e-12)
            if sde.noise == "general":
                np.testing.assert_allclose(tsde.g_prod(0.0, y, v)[p].numpy(), g @ v[p].numpy(), rtol=1e-12)


def test_refusals(tb):
    with pytest.raises(ValueError, match="Milstein"):
        tb.run_torchsde(tb.make_problem(ref.noncommutative), np.zeros(2), [0.0, 1.0], dt=0.5, n_paths=2,
                        method="milstein")
    with pytest.raises(NotImplementedError, match="constant"):
        tb.make_problem(SPHERE, Schedule([0.1, 0.01], [10.0]), LAM)
    with pytest.raises(TypeError, match="no torchsde translation"):
        tb.make_problem(ref.make_affine(np.eye(2), np.zeros(2)))
    with pytest.raises(ValueError, match="multiple of dt"):
        tb.run_torchsde(tb.make_problem(ref.ou), np.zeros(3), [0.0, 0.3], dt=0.25, n_paths=2)


# ----------------------------------------------------------------------------- agreement in law
def test_agree_gbm_euler(tb):
    ens = tb.run_both(tb.make_problem(ref.gbm), np.array([1.0, 0.5]), np.linspace(0.0, 1.0, 5), 1 / 32,
                      4000, seed=0)
    _assert_agree(ens, _quantities(2))


@pytest.mark.parametrize("sde", [ref.gbm, ref.gbm_analytic], ids=["derivative_free", "analytic"])
def test_agree_gbm_milstein(tb, sde):
    """sdesim's derivative-free Milstein vs torchsde's grad_free Milstein (the same formula), and
    sdesim's analytic-derivative Milstein vs torchsde's autograd Milstein."""
    ens = tb.run_both(tb.make_problem(sde), np.array([1.0, 0.5]), np.linspace(0.0, 1.0, 5), 1 / 16,
                      4000, seed=0, method="milstein")
    _assert_agree(ens, _quantities(2))


def test_agree_noncommutative_euler(tb):
    ens = tb.run_both(tb.make_problem(ref.noncommutative), np.array([0.5, -0.5]), np.linspace(0.0, 2.0, 5),
                      1 / 16, 4000, seed=0)
    _assert_agree(ens, _quantities(2))


def test_agree_sphere_model(tb):
    w0 = np.full(SPHERE.d, 1.0 / np.sqrt(SPHERE.d))
    ens = tb.run_both(tb.make_problem(SPHERE, ETA, LAM), w0, np.arange(0.0, 201.0, 50.0), 1.0, 1500, seed=0)
    _assert_agree(ens, _quantities(SPHERE.d, eta=ETA))


def test_agree_sphere_model_float32(tb):
    w0 = np.full(SPHERE.d, 1.0 / np.sqrt(SPHERE.d))
    ens = tb.run_both(tb.make_problem(SPHERE, ETA, LAM), w0, np.arange(0.0, 201.0, 50.0), 1.0, 1500, seed=1,
                      dtype="float32")
    _assert_agree(ens, _quantities(SPHERE.d, state=False, eta=ETA))


def test_agree_mixture_classifier(tb):
    w0 = MIXTURE.random_init(norm=1.0, seed=0)
    ens = tb.run_both(tb.make_problem(MIXTURE, ETA, LAM), w0, np.arange(0.0, 61.0, 15.0), 1.0, 1000, seed=0)
    _assert_agree(ens, _quantities(MIXTURE.d, eta=ETA))


def test_agree_digits_classifier(tb):
    model = _digits()
    w0 = model.random_init(norm=1.0, seed=0)
    ens = tb.run_both(tb.make_problem(model, ETA, LAM), w0, np.arange(0.0, 13.0, 3.0), 1.0, 120, seed=0)
    _assert_agree(ens, _quantities(model.d, state=False, eta=ETA))
