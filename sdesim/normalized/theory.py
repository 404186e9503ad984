"""Closed forms of Li, Lyu & Arora (2020) for SGD + weight decay on scale-invariant losses.

Notation (time in SGD steps): ``eta`` learning rate, ``lam`` weight decay, ``lam_e = eta lam``
(intrinsic learning rate), ``tau = tr Sigma(wbar)`` (constant, e.g. ``s^2 (d-1)`` for the
sphere model), ``G = |W|^4 / eta^2 = eta_eff^-2`` with ``eta_eff = eta / |W|^2``.

Every argument may be a number or an array (broadcast); each is checked (finite, and positive or
non-negative as its meaning requires; times ``t >= 0``, measured from the start or the decay),
so that a bad value raises a ``ValueError`` naming it instead of returning NaN or inf.
"""

import numpy as np

from ._checks import check_reals

__all__ = ["norm4", "G_inf", "eta_eff_inf", "norm2_inf", "relative_gap", "equilibration_time",
           "angle_per_step", "direction_correlation", "lr_decay_eta_eff_ratio",
           "wd_decay_eta_eff_ratio", "sgd_norm4_fixed_point", "sgd_angle_per_step",
           "momentum_angle_per_step", "momentum_norm4"]


def _pos(x, name):
    return check_reals(x, name, positive=True)


def _nonneg(x, name):
    return check_reals(x, name, minimum=0.0)


def _time(t):
    return check_reals(t, "t", minimum=0.0)


def _eta_lam(eta, lam, below, strict=True):
    """``eta``, ``lam`` positive with ``eta lam < below`` (``<= below`` when not ``strict``)."""
    eta, lam = _pos(eta, "eta"), _pos(lam, "lam")
    prod = np.multiply(eta, lam)
    if np.any(prod >= below if strict else prod > below):
        raise ValueError(f"eta * lam must be {'<' if strict else '<='} {below:g} for this formula, "
                         f"got {np.max(prod):g}")
    return eta, lam


def norm4(t, norm0, eta, lam, tau):
    """``|W_t|^4 = exp(-4 lam_e t) |W_0|^4 + (eta tau / (2 lam)) (1 - exp(-4 lam_e t))``."""
    t, norm0, eta, lam, tau = _time(t), _pos(norm0, "norm0"), _pos(eta, "eta"), _pos(lam, "lam"), _nonneg(tau, "tau")
    decay = np.exp(-4.0 * eta * lam * t)
    return decay * norm0**4 + eta * tau / (2.0 * lam) * (1.0 - decay)


def G_inf(lam_e, tau):
    """Equilibrium ``G_inf = tau / (2 lam_e)``."""
    lam_e, tau = _pos(lam_e, "lam_e"), _nonneg(tau, "tau")
    return tau / (2.0 * lam_e)


def eta_eff_inf(lam_e, tau):
    """Equilibrium effective learning rate ``sqrt(2 lam_e / tau)``."""
    lam_e, tau = _pos(lam_e, "lam_e"), _pos(tau, "tau")
    return np.sqrt(2.0 * lam_e / tau)


def norm2_inf(eta, lam, tau):
    """Equilibrium squared norm ``|W|^2_inf = sqrt(eta tau / (2 lam))``."""
    eta, lam, tau = _pos(eta, "eta"), _pos(lam, "lam"), _nonneg(tau, "tau")
    return np.sqrt(eta * tau / (2.0 * lam))


def relative_gap(t, G0, lam_e, tau):
    """``|G_t / G_inf - 1| = |G_0 / G_inf - 1| exp(-4 lam_e t)``."""
    t, G0, lam_e, tau = _time(t), _pos(G0, "G0"), _pos(lam_e, "lam_e"), _pos(tau, "tau")
    return abs(G0 / G_inf(lam_e, tau) - 1.0) * np.exp(-4.0 * lam_e * t)


