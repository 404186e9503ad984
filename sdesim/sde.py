"""What an SDE is: drift, diffusion, noise structure, parameters, and their validation.

An Ito SDE ``dY = f(t, Y) dt + g(t, Y) dW`` with ``Y`` of length ``dim`` and ``W`` a Brownian
motion of length ``noise_dim``. The user writes plain Python functions that fill an output
array; sdesim compiles them with ``numba.njit(inline="always")``, so that they are inlined into
the compiled time loop (functions you jit yourself are used as they are: give them
``inline="always"`` for the same speed).
"""

import numba as nb
import numpy as np
from numba.core.dispatcher import Dispatcher

__all__ = ["SDE", "NOISE_TYPES"]

#: Noise structures, from the most to the least special.
NOISE_TYPES = ("scalar", "diagonal", "additive", "commutative", "general")


def diffusion_shape(noise, dim, noise_dim):
    """Shape of the array ``diffusion`` writes: ``(dim,)`` for scalar/diagonal, else ``(dim, noise_dim)``."""
    return (dim,) if noise in ("scalar", "diagonal") else (dim, noise_dim)


def derivative_shape(noise, dim, noise_dim):
    """Shape of the array ``diffusion_derivative`` writes.

    ``diagonal``: ``(dim,)`` with ``out[i] = d g_i / d y_i``; ``scalar``: ``(dim, dim)`` with
    ``out[i, l] = d g_i / d y_l``; matrix noise: ``(dim, noise_dim, dim)`` with
    ``out[i, j, l] = d g_ij / d y_l``.
    """
    if noise == "diagonal":
        return (dim,)
    if noise == "scalar":
        return (dim, dim)
    return (dim, noise_dim, dim)


def _jit(func, what):
    if isinstance(func, Dispatcher):
        return func
    if not callable(func):
        raise TypeError(f"{what} must be a function f(t, y, args, out), got {type(func).__name__}")
    # inlined into the kernel at Numba's IR level: no call, no reference counting of args per step
    return nb.njit(inline="always")(func)


