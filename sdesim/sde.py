"""What an SDE is: drift, diffusion, noise structure, parameters, and their validation.

An Ito SDE ``dY = f(t, Y) dt + g(t, Y) dW`` with ``Y`` of length ``dim`` and ``W`` a Brownian
motion of length ``noise_dim``. The user writes plain Python functions that fill an output
array; sdesim compiles them with ``numba.njit(inline="always")``, so that they are inlined into
the compiled time loop (functions you jit yourself are used as they are, but for fast-math flags
and error model that they leave unset, which are made explicit: see
:func:`sdesim.caching.flags.explicit_flags`; give them ``inline="always"`` for the same speed).
"""

from typing import Callable, Optional

import numba as nb
import numpy as np
from numba.core.dispatcher import Dispatcher

from .caching.fingerprints import fingerprint
from .caching.flags import explicit_flags

__all__ = ["SDE", "NOISE_TYPES", "CALCULI", "DENSE_CHECK_LIMIT"]

#: Noise structures, from the most to the least special.
NOISE_TYPES = ("scalar", "diagonal", "additive", "commutative", "general")
#: How the noise term of an SDE is read.
CALCULI = ("ito", "stratonovich")


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


#: The compiled form of each user function, by fingerprint: an SDE built again from the same
#: functions (the same code, closure values and globals) reuses them, and with them the kernels.
_JITTED = {}


