"""Reference SDEs with known solutions (or known structure), for convergence studies and tests.

Each is built once at import, so its compiled kernels are reused across solves.
"""

import numba as nb
import numpy as np

from .sde import SDE

# --- geometric Brownian motion, diagonal noise: Y_T = Y_0 exp((mu - s^2/2) T + s W_T) --------
GBM_MU = np.array([0.5, -0.3])
GBM_S = np.array([0.8, 0.6])


@nb.njit(inline="always")
def gbm_drift(t, y, args, out):
    for i in range(y.size):
        out[i] = args[0][i] * y[i]


@nb.njit(inline="always")
def gbm_diffusion(t, y, args, out):
    for i in range(y.size):
        out[i] = args[1][i] * y[i]


@nb.njit(inline="always")
def gbm_derivative(t, y, args, out):
    for i in range(y.size):
        out[i] = args[1][i]


gbm = SDE(gbm_drift, gbm_diffusion, dim=2, noise="diagonal", args=(GBM_MU, GBM_S), name="gbm")
gbm_analytic = SDE(gbm_drift, gbm_diffusion, dim=2, noise="diagonal", args=(GBM_MU, GBM_S),
                          diffusion_derivative=gbm_derivative, name="gbm_analytic")


#: The same coefficients read in Stratonovich's calculus: Y_T = Y_0 exp(mu T + s W_T).
gbm_stratonovich = SDE(gbm_drift, gbm_diffusion, dim=2, noise="diagonal", args=(GBM_MU, GBM_S),
                       diffusion_derivative=gbm_derivative, name="gbm_stratonovich", calculus="stratonovich")


def gbm_exact(t, w, y0, calculus="ito"):
    """t: (T,), w: (T, P, 2) -> (T, P, 2); ``calculus`` of the SDE the coefficients define."""
    ito = calculus == "ito"
    return y0 * np.exp((GBM_MU - 0.5 * ito * GBM_S**2) * t[:, None, None] + GBM_S * w)


# --- linear system with commuting matrices ---------------------------------------------------
# Matrices of the form [[a, b], [b, a]] commute; eigenvectors (1, 1), (1, -1), eigenvalues a +- b.
def _circ(a, b):
    return np.array([[a, b], [b, a]])


LIN_A = _circ(-0.2, 0.3)
LIN_B = np.stack([_circ(0.4, 0.2), _circ(-0.1, 0.3)])  # (noise_dim=2, 2, 2); scalar uses LIN_B[0]


@nb.njit(inline="always")
def lin_drift(t, y, args, out):
    A = args[0]
    for i in range(2):
        out[i] = A[i, 0] * y[0] + A[i, 1] * y[1]


@nb.njit(inline="always")
def lin_scalar_diffusion(t, y, args, out):
    B = args[1][0]
    for i in range(2):
        out[i] = B[i, 0] * y[0] + B[i, 1] * y[1]


@nb.njit(inline="always")
def lin_matrix_diffusion(t, y, args, out):
    Bs = args[1]
    for j in range(Bs.shape[0]):
        for i in range(2):
            out[i, j] = Bs[j, i, 0] * y[0] + Bs[j, i, 1] * y[1]


lin_scalar = SDE(lin_drift, lin_scalar_diffusion, dim=2, noise="scalar",
                        args=(LIN_A, LIN_B[:1].copy()), name="linear_scalar")
lin_commutative = SDE(lin_drift, lin_matrix_diffusion, dim=2, noise_dim=2,
                             noise="commutative", args=(LIN_A, LIN_B), name="linear_commutative")


lin_scalar_stratonovich = SDE(lin_drift, lin_scalar_diffusion, dim=2, noise="scalar", args=(LIN_A, LIN_B[:1].copy()),
                              name="linear_scalar_stratonovich", calculus="stratonovich")
