"""What a scheme declares: its name, orders, the noise structures it accepts, and a step factory."""


__all__ = ["Solver"]


class Solver:
    """Base class of the integration schemes.

    A scheme declares ``strong_order`` and ``weak_order`` (dicts keyed by noise structure;
    a missing key means the noise is refused), the ``calculus`` of the SDEs it solves, and builds, for one SDE, a compiled step

        step(t, h, y, dW, area, args, work, y_out)

    that advances ``y`` (shape ``(dim,)``) over ``[t, t + h]`` with Brownian increment ``dW``
    (shape ``(noise_dim,)``) and, when :meth:`needs_levy_area` is true, the Levy area
    ``area`` (shape ``(noise_dim, noise_dim)``), or when :meth:`needs_space_time_area` is true the
    space-time area ``area[0]`` (shape ``(noise_dim,)``), writing into ``y_out``. ``work`` is scratch
    of :meth:`work_size` entries.
    """

    name = None
    strong_order = {}
    weak_order = {}
    #: The calculi whose SDEs the scheme converges to (an Ito scheme applied to a Stratonovich SDE
    #: would converge to another process, so solve refuses the pair).
    calculus = ("ito",)

    def accepts(self, noise):
        return noise in self.strong_order

    def check_calculus(self, calculus):
        """Raise a clear error when this scheme does not integrate SDEs of ``calculus``."""
        if calculus not in self.calculus:
            raise ValueError(f"method {self.name!r} integrates {' and '.join(self.calculus)} SDEs, "
                             f"not {calculus} ones")

    def check_noise(self, noise):
        """Raise a clear error when this scheme does not support ``noise``."""
        if not self.accepts(noise):
            raise ValueError(f"method {self.name!r} does not support noise={noise!r} (it supports "
                             f"{sorted(self.strong_order)})")

    def needs_levy_area(self, noise):
        """Whether the step reads the Levy areas ``area[j, k]`` (shape :meth:`area_size` squared)."""
        return False

    def needs_space_time_area(self, noise):
        """Whether the step reads the space-time Levy areas ``area[0, j] = H_j`` (shape
        ``(1, noise_dim)``; :mod:`sdesim.brownian.areas`)."""
        return False

    def uses_dense_diffusion(self, sde):
        """Whether the step evaluates ``sde.diffusion`` (the dense factor), rather than only a
        matrix-free ``diffusion_product``: what the pre-check must evaluate and what memory a
        path needs."""
        return True

    def default_substeps(self, noise, dt):
        """Sub-steps of the Brownian path per step from which the step's areas are read by default
        (``levy_substeps=None``), or None when the scheme reads no areas."""
        return None

    def area_shape(self, sde):
        """Shape of the ``area`` array the step reads: ``(n, n)`` Levy areas (:meth:`area_size`), or
        ``(1, noise_dim)`` space-time areas."""
        if self.needs_space_time_area(sde.noise):
            return (1, sde.noise_dim)
        return (self.area_size(sde),) * 2

    def area_size(self, sde):
        """``n`` of the ``(n, n)`` Levy-area array the step reads (1 when it reads none)."""
        return 1

    def work_size(self, sde):
        raise NotImplementedError

    def make_step(self, sde):
        raise NotImplementedError

    def describe(self, noise):
        return (f"{self.name}: strong order {self.strong_order[noise]}, "
                f"weak order {self.weak_order[noise]} for noise={noise!r}")
