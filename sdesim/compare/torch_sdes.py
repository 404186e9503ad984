"""sdesim's SDEs written for ``torchsde``, batched over paths (state ``(n_paths, dim)``).

Matrix noise is applied matrix-free through ``f_and_g_prod(t, y, v)`` (drift and ``g(t, y) v`` from
one pass); the dense ``(n_paths, dim, noise_dim)`` diffusion is there as ``dense_g`` (and
:class:`DenseDiffusion`, which hands it to torchsde as ``g``) for checks. Covered: the sphere model
and the normalized linear classifier in full form (:class:`SphereSGD`, :class:`ClassifierSGD`) and
the core's test SDEs of :mod:`sdesim.reference`; :func:`register` adds others. Used through
:mod:`sdesim.compare.torchsde`. Needs the ``torch`` extra.
"""

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("sdesim.compare.torch_sdes needs torch: pip install 'sdesim[torch]'") from exc

from .. import reference
from ..normalized.minibatch import noise_factor_scale
from ..normalized.schedules import as_schedule

__all__ = ["torch_dtype", "numpy_dtype", "constant_rate", "register", "registered", "DenseDiffusion", "SphereSGD",
           "ClassifierSGD"]


def torch_dtype(dtype):
    """``"float64"``/``"float32"`` (or a NumPy/torch dtype) -> ``torch.float64``/``torch.float32``."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    name = np.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return getattr(torch, name)


def numpy_dtype(dtype):
    return str(dtype).replace("torch.", "") if isinstance(dtype, torch.dtype) else np.dtype(dtype).name


def _tensor(x, device, dtype):
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)


def constant_rate(rate, name):
    sched = as_schedule(rate, name)
    if sched.values.size != 1:
        raise NotImplementedError(f"the torch backend takes a constant {name}; got {sched!r}")
    return float(sched.values[0])


class _TorchSDE(torch.nn.Module):
    """Common base: ``noise_type``/``sde_type`` attributes as torchsde wants them, Ito calculus."""

    sde_type = "ito"

    def __init__(self, noise_type, dim, noise_dim):
        super().__init__()
        self.noise_type = noise_type
        self.dim, self.noise_dim = dim, noise_dim


# ----------------------------------------------------------------------------- the paper's SDE
class SphereSGD(_TorchSDE):
    """``dW = -eta (grad L + lam W) dt + eta (s/|W|)(I - Wbar Wbar^T) dB`` for :class:`SphereModel`.

    General noise (``noise_dim = d``), applied as a projection: ``O(d)`` per path and step.
    """

    def __init__(self, model, lr, wd, device="cpu", dtype=torch.float64):
        super().__init__("general", model.d, model.d)
        self.eta, self.lam, self.s = constant_rate(lr, "lr"), constant_rate(wd, "wd"), float(model.s)
        self.H = None if model.H.size == 0 else _tensor(model.H, device, dtype)

    def _grad_and_r(self, y):
        r, r2 = _r_r2(y)
        if self.H is None:
            return None, r, r2
        hw = y @ self.H  # H symmetric
        # grad = (H wbar - (wbar . H wbar) wbar) / r = (H w - (w . H w / r^2) w) / r^2
        q = (hw * y).sum(-1, keepdim=True) / r2
        return (hw - q * y) / r2, r, r2

    def _drift(self, y, grad):
        drift = y * (-self.eta * self.lam)
        if grad is not None:
            drift = drift - self.eta * grad
        return drift

    def _product(self, y, v, r, r2):
        dot = (y * v).sum(-1, keepdim=True)
        return (self.eta * self.s) * (v - (dot / r2) * y) / r

    def f(self, t, y):
        return self._drift(y, self._grad_and_r(y)[0])

    def g_prod(self, t, y, v):
        r, r2 = _r_r2(y)
        return self._product(y, v, r, r2)

    def f_and_g_prod(self, t, y, v):
        grad, r, r2 = self._grad_and_r(y)
        return self._drift(y, grad), self._product(y, v, r, r2)

    def dense_g(self, t, y):
        """The full diffusion ``(n_paths, d, d)`` (for checks only)."""
        r2 = (y * y).sum(-1, keepdim=True)
        eye = torch.eye(self.dim, dtype=y.dtype, device=y.device)
        proj = eye - y[:, :, None] * y[:, None, :] / r2[:, :, None]
        return (self.eta * self.s) * proj / r2.sqrt()[:, :, None]


def _r_r2(y):
    r2 = (y * y).sum(-1, keepdim=True)
    return r2.sqrt(), r2


class ClassifierSGD(_TorchSDE):
    """The SGD SDE of :class:`NormalizedLinearClassifier`: ``logits = scale X W/|W|_F``, cross-entropy,
    minibatch noise ``S = f [g_i - gbar]_i`` (``noise_dim = n``), all paths in one batch.

    Per step, one GEMM gives the logits of every path and sample (``X (n, p)`` against the
    weights of all paths laid side by side, ``(p, K n_paths)``, paths innermost so that the
    softmax sums over classes are vectorised over paths), and two GEMMs with ``X^T`` give the
    mean gradient and the noise product from the softmax residuals ``R`` (``R / n`` and
    ``R * (dB - mean dB)``): the per-sample gradients are never formed. Since ``|W/|W|| = 1``,
    ``|logit| <= scale |x_i|``; when that bound cannot overflow ``exp`` the softmax skips the
    max subtraction (one pass fewer over the ``n x K x n_paths`` array).
    """

    def __init__(self, model, lr, wd, device="cpu", dtype=torch.float64):
        super().__init__("general", model.d, model.noise_dim)
        self.eta, self.lam = constant_rate(lr, "lr"), constant_rate(wd, "wd")
        data = model.data
        self.p, self.K, self.n = data.p, data.n_classes, data.n
        self.scale = float(model.scale)
        self.fac = float(noise_factor_scale(data.n, model.batch_size, model.replace))
        self.X = _tensor(data.X, device, dtype)                      # (n, p)
        self.Xt = self.X.t().contiguous()                            # (p, n)
        Y = np.zeros((data.n, data.n_classes))
        Y[np.arange(data.n), data.y] = 1.0
        self.Y = _tensor(Y, device, dtype)[:, :, None]               # (n, K, 1)
        self.safe_exp = self.scale * float(np.linalg.norm(data.X, axis=1).max()) < 60.0

    def _residuals(self, y):
        """Normalized weights ``(P, d)``, norms ``(P, 1)`` and softmax residuals ``(n, K, P)``."""
        P = y.shape[0]
        r = y.norm(dim=-1, keepdim=True)
        wn = y / r
        W = (wn * self.scale).view(P, self.p, self.K).permute(1, 2, 0).reshape(self.p, self.K * P)
        Z = (self.X @ W).view(self.n, self.K, P)
        if not self.safe_exp:
            Z = Z.sub_(Z.amax(dim=1, keepdim=True))
        E = Z.exp_()
        R = E.div_(E.sum(dim=1, keepdim=True)).sub_(self.Y)
        return wn, r, R

    def _back(self, C):
        """``scale X^T C`` for ``C`` of shape ``(n, K, P)`` -> ``(P, d)``."""
        P = C.shape[2]
        M = (self.Xt @ C.view(self.n, self.K * P)).view(self.p, self.K, P)
        return (self.scale * M).permute(2, 0, 1).reshape(P, self.p * self.K)

    @staticmethod
    def _tangent(v, wn, r):
        return (v - (v * wn).sum(-1, keepdim=True) * wn) / r

    def _drift(self, y, R, wn, r):
        Mbar = self._back(R) / self.n
        return -self.eta * (self._tangent(Mbar, wn, r) + self.lam * y)

    def _noise(self, R, v, wn, r):
        c = (v - v.mean(-1, keepdim=True)).t().contiguous()[:, None, :]   # (n, 1, P)
        return (self.eta * self.fac) * self._tangent(self._back(R * c), wn, r)

    def f(self, t, y):
        wn, r, R = self._residuals(y)
        return self._drift(y, R, wn, r)

    def g_prod(self, t, y, v):
        wn, r, R = self._residuals(y)
        return self._noise(R, v, wn, r)

    def f_and_g_prod(self, t, y, v):
        wn, r, R = self._residuals(y)
        return self._drift(y, R, wn, r), self._noise(R, v, wn, r)

    def dense_g(self, t, y):
        """The full diffusion ``(n_paths, d, n)``: column ``i`` is ``eta f P(g_i - gbar)`` (checks only)."""
        wn, r, R = self._residuals(y)
        P = y.shape[0]
        Mi = self.scale * self.X[None, :, :, None] * R.permute(2, 0, 1)[:, :, None, :]  # (P, n, p, K)
        Mi = Mi.reshape(P, self.n, -1)
        Mi = Mi - Mi.mean(1, keepdim=True)
        cols = self._tangent(Mi, wn[:, None, :], r[:, :, None])
        return (self.eta * self.fac) * cols.transpose(1, 2)


class DenseDiffusion(_TorchSDE):
    """Wrap a matrix-free SDE so torchsde uses its dense ``g`` (``(n_paths, dim, noise_dim)``).

    For checks: same drift, diffusion applied by torchsde's own batched matrix-vector product.
    """

    def __init__(self, sde):
        super().__init__(sde.noise_type, sde.dim, sde.noise_dim)
        self.inner = sde

    def f(self, t, y):
        return self.inner.f(t, y)

    def g(self, t, y):
        return self.inner.dense_g(t, y)


# ----------------------------------------------------------------------------- core test SDEs
class _Diagonal(_TorchSDE):
    """Diagonal noise ``g_i(y_i)``: torchsde multiplies elementwise; Milstein gets ``g`` by autograd
    or its derivative-free form."""

    def __init__(self, dim, drift, diffusion):
        super().__init__("diagonal", dim, dim)
        self._f, self._g = drift, diffusion

    def f(self, t, y):
        return self._f(y)

    def g(self, t, y):
        return self._g(y)

    def f_and_g(self, t, y):
        return self._f(y), self._g(y)


class _Scalar(_TorchSDE):
    def __init__(self, dim, drift, diffusion):
        super().__init__("scalar", dim, 1)
        self._f, self._g = drift, diffusion

    def f(self, t, y):
        return self._f(y)

    def g(self, t, y):
        return self._g(y)[:, :, None]

    def f_and_g(self, t, y):
        return self._f(y), self.g(t, y)


class _General(_TorchSDE):
    """General noise with a small dense ``g`` (as torchsde's ``g``) and a fused ``f_and_g_prod``."""

    def __init__(self, dim, noise_dim, drift, diffusion, product):
        super().__init__("general", dim, noise_dim)
        self._f, self._g, self._prod = drift, diffusion, product

    def f(self, t, y):
        return self._f(y)

    def g(self, t, y):
        return self._g(y)

    dense_g = g

    def g_prod(self, t, y, v):
        return self._prod(y, v)

    def f_and_g_prod(self, t, y, v):
        return self._f(y), self._prod(y, v)


def _gbm(args, device, dtype):
    mu, s = _tensor(args[0], device, dtype), _tensor(args[1], device, dtype)
    return _Diagonal(mu.numel(), lambda y: mu * y, lambda y: s * y)


def _ou(dim):
    def build(args, device, dtype):
        theta, sigma = float(args[0]), float(args[1])
        return _Diagonal(dim, lambda y: -theta * y, lambda y: torch.full_like(y, sigma))
    return build


def _linear_scalar(args, device, dtype):
    A, B = _tensor(args[0], device, dtype), _tensor(args[1][0], device, dtype)
    return _Scalar(A.shape[0], lambda y: y @ A.t(), lambda y: y @ B.t())


def _linear_matrix(args, device, dtype):
    A, Bs = _tensor(args[0], device, dtype), _tensor(args[1], device, dtype)  # Bs: (m, d, d)
    m, d = Bs.shape[0], A.shape[0]
    return _General(d, m, lambda y: y @ A.t(), lambda y: torch.einsum("jil,pl->pij", Bs, y),
                    lambda y, v: torch.einsum("jil,pl,pj->pi", Bs, y, v))


def _noncommutative(args, device, dtype):
    decay = _tensor([-0.5, -0.1], device, dtype)

    def g(y):
        out = torch.zeros(y.shape[0], 2, 2, dtype=y.dtype, device=y.device)
        out[:, 0, 0] = 1.0
        out[:, 1, 0] = 0.5 * torch.cos(y[:, 0])
        out[:, 1, 1] = y[:, 0]
        return out

    def prod(y, v):
        return torch.stack([v[:, 0], 0.5 * torch.cos(y[:, 0]) * v[:, 0] + y[:, 0] * v[:, 1]], dim=1)

    return _General(2, 2, lambda y: decay * y, g, prod)


#: (drift, diffusion) compiled functions of an sdesim SDE -> builder(args, device, dtype, sde).
_REGISTRY = {}


def register(drift, diffusion):
    """Decorator: register ``builder(sde, device, dtype) -> torchsde SDE`` for sdesim SDEs built
    from these compiled ``drift``/``diffusion`` functions (their args are read at build time)."""
    def deco(builder):
        _REGISTRY[(drift, diffusion)] = builder
        return builder
    return deco


for _drift, _diff, _build in [
        (reference.gbm_drift, reference.gbm_diffusion, lambda s, dv, dt: _gbm(s.args, dv, dt)),
        (reference.ou_drift, reference.ou_diffusion, lambda s, dv, dt: _ou(s.dim)(s.args, dv, dt)),
        (reference.lin_drift, reference.lin_scalar_diffusion, lambda s, dv, dt: _linear_scalar(s.args, dv, dt)),
        (reference.lin_drift, reference.lin_matrix_diffusion, lambda s, dv, dt: _linear_matrix(s.args, dv, dt)),
        (reference.nc_drift, reference.nc_diffusion, lambda s, dv, dt: _noncommutative(s.args, dv, dt))]:
    register(_drift, _diff)(_build)


def registered(sde):
    """The torchsde builder registered for ``sde``'s drift and diffusion (None if there is none)."""
    return _REGISTRY.get((sde.drift, sde.diffusion))