lin_commutative_stratonovich = SDE(lin_drift, lin_matrix_diffusion, dim=2, noise_dim=2, noise="commutative",
                                   args=(LIN_A, LIN_B), name="linear_commutative_stratonovich",
                                   calculus="stratonovich")


def linear_exact(t, w, y0, Bs, calculus="ito"):
    """Y_t = exp((A - 1/2 sum B_j^2) t + sum_j B_j W_j) y0 for commuting circulant matrices (Ito;
    Stratonovich: without the ``- 1/2 sum B_j^2 t``)."""
    P = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)  # orthonormal eigenbasis
    lam = lambda M: np.array([M[0, 0] + M[0, 1], M[0, 0] - M[0, 1]])
    expo = lam(LIN_A)[None, None, :] * t[:, None, None]
    ito = calculus == "ito"
    for j, B in enumerate(Bs):
        expo = expo - 0.5 * ito * lam(B)[None, None, :] ** 2 * t[:, None, None] + lam(B) * w[..., j:j + 1]
    z0 = P.T @ y0
    return (np.exp(expo) * z0) @ P.T


# --- a non-commutative 2-d SDE: dY1 = -Y1/2 dt + dW1, dY2 = -Y2/10 dt + cos(Y1) dW1/2 + Y1 dW2 ----
@nb.njit(inline="always")
def nc_drift(t, y, args, out):
    out[0] = -0.5 * y[0]
    out[1] = -0.1 * y[1]


@nb.njit(inline="always")
def nc_diffusion(t, y, args, out):
    out[0, 0] = 1.0
    out[0, 1] = 0.0
    out[1, 0] = 0.5 * np.cos(y[0])
    out[1, 1] = y[0]


noncommutative = SDE(nc_drift, nc_diffusion, dim=2, noise_dim=2, noise="general",
                            name="noncommutative")
noncommutative_stratonovich = SDE(nc_drift, nc_diffusion, dim=2, noise_dim=2, noise="general",
                                  name="noncommutative_stratonovich", calculus="stratonovich")

# --- Ornstein-Uhlenbeck, diagonal noise ------------------------------------------------------
OU_THETA, OU_SIGMA = 1.5, 0.7


@nb.njit(inline="always")
def ou_drift(t, y, args, out):
    for i in range(y.size):
        out[i] = -args[0] * y[i]


@nb.njit(inline="always")
def ou_diffusion(t, y, args, out):
    for i in range(y.size):
        out[i] = args[1]


ou = SDE(ou_drift, ou_diffusion, dim=3, noise="diagonal", args=(OU_THETA, OU_SIGMA), name="ou")


# --- linear ODE with a switchable additive noise, for "zero diffusion = explicit Euler" -------
@nb.njit(inline="always")
def affine_drift(t, y, args, out):
    M = args[0]
    for i in range(y.size):
        acc = args[1][i] * np.sin(t)
        for j in range(y.size):
            acc += M[i, j] * y[j]
        out[i] = acc


@nb.njit(inline="always")
def zero_matrix_diffusion(t, y, args, out):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = 0.0


def make_affine(M, b):
    return SDE(affine_drift, zero_matrix_diffusion, dim=M.shape[0], noise_dim=2, noise="general",
                      args=(M, b), name="affine")


# --- nonlinear scalar SDEs whose solution is a function of W_t (Kloeden & Platen, section 4.4) -
ARCTAN_A = 0.8


@nb.njit(inline="always")
def arctan_drift(t, y, args, out):
    c = np.cos(y[0])
    out[0] = -args[0] ** 2 * np.sin(y[0]) * c**3


@nb.njit(inline="always")
def arctan_diffusion(t, y, args, out):
    out[0] = args[0] * np.cos(y[0]) ** 2


#: ``dY = -a^2 sin(Y) cos(Y)^3 dt + a cos(Y)^2 dW``: ``Y_t = arctan(a W_t + tan(Y_0))`` (Ito).
arctan_sde = SDE(arctan_drift, arctan_diffusion, dim=1, noise="scalar", args=(ARCTAN_A,), name="arctan")