def _jit(func, what):
    if isinstance(func, Dispatcher):
        return explicit_flags(func)
    if not callable(func):
        raise TypeError(f"{what} must be a function f(t, y, args, out), got {type(func).__name__}")
    digest = fingerprint(func)
    if digest is not None and digest in _JITTED:
        return _JITTED[digest]
    # inlined into the kernel at Numba's IR level: no call, no reference counting of args per step
    jitted = nb.njit(inline="always")(func)
    if digest is not None:
        _JITTED[digest] = jitted
    return jitted


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
    args : tuple or NamedTuple
        Numbers and arrays (or tuples of them) passed unchanged as the third argument of every
        function; a ``typing.NamedTuple`` lets the functions read them by name (``args.rate``).
        An entry ``sdesim.per_path(values)`` gives path ``p`` the value ``values[p]``.
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
    state_check : callable, optional
        ``state_check(y0s)`` (plain Python, on the ``(n_paths, dim)`` initial states) raising
        ``ValueError`` for states the SDE is not defined at (e.g. a zero-norm weight of a
        scale-invariant model); :func:`sdesim.solve` calls it before anything runs.
    name : str, optional
        A label for messages and reports.
    calculus : str
        ``"ito"`` (default) or ``"stratonovich"``: how the noise term is read. A scheme integrates
        the calculi it declares (``euler``, ``srk``, ``sra1``: Ito; ``euler_heun``: Stratonovich;
        ``milstein``: both);
        :meth:`to_ito` and :meth:`to_stratonovich` convert the drift where the derivative of the
        diffusion is given.

    Plain Python functions are compiled with ``numba.njit``; already-jitted functions are
    used as they are, with the fast-math flags and error model they leave unset made explicit
    (``fastmath=False``, ``error_model="numpy"``). Time is the SDE's own variable.
    """

    def __init__(self, drift: Callable, diffusion: Callable, *, dim: int, noise_dim: Optional[int] = None,
                 noise: str, args: tuple = (), diffusion_derivative: Optional[Callable] = None,
                 diffusion_product: Optional[Callable] = None, drift_and_product: Optional[Callable] = None,
                 projection: Optional[Callable] = None, state_check: Optional[Callable] = None,
                 name: Optional[str] = None, calculus: str = "ito") -> None:
        if noise not in NOISE_TYPES:
            raise ValueError(f"noise must be one of {NOISE_TYPES}, got {noise!r}")
        if calculus not in CALCULI:
            raise ValueError(f"calculus must be one of {CALCULI}, got {calculus!r}")
        self.calculus = calculus
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
        if state_check is not None and not callable(state_check):
            raise TypeError(f"state_check must be a function of the initial states, got {type(state_check).__name__}")
        self.state_check = state_check
        self._checked = set()

    def kernel_key(self):
        """What a compiled kernel depends on: the compiled functions, the shapes and the noise."""
        return (self.drift, self.diffusion, self.diffusion_derivative, self.diffusion_product,
                self.drift_and_product, self.projection, self.dim, self.noise_dim, self.noise, self.calculus)

    def fingerprint(self):
        """Digest of :meth:`kernel_key` by value (:func:`sdesim.caching.fingerprint`): equal for SDEs
        whose kernels compile to the same code, in any process; ``None`` if a function has none.

        Computed once per SDE object and its functions (about 0.1 ms, a third of a small solve's
        overhead), like the compiled functions themselves: a global that a function reads, changed
        after the SDE was built, is not seen (Numba treats globals as constants); build the SDE
        again to take it in."""
        key = self.kernel_key()
        memo = self.__dict__.get("_fingerprint_memo")
        if memo is None or memo[0] != key:
            memo = self._fingerprint_memo = (key, fingerprint(key))
        return memo[1]

    @property
    def diffusion_shape(self):
        """Shape of the array ``diffusion`` writes."""
        return diffusion_shape(self.noise, self.dim, self.noise_dim)

    def __repr__(self):
        extra = "" if self.calculus == "ito" else f", calculus={self.calculus!r}"
        return (f"SDE({self.name!r}, dim={self.dim}, noise_dim={self.noise_dim}, "
                f"noise={self.noise!r}{extra})")

    def with_args(self, args):
        """The same SDE (the same compiled functions) with other ``args``."""
        other = object.__new__(SDE)
        other.__dict__.update(self.__dict__)
        other.args = args
        other._checked = set()
        other.__dict__.pop("_path0_twin", None)  # (sdesim.plan's, for the old args)
        return other

    def to_stratonovich(self):
        """The same process written as a Stratonovich SDE: drift ``f - c`` with the Ito-Stratonovich
        correction ``c_i = 1/2 sum_j sum_l g_lj d g_ij / d y_l``, same diffusion. Needs
        ``diffusion_derivative`` (the correction is then exact); the new drift evaluates the
        diffusion and its derivative each time (and allocates for them)."""
        return self._converted("stratonovich")

    def to_ito(self):
        """The same process written as an Ito SDE: drift ``f + c`` (see :meth:`to_stratonovich`)."""
        return self._converted("ito")

    def _converted(self, calculus):
        if self.calculus == calculus:
            return self
        if self.noise == "additive":  # c = 0: the two calculi coincide
            drift = self.drift
        elif self.diffusion_derivative is None:
            raise ValueError(f"converting {self.name!r} to {calculus} needs diffusion_derivative (the "
                             "correction 1/2 sum_j L^j g_j uses the derivative of the diffusion)")
        else:
            drift = _corrected_drift(self, 1.0 if calculus == "ito" else -1.0)
        return SDE(drift, self.diffusion, dim=self.dim, noise_dim=self.noise_dim, noise=self.noise,
                   args=self.args, diffusion_derivative=self.diffusion_derivative,
                   diffusion_product=self.diffusion_product, projection=self.projection,
                   state_check=self.state_check, name=f"{self.name} ({calculus})", calculus=calculus)

    def check_at(self, t, y, dtype=np.float64, *, dense=True):
        """Evaluate every user function once at ``(t, y)`` (as plain Python) and check it.

        Raises ``ValueError`` naming the function when it raises, returns a value instead of
        writing ``out``, writes the wrong shape, leaves entries unwritten, writes NaN/inf or
        changes its input ``y``; and when the functions disagree: ``diffusion_product`` against
        ``diffusion`` times the same random ``dW``, ``drift_and_product`` against ``drift`` and
        ``diffusion_product``. ``dense=False`` (the scheme uses only the matrix-free product)
        skips the dense ``diffusion`` when it has more than :data:`DENSE_CHECK_LIMIT` entries,
        so the check stays O(dim) in memory. A fault that shows only later in a solve (an
        out-of-bounds write) is found by ``solve(..., debug=True)``.
        """
        y = np.asarray(y, dtype=dtype)
        key = (float(t), y.tobytes(), np.dtype(dtype).str, bool(dense))
        if key in self._checked:
            return
        t = float(t)
        n_g = int(np.prod(self.diffusion_shape))
        check_dense = dense or self.diffusion_product is None or n_g <= DENSE_CHECK_LIMIT
        dW = np.random.default_rng(12345).standard_normal(self.noise_dim).astype(dtype)
        vals = {"drift": self._call("drift", self.drift, t, y, (), [(self.dim,)], dtype)[0]}
        if check_dense:
            vals["diffusion"] = self._call("diffusion", self.diffusion, t, y, (), [self.diffusion_shape],
                                           dtype)[0]
            if self.diffusion_derivative is not None:
                self._call("diffusion_derivative", self.diffusion_derivative, t, y, (),
                           [derivative_shape(self.noise, self.dim, self.noise_dim)], dtype)
        if self.diffusion_product is not None:
            gdw = self._call("diffusion_product", self.diffusion_product, t, y, (dW,), [(self.dim,)], dtype)[0]
            if "diffusion" in vals:
                _agree(self.name, "diffusion_product(dW)", gdw, "diffusion times dW",
                       _dense_times(self.noise, vals["diffusion"], dW), dtype)
            if self.drift_and_product is not None:
                a2, gdw2 = self._call("drift_and_product", self.drift_and_product, t, y, (dW,),
                                      [(self.dim,), (self.dim,)], dtype)
                _agree(self.name, "drift_and_product's drift", a2, "drift", vals["drift"], dtype)
                _agree(self.name, "drift_and_product's noise", gdw2, "diffusion_product(dW)", gdw, dtype)
        if self.projection is not None:
            yp = y.copy()
            result = _guarded_call("projection", self.name, self.projection.py_func, (t, yp, self.args))
            if result is not None:
                raise ValueError(f"projection of {self.name!r} must change y in place and return None; "
                                 f"it returned {type(result).__name__}")
            if not np.all(np.isfinite(yp)):
                raise ValueError(f"projection of {self.name!r} made the state non-finite at t={t}")
        self._checked.add(key)

    def _call(self, what, func, t, y, extra, shapes, dtype):
        """Call ``func.py_func(t, y, args, *extra, *outs)`` on NaN-filled outputs and check them."""
        outs = [np.full(shape, np.nan, dtype=dtype) for shape in shapes]
        y_in = y.copy()
        result = _guarded_call(what, self.name, getattr(func, "py_func", func), (t, y_in, self.args, *extra, *outs),
                               f" when writing output(s) of shape {', '.join(map(str, shapes))} "
                               f"(noise={self.noise!r}, dim={self.dim}, noise_dim={self.noise_dim})")
        if result is not None:
            raise ValueError(f"{what} of {self.name!r} must write into `out` and return None; "
                             f"it returned {type(result).__name__}")
        if not np.array_equal(y_in, y):
            raise ValueError(f"{what} of {self.name!r} changed its input y; it must only write `out`")
        for out in outs:
            if not np.all(np.isfinite(out)):
                raise ValueError(f"{what} of {self.name!r} left entries of its output (shape {out.shape}) "
                                 f"unwritten or non-finite at t={t}")
        return outs

    def check_functional(self, functional, n_f, t, y, dtype=np.float64):
        """Check a reduce functional ``functional(t, y, args, out)`` (``n_f`` values) at ``(t, y)``
        the way :meth:`check_at` checks the SDE's own functions."""
        y = np.asarray(y, dtype=dtype)
        self._call("functional", functional, float(t), y, (), [(n_f,)], dtype)

    def check_event(self, event, t, y, dtype=np.float64):
        """Call ``event(t, y, args)`` once (as plain Python) and check that it returns a finite real
        number and leaves ``y`` unchanged."""
        y = np.asarray(y, dtype=dtype)
        y_in = y.copy()
        value = _guarded_call("event", self.name, getattr(event, "py_func", event), (float(t), y_in, self.args))
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"event of {self.name!r} must return a number (the event is where it reaches 0 "
                             f"from below), got {type(value).__name__}")
        if not np.isfinite(value):
            raise ValueError(f"event of {self.name!r} returned {value} at t={t}")
        if not np.array_equal(y_in, y):
            raise ValueError(f"event of {self.name!r} changed its input y; it must only read it")

    def debug_functional(self, functional):
        """``functional`` compiled bounds-checked with a named error (see :meth:`debug_twin`)."""
        cache = self.__dict__.setdefault("_debug_functionals", {})
        if functional not in cache:
            cache[functional] = _bounds_checked(functional, "functional", self.name)
        return cache[functional]

    def debug_twin(self):
        """The same SDE with every user function compiled bounds-checked and not inlined, each
        wrapped so that an error inside it (an out-of-bounds index, a division by zero) surfaces
        as an ``IndexError`` naming the function: what ``solve(..., debug=True)`` runs."""
        twin = self.__dict__.get("_debug_twin")
        if twin is None:
            twin = object.__new__(SDE)
            twin.__dict__.update(self.__dict__)
            twin._checked = set()
            twin.__dict__.pop("_path0_twin", None)
            twin._is_debug_twin = True
            for what in _FUNCTIONS:
                f = getattr(self, what)
                if f is not None:
                    setattr(twin, what, _bounds_checked(f, what, self.name))
            self._debug_twin = twin
        twin.args = self.args
        return twin