def equilibration_time(G0_over_Ginf, lam_e, eps):
    """``t_eps = ln(|G_0/G_inf - 1| / eps) / (4 lam_e)``: first time the relative gap is ``eps``
    (negative when the gap starts below ``eps``; ``-inf`` when ``G_0 = G_inf``)."""
    ratio, lam_e, eps = _pos(G0_over_Ginf, "G0_over_Ginf"), _pos(lam_e, "lam_e"), _pos(eps, "eps")
    with np.errstate(divide="ignore"):
        return np.log(np.abs(ratio - 1.0) / eps) / (4.0 * lam_e)


def angle_per_step(lam_e):
    """Angle between successive directions at equilibrium, ``~ sqrt(2 lam_e)`` (noise-scale free)."""
    lam_e = _pos(lam_e, "lam_e")
    return np.sqrt(2.0 * lam_e)


def direction_correlation(t, G0, lam_e, tau):
    """With grad L = 0: ``E[Wbar_t . Wbar_0] = (1 + (G_inf/G_0)(exp(4 lam_e t) - 1))^(-1/4)``."""
    t, G0, lam_e, tau = _time(t), _pos(G0, "G0"), _pos(lam_e, "lam_e"), _pos(tau, "tau")
    g = G_inf(lam_e, tau) / G0
    return (1.0 + g * np.expm1(4.0 * lam_e * t)) ** -0.25


def lr_decay_eta_eff_ratio(t, k, lam_e_new):
    """LR divided by ``k`` at equilibrium: ``eta_eff(t)/eta_eff_old = (k + (k^2 - k) exp(-4 lam_e' t))^(-1/2)``."""
    t, k, lam_e_new = _time(t), _pos(k, "k"), _pos(lam_e_new, "lam_e_new")
    e = np.exp(-4.0 * lam_e_new * t)
    return 1.0 / np.sqrt(k + (k * k - k) * e)


def wd_decay_eta_eff_ratio(t, k, lam_e_new):
    """WD divided by ``k`` at equilibrium: ``eta_eff(t)/eta_eff_old = (k - (k - 1) exp(-4 lam_e' t))^(-1/2)``."""
    t, k, lam_e_new = _time(t), _pos(k, "k"), _pos(lam_e_new, "lam_e_new")
    e = np.exp(-4.0 * lam_e_new * t)
    return 1.0 / np.sqrt(k - (k - 1.0) * e)


def sgd_norm4_fixed_point(eta, lam, U):
    """Discrete SGD, mean-field fixed point ``|w|^4 ~ eta U / (lam (2 - eta lam))``, ``U = E|gbar|^2``
    (``eta lam < 2``)."""
    eta, lam = _eta_lam(eta, lam, 2.0)
    U = _nonneg(U, "U")
    return eta * U / (lam * (2.0 - eta * lam))


def sgd_angle_per_step(eta, lam):
    """Discrete SGD angle per step at equilibrium, ``arcsin(sqrt(1 - (1 - eta lam)^2))`` (``eta lam <= 1``:
    beyond, the weight-decay factor is negative and the iterate flips every step)."""
    eta, lam = _eta_lam(eta, lam, 1.0, strict=False)
    return np.arcsin(np.sqrt(1.0 - (1.0 - eta * lam) ** 2))


def momentum_angle_per_step(eta, lam, a):
    """Heavy ball with momentum ``a``: angle per step ``sqrt(2 eta lam / (1 + a))``."""
    eta, lam, a = _pos(eta, "eta"), _pos(lam, "lam"), check_reals(a, "a", minimum=0.0, below=1.0)
    return np.sqrt(2.0 * eta * lam / (1.0 + a))


def momentum_norm4(eta, lam, a, L):
    """Heavy ball with momentum ``a``: ``|w|^4 ~ L eta / (2 lam (1 - a))``."""
    eta, lam, a = _pos(eta, "eta"), _pos(lam, "lam"), check_reals(a, "a", minimum=0.0, below=1.0)
    L = _nonneg(L, "L")
    return L * eta / (2.0 * lam * (1.0 - a))
