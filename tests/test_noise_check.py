"""check_noise_structure: declared diagonal/additive/commutative noise is verified at one state."""

import math

import numpy as np
import pytest

import sdesim.noise_check as noise_check
from sdesim import SDE
from sdesim.noise_check import check_noise_structure

Y0 = np.array([0.7, -1.3])


def zero_drift(t, y, args, out):
    for i in range(y.shape[0]):
        out[i] = 0.0


# --- commutative ------------------------------------------------------------------------------

def linear_g(t, y, args, out):  # g_ij = sigma_j y_i: the classic commutative linear SDE
    for i in range(2):
        out[i, 0] = 0.3 * y[i]
        out[i, 1] = -0.8 * y[i]


def linear_dg(t, y, args, out):  # out[i, j, l] = sigma_j delta_il
    for i in range(2):
        for j in range(2):
            for l in range(2):
                out[i, j, l] = 0.0
        out[i, 0, i] = 0.3
        out[i, 1, i] = -0.8


def exp_g(t, y, args, out):  # g_ij = sigma_j exp(y_i): L^j g_ik = sigma_j sigma_k exp(2 y_i), symmetric
    for i in range(2):
        out[i, 0] = 0.5 * math.exp(y[i])
        out[i, 1] = 2.0 * math.exp(y[i])


def kp_g(t, y, args, out):  # Kloeden & Platen's non-commutative example g = [[1, 0], [0, y0]]
    out[0, 0] = 1.0
    out[0, 1] = 0.0
    out[1, 0] = 0.0
    out[1, 1] = y[0]


def kp_dg(t, y, args, out):
    for i in range(2):
        for j in range(2):
            for l in range(2):
                out[i, j, l] = 0.0
    out[1, 1, 0] = 1.0


def swap_g(t, y, args, out):  # g = [[y1, 0], [0, y0]]
    out[0, 0] = y[1]
    out[0, 1] = 0.0
    out[1, 0] = 0.0
    out[1, 1] = y[0]


def matrix_sde(g, noise="commutative", dg=None, name=None):
    return SDE(zero_drift, g, dim=2, noise_dim=2, noise=noise, diffusion_derivative=dg, name=name)


@pytest.mark.parametrize("g", [linear_g, exp_g])
@pytest.mark.parametrize("y", [Y0, np.array([3.0, 250.0]) * 0.01, np.array([-2.0, 4.0])])
def test_commutative_that_commutes_passes(g, y):
    assert check_noise_structure(matrix_sde(g), 0.0, y) == "checked"


@pytest.mark.parametrize("g", [kp_g, swap_g])
def test_non_commutative_declared_commutative_raises(g):
    with pytest.raises(ValueError, match="commutative") as info:
        check_noise_structure(matrix_sde(g, name="bad_sde"), 0.0, Y0)
    msg = str(info.value)
    assert "bad_sde" in msg and "noise='general'" in msg and "i=1" in msg


def test_supplied_derivative_is_used():
    assert check_noise_structure(matrix_sde(linear_g, dg=linear_dg), 0.0, Y0) == "checked"
    with pytest.raises(ValueError, match="diffusion_derivative"):
        check_noise_structure(matrix_sde(kp_g, dg=kp_dg), 0.0, Y0)


# --- diagonal ---------------------------------------------------------------------------------

def sin_g(t, y, args, out):
    for i in range(y.shape[0]):
        out[i] = math.sin(y[i])


def coupled_g(t, y, args, out):  # g_0 = y_1: not diagonal
    out[0] = y[1]
    out[1] = math.sin(y[1])


def test_diagonal_passes():
    sde = SDE(zero_drift, sin_g, dim=3, noise="diagonal")
    assert check_noise_structure(sde, 0.0, np.array([0.4, 12.0, -3.0])) == "checked"


def test_diagonal_with_cross_dependence_raises():
    sde = SDE(zero_drift, coupled_g, dim=2, noise="diagonal", name="coupled")
    with pytest.raises(ValueError, match=r"diagonal.*g\[0\] depends on y\[1\]") as info:
        check_noise_structure(sde, 0.0, Y0)
    assert "coupled" in str(info.value)


# --- additive ---------------------------------------------------------------------------------

def const_g(t, y, args, out):
    out[0, 0] = 0.5 * math.cos(t)
    out[0, 1] = 0.1
    out[1, 0] = 0.0
    out[1, 1] = 2.0


def const_dg(t, y, args, out):
    for i in range(2):
        for j in range(2):
            for l in range(2):
                out[i, j, l] = 0.0


def test_additive_constant_passes():
    assert check_noise_structure(matrix_sde(const_g, "additive"), 1.0, Y0) == "checked"
    assert check_noise_structure(matrix_sde(const_g, "additive", dg=const_dg), 1.0, Y0) == "checked"


def test_additive_state_dependent_raises():
    with pytest.raises(ValueError, match=r"additive.*g\[1, 1\] depends on y\[0\]"):
        check_noise_structure(matrix_sde(kp_g, "additive"), 0.0, Y0)
    with pytest.raises(ValueError, match="additive"):  # the supplied derivative says so too
        check_noise_structure(matrix_sde(kp_g, "additive", dg=kp_dg), 0.0, Y0)


# --- skipped / not needed / errors ------------------------------------------------------------

def test_not_needed_for_scalar_and_general():
    scalar = SDE(zero_drift, sin_g, dim=2, noise="scalar")
    assert check_noise_structure(scalar, 0.0, Y0) == "not needed for noise='scalar'"
    assert check_noise_structure(matrix_sde(kp_g, "general"), 0.0, Y0) == "not needed for noise='general'"


def test_large_sde_is_skipped(monkeypatch):
    big = SDE(zero_drift, sin_g, dim=5000, noise="diagonal")  # 5000**2 > the limit: nothing evaluated
    reason = check_noise_structure(big, 0.0, np.zeros(5000))
    assert reason.startswith("skipped: dim * dim = 25000000 above NOISE_CHECK_LIMIT")
    monkeypatch.setattr(noise_check, "NOISE_CHECK_LIMIT", 10)
    reason = check_noise_structure(matrix_sde(kp_g), 0.0, Y0)  # 2 * 2 * 2 * 2 = 16 > 10
    assert reason == "skipped: dim * noise_dim * dim * noise_dim = 16 above NOISE_CHECK_LIMIT (10)"


def nan_g(t, y, args, out):
    out[0] = math.nan
    out[1] = 1.0


def test_non_finite_diffusion_raises():
    sde = SDE(zero_drift, nan_g, dim=2, noise="diagonal", name="nanny")
    with pytest.raises(ValueError, match="diffusion of 'nanny' is not finite"):
        check_noise_structure(sde, 0.0, Y0)


def test_solve_refuses_a_false_declaration_before_running():
    """The check is wired into every solve: Milstein on a non-commutative SDE declared commutative
    would run silently at strong order 0.5."""
    import sdesim

    with pytest.raises(ValueError, match="commutative"):
        sdesim.solve(matrix_sde(kp_g), np.array([0.3, 0.2]), [0.0, 1.0], method="milstein", dt=0.1)
    sdesim.solve(matrix_sde(kp_g, noise="general"), np.array([0.3, 0.2]), [0.0, 1.0], method="milstein", dt=0.1)