class SDE:
    """An Ito SDE ``dY = drift(t, Y) dt + diffusion(t, Y) dW``.

    Parameters
    ----------
    drift : callable ``drift(t, y, args, out)``
        Writes the drift, shape ``(dim,)``, into ``out``. Returns nothing.
    diffusion : callable ``diffusion(t, y, args, out)``
        Writes the diffusion into ``out``: shape ``(dim,)`` for ``noise="diagonal"`` (the
        diagonal of ``g``; ``noise_dim == dim``) and ``noise="scalar"`` (``noise_dim == 1``),
        shape ``(dim, noise_dim)`` for ``"additive"``, ``"commutative"`` and ``"general"``.
    dim, noise_dim : int
        State and Brownian dimensions (``noise_dim`` defaults to ``dim`` for diagonal noise
        and to 1 for scalar noise).
    noise : str
        One of :data:`NOISE_TYPES`. ``"diagonal"`` means ``g_i`` depends on ``y_i`` only
        (this is what makes Milstein's diagonal form strong order 1); ``"additive"`` means
        ``g`` does not depend on ``y``; ``"commutative"`` means ``L^j g_k = L^k g_j`` with
        ``L^j = sum_l g_lj d/dy_l``. Anything else is ``"general"``.
    args : tuple
        Numbers and arrays passed unchanged as the third argument of every function.
    diffusion_derivative : callable, optional
        ``diffusion_derivative(t, y, args, out)`` writing the derivative of the diffusion
        (shape from :func:`derivative_shape`); used by Milstein instead of its
        derivative-free form.
    diffusion_product : callable, optional
        ``diffusion_product(t, y, args, dW, out)`` writing ``g(t, y) dW`` (shape ``(dim,)``)
        without forming ``g``; Euler-Maruyama uses it instead of ``diffusion`` (matrix-free
        noise, e.g. a projector or a ``d x n`` factor applied as a matrix-vector product).
    drift_and_product : callable, optional
        ``drift_and_product(t, y, args, dW, drift_out, noise_out)`` writing the drift and
        ``g(t, y) dW`` together, for SDEs whose two share expensive work (the data models share a
        forward pass); Euler-Maruyama uses it when given. Needs ``diffusion_product``.
    projection : callable, optional
        ``projection(t, y, args)`` applied in place after every step (e.g. back to a
        manifold). It changes the scheme; say so when reporting orders.
    name : str, optional
        A label for messages and reports.

    Plain Python functions are compiled with ``numba.njit``; already-jitted functions are
    used as they are. Time is the SDE's own variable.
    """

    def __init__(self, drift, diffusion, *, dim, noise_dim=None, noise, args=(),
                 diffusion_derivative=None, diffusion_product=None, drift_and_product=None, projection=None,
                 name=None):
        if noise not in NOISE_TYPES:
            raise ValueError(f"noise must be one of {NOISE_TYPES}, got {noise!r}")
        dim = _positive_int(dim, "dim")
        if noise == "diagonal":
            noise_dim = dim if noise_dim is None else _positive_int(noise_dim, "noise_dim")
            if noise_dim != dim:
                raise ValueError(f"diagonal noise needs noise_dim == dim ({dim}), got {noise_dim}")
        elif noise == "scalar":
            noise_dim = 1 if noise_dim is None else _positive_int(noise_dim, "noise_dim")
            if noise_dim != 1:
                raise ValueError(f"scalar noise needs noise_dim == 1, got {noise_dim}")
        elif noise_dim is None:
            raise ValueError(f"noise={noise!r} needs noise_dim")
        else:
            noise_dim = _positive_int(noise_dim, "noise_dim")
        if not isinstance(args, tuple):
            raise TypeError(f"args must be a tuple, got {type(args).__name__}")
        self.dim = dim
        self.noise_dim = noise_dim
        self.noise = noise
        self.args = args
        self.name = name or getattr(drift, "__name__", "sde")
        self.drift = _jit(drift, "drift")
        self.diffusion = _jit(diffusion, "diffusion")
        self.diffusion_derivative = (None if diffusion_derivative is None
                                     else _jit(diffusion_derivative, "diffusion_derivative"))
        self.diffusion_product = (None if diffusion_product is None
                                  else _jit(diffusion_product, "diffusion_product"))
        if drift_and_product is not None and diffusion_product is None:
            raise ValueError("drift_and_product needs diffusion_product as well")
        self.drift_and_product = (None if drift_and_product is None
                                  else _jit(drift_and_product, "drift_and_product"))
        self.projection = None if projection is None else _jit(projection, "projection")
        self._checked = set()

    def kernel_key(self):
        """What a compiled kernel depends on: the compiled functions, the shapes and the noise."""
        return (self.drift, self.diffusion, self.diffusion_derivative, self.diffusion_product,
                self.drift_and_product, self.projection, self.dim, self.noise_dim, self.noise)

    @property
    def diffusion_shape(self):
        """Shape of the array ``diffusion`` writes."""
        return diffusion_shape(self.noise, self.dim, self.noise_dim)

    def __repr__(self):
        return (f"SDE({self.name!r}, dim={self.dim}, noise_dim={self.noise_dim}, "
                f"noise={self.noise!r})")

    def check_at(self, t, y, dtype=np.float64):
        """Evaluate every user function once at ``(t, y)`` and check what it writes.

        Raises a clear error when a function returns a value instead of writing ``out``,
        writes the wrong shape, leaves entries unwritten or produces NaN/inf.
        """
        y = np.asarray(y, dtype=dtype)
        key = (float(t), y.tobytes(), np.dtype(dtype).str)
        if key in self._checked:
            return
        funcs = [("drift", self.drift, (self.dim,)),
                 ("diffusion", self.diffusion, self.diffusion_shape)]
        if self.diffusion_derivative is not None:
            funcs.append(("diffusion_derivative", self.diffusion_derivative,
                          derivative_shape(self.noise, self.dim, self.noise_dim)))
        for what, func, shape in funcs:
            out = np.full(shape, np.nan, dtype=dtype)
            try:
                result = func.py_func(float(t), y.copy(), self.args, out)
            except (IndexError, ValueError, TypeError) as exc:
                raise ValueError(
                    f"{what} of {self.name!r} failed when writing an output of shape {shape} "
                    f"(noise={self.noise!r}, dim={self.dim}, noise_dim={self.noise_dim}): {exc}"
                ) from exc
            if result is not None:
                raise ValueError(f"{what} of {self.name!r} must write into `out` and return None; "
                                 f"it returned {type(result).__name__}")
            if not np.all(np.isfinite(out)):
                raise ValueError(f"{what} of {self.name!r} left entries of its output (shape {shape}) "
                                 f"unwritten or non-finite at t={t}")
        self._checked.add(key)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