#: Entries of a dense diffusion above which a scheme that uses only the matrix-free product does
#: not evaluate it in the pre-check (the check stays O(dim) in memory).
DENSE_CHECK_LIMIT = 1 << 20

_FUNCTIONS = ("drift", "diffusion", "diffusion_derivative", "diffusion_product", "drift_and_product",
              "projection")
DEBUG_HINT = "run solve(..., debug=True) (or set SDESIM_DEBUG=1) to find errors inside the compiled solve"


def _guarded_call(what, name, func, call_args, detail=""):
    try:
        return func(*call_args)
    except Exception as exc:
        raise ValueError(f"{what} of {name!r} failed{detail}: {type(exc).__name__}: {exc}. "
                         f"({DEBUG_HINT})") from exc


def _dense_times(noise, g, dW):
    if noise == "diagonal":
        return g * dW
    if noise == "scalar":
        return g * dW[0]
    return g @ dW


def _agree(name, what_a, a, what_b, b, dtype):
    """Raise unless ``a`` and ``b`` agree to the rounding of ``dtype`` (relative to their size)."""
    rtol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-9
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-300)
    err = float(np.max(np.abs(a - b), initial=0.0))
    if err > rtol * scale * max(1, a.size) ** 0.5:
        raise ValueError(f"{what_a} and {what_b} of {name!r} disagree (largest difference {err:.3g}, "
                         f"largest entry {scale:.3g}): they must describe the same noise")


