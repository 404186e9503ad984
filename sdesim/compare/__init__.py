"""Other libraries running the same SDEs as sdesim, for side-by-side checks and benchmarks.

* :mod:`sdesim.compare.torchsde` — the sphere model, the normalized classifier and the core's test
  SDEs as ``torchsde`` SDEs (CPU or CUDA), and :func:`~sdesim.compare.torchsde.run_both`, which runs
  one problem through both libraries; the torch SDE classes themselves are in
  :mod:`sdesim.compare.torch_sdes`. Needs the ``torch`` extra (``torch``, ``torchsde``).
* :mod:`sdesim.compare.agreement` — two-ensemble statistics (moment z-scores, Kolmogorov-Smirnov);
  NumPy/SciPy only.

Importing this package does not import torch.
"""

__all__ = ["agreement"]
