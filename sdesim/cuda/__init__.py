"""GPU backend: fused CUDA kernels, one thread per path, all steps in one kernel launch.

``sdesim.solve(sde, y0, ts, ..., device="cuda")`` runs here (:func:`run_cuda` on the solve's plan). The SDE's own Python functions are
compiled for the device with Numba's CUDA target (:mod:`.translate`), together with the
CPU scheme's step, inside one kernel per (SDE, scheme, dtype, output mode) in which each thread
integrates one path over every step (:mod:`.kernel`; compiled per bound on the steps' tree depth). Each path reads the CPU backend's Brownian
path (:mod:`sdesim.brownian.tree`: one dyadic tree over absolute time per seed and path index,
the same at every ``dt``): its thread walks the tree step by step, drawing each node's normals from
the same counter-based streams (Philox4x32-10 + ziggurat under the key of the node's depth, counter
= (tag, node's normal number, cell word, path)), so nothing depends on the launch configuration.

Same seed, same answer (what ``tests/test_cuda_sim.py`` checks, and ``scripts/gpu_check.sh`` on a GPU):

* the normals are the CPU backend's, bitwise: the Philox words and the ziggurat's accepted and
  wedge-rejected draws are exact integer and IEEE arithmetic on both; a tail draw (|z| > 3.65,
  about 1 in 4000) takes a ``log``, which libdevice may round differently from the CPU's libm;
* so the Brownian path, ``Solution.ws``, is the tree's: the splits ``0.5 D +- s z`` are rounded
  operation by operation (the product as ``mul.rn``, which NVVM does not fuse), bitwise equal to
  the tree's definition on a GPU as under the simulator. The CPU kernel's splits may be contracted
  into multiply-adds by its compiler (the tree functions inherit the kernel's fast-math flags), so
  the CPU's ``ws`` agree to rounding (a few ulp);
* float32 solves round the same float64 normals to float32 (as the CPU backend does);
* the states agree to rounding, not bitwise: both compilers fuse multiply-adds where they see
  fit (NVVM always may; the CPU kernel is compiled with ``contract``) and the GPU's ``sqrt``,
  ``exp``, ... are libdevice's. Under the simulator float64 states are within ~1e-15 relative of
  the CPU's after a few steps, float32 within ~1e-6.

Supported: Euler-Maruyama for every noise structure (with ``diffusion_product`` where the SDE has
one), Milstein for scalar, diagonal, additive and commutative noise (analytic or derivative-free),
float32 and float64, per-path ``y0``, ``save_brownian``, ``reduce``/``functional`` (paths are
stored in blocks on the device and reduced on the host in the CPU backend's order),
``on_nonfinite``, any start on the grid (``ts[0] = g0 dt``, negative too), steps wider than the
tree's top nodes (their top nodes summed), ``bm=`` (a :class:`~sdesim.BrownianPath` of ``dt``'s
family). Not supported, with an error that says so: times off the step grid of ``dt``, ``ts[0]``
included (the CPU backend bridges to them; here choose ``dt`` so that every time in ``ts`` is a
multiple of it); Milstein for general noise (its Levy areas need ``levy_substeps`` points of the Brownian tree per step and an
``O(noise_dim**2)`` area per thread); user functions that allocate arrays or call BLAS (a thread
has fixed-size local arrays only: see :func:`check_gpu_compatible`).

The data models (:class:`~sdesim.normalized.NormalizedLinearClassifier`,
:class:`~sdesim.normalized.WeightNormMLP`) are refused: each step of each path costs matrix
products over the whole data set (digits: logits of n = 1348 samples x 650 weights and the
gradient back, ~2.6 million multiply-adds), which their kernels do with ``np.dot`` into fresh
arrays. One thread per path would re-read the data set from memory per path and step, with no
reuse between paths. The GPU form of that work is one batched GEMM per step across all paths
(weights of all paths side by side as the GEMM's columns, as
:class:`sdesim.compare.torchsde.ClassifierSGD` does), i.e. a per-step sequence of library GEMM
calls, not a per-thread kernel.

Needs a CUDA GPU and Numba's CUDA target (``pip install 'sdesim[cuda]'`` installs numba-cuda), or
the simulator: set ``NUMBA_ENABLE_CUDASIM=1`` before ``numba.cuda`` is first imported.
"""

from .errors import GPUUnsupportedError
from .runner import (THREADS_PER_BLOCK, available, check_gpu_compatible, normals_per_second, run_cuda,
                     simulated, solve)

__all__ = ["solve", "run_cuda", "available", "simulated", "check_gpu_compatible", "GPUUnsupportedError",
           "normals_per_second", "THREADS_PER_BLOCK"]