_GUARD_SOURCE = """
def guarded({params}):
    ok = True
    try:
        inner({params})
    except Exception:
        ok = False
    if not ok:
        raise IndexError(message)
"""
_ARITY = {"projection": 3, "diffusion_product": 5, "drift_and_product": 6}


def _bounds_checked(func, what, name):
    """``func`` compiled with bounds checks, in a wrapper whose error names it (see debug_twin)."""
    n = _ARITY.get(what, 4)
    params = ", ".join(f"a{i}" for i in range(n))
    scope = {"inner": nb.njit(boundscheck=True)(getattr(func, "py_func", func)),
             "message": f"{what} of {name!r} raised an error inside the compiled solve (an index out "
                        f"of bounds, or a division by zero): found by debug mode"}
    exec(_GUARD_SOURCE.format(params=params), scope)  # one wrapper per arity, from one template
    return nb.njit(scope["guarded"])


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _corrected_drift(sde, sign):
    """Compiled ``f + sign * c`` with ``c_i = 1/2 sum_j sum_l g_lj d g_ij / d y_l`` (Ito drift =
    Stratonovich drift + c)."""
    drift, diffusion, deriv = sde.drift, sde.diffusion, sde.diffusion_derivative
    noise, dim, m = sde.noise, sde.dim, sde.noise_dim
    g_shape, d_shape = diffusion_shape(noise, dim, m), derivative_shape(noise, dim, m)
    half = 0.5 * sign

    if noise == "diagonal":
        @nb.njit(inline="always")
        def correction(g, d, i):
            return g[i] * d[i]
    elif noise == "scalar":
        @nb.njit(inline="always")
        def correction(g, d, i):
            c = 0.0
            for l in range(dim):
                c += d[i, l] * g[l]
            return c
    else:
        @nb.njit(inline="always")
        def correction(g, d, i):
            c = 0.0
            for j in range(m):
                for l in range(dim):
                    c += d[i, j, l] * g[l, j]
            return c

    @nb.njit(inline="always")
    def corrected(t, y, args, out):
        drift(t, y, args, out)
        g = np.empty(g_shape)
        d = np.empty(d_shape)
        diffusion(t, y, args, g)
        deriv(t, y, args, d)
        for i in range(dim):
            out[i] += half * correction(g, d, i)

    return corrected
