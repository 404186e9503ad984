"""The contract every scale-invariant model of :mod:`sdesim.normalized` keeps, as a typed Protocol.

The SDE builders (:mod:`.builders`), the theory and discrete SGD read a model through these
names only; ``isinstance(model, ScaleInvariantModel)`` checks that an object has them.
"""

from typing import Protocol, Tuple, runtime_checkable

import numpy as np

__all__ = ["ScaleInvariantModel", "SGD_KINDS"]

#: how discrete SGD draws a model's stochastic gradient: ``"gaussian"`` (grad L + S z, z normal)
#: or ``"data"`` (a real minibatch gradient; the model provides ``minibatch_grad_kernel``)
SGD_KINDS = ("gaussian", "data")


@runtime_checkable
class ScaleInvariantModel(Protocol):
    """A loss made scale-invariant group by group, with its gradient noise.

    Sizes: ``d`` parameters in ``n_groups`` scale-invariant groups (``group_offsets``, shape
    ``(n_groups + 1,)``), noise of dimension ``noise_dim`` with ``S S^T = Sigma``. ``params``: a
    ``NamedTuple`` of the arrays and numbers the compiled kernels take and read by name. Kernels
    (compiled, in-place): ``grad_kernel(w, params, out)``,
    ``noise_product_kernel(w, params, dB, out)`` (``S(w) dB``), ``noise_factor_kernel(w, params, out)``
    (the dense ``(d, noise_dim)`` factor), ``noise_trace_kernel`` (per-group ``tr Sigma``).
    NumPy side: ``loss(w)``, ``grad(w)``, ``noise_cov(w)``, ``noise_traces(w)``.
    ``sgd_kind``: one of :data:`SGD_KINDS`.
    """

    d: int
    n_groups: int
    noise_dim: int
    group_offsets: np.ndarray
    params: Tuple
    sgd_kind: str

    def loss(self, w): ...

    def grad(self, w): ...

    def noise_cov(self, w): ...

    def noise_traces(self, w): ...