def arctan_exact(t, w, y0):
    """t: (T,), w: (T, P, 1) -> (T, P, 1)."""
    return np.arctan(ARCTAN_A * w + np.tan(y0))


@nb.njit(inline="always")
def sinh_drift(t, y, args, out):
    out[0] = 0.5 * y[0]


@nb.njit(inline="always")
def sinh_diffusion(t, y, args, out):
    out[0] = np.sqrt(1.0 + y[0] * y[0])


#: ``dY = Y/2 dt + sqrt(1 + Y^2) dW``: ``Y_t = sinh(W_t + asinh(Y_0))`` (Ito).
sinh_sde = SDE(sinh_drift, sinh_diffusion, dim=1, noise="scalar", name="sinh")


def sinh_exact(t, w, y0):
    """t: (T,), w: (T, P, 1) -> (T, P, 1)."""
    return np.sinh(w + np.arcsinh(y0))


# --- additive noise with time-dependent coefficients ------------------------------------------
ADD_BETA = np.array([0.5, -0.3])
ADD_C = np.array([[0.8, 0.2], [-0.3, 0.6]])


@nb.njit(inline="always")
def additive_drift(t, y, args, out):
    s = 1.0 / np.sqrt(1.0 + t)
    for i in range(y.size):
        out[i] = args[0][i] * s - y[i] / (2.0 * (1.0 + t))


@nb.njit(inline="always")
def additive_diffusion(t, y, args, out):
    s = 1.0 / np.sqrt(1.0 + t)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = args[1][i, j] * s


#: ``dY = (beta / sqrt(1 + t) - Y / (2 (1 + t))) dt + C / sqrt(1 + t) dW``:
#: ``Y_t = (Y_0 + beta t + C W_t) / sqrt(1 + t)`` (``sqrt(1 + t) Y`` has drift ``beta`` and noise ``C``).
additive_linear = SDE(additive_drift, additive_diffusion, dim=2, noise_dim=2, noise="additive",
                      args=(ADD_BETA, ADD_C), name="additive_linear")


def additive_exact(t, w, y0):
    """t: (T,), w: (T, P, 2) -> (T, P, 2)."""
    t = t[:, None, None]
    return (y0 + ADD_BETA * t + np.einsum("ij,tpj->tpi", ADD_C, w)) / np.sqrt(1.0 + t)


@nb.njit(inline="always")
def double_well_drift(t, y, args, out):
    for i in range(y.size):
        out[i] = y[i] - y[i] ** 3 + args[0] * np.sin(t)


@nb.njit(inline="always")
def double_well_diffusion(t, y, args, out):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = args[1] if i == j else 0.0


#: A nonlinear additive-noise SDE with no closed form (strong errors against a fine solve on the same path):
#: ``dY = (Y - Y^3 + 0.3 sin t) dt + 0.5 dW``, two independent components.
double_well = SDE(double_well_drift, double_well_diffusion, dim=2, noise_dim=2, noise="additive",
                  args=(0.3, 0.5), name="double_well")


@nb.njit(inline="always")
def coupled_drift(t, y, args, out):
    for i in range(2):
        out[i] = -y[i] ** 3 + y[1 - i] + np.sin(t)


@nb.njit(inline="always")
def bounded_diffusion(t, y, args, out):
    for i in range(2):
        out[i] = args[0] * (1.0 + 0.5 * np.sin(y[i]))


#: A nonlinear diagonal-noise SDE with no closed form (its solution depends on more of the path
#: than W_t, so the space-time areas matter): ``dY_i = (-Y_i^3 + Y_(1-i) + sin t) dt + 0.6 (1 +
#: sin(Y_i) / 2) dW_i``.
nonlinear_diagonal = SDE(coupled_drift, bounded_diffusion, dim=2, noise="diagonal", args=(0.6,),
                         name="nonlinear_diagonal")
