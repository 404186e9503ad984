"""Compiled building blocks shared by the schemes: the product g(t, y) dW for each noise structure."""

import numba as nb

__all__ = ["make_noise_product"]


def make_noise_product(noise, dim, noise_dim):
    """Return compiled ``noise_product(g, dW, i)`` = component ``i`` of ``g dW``.

    ``g`` is the flat diffusion buffer (``dim`` entries for scalar/diagonal noise,
    ``dim * noise_dim`` row-major for matrix noise).
    """
    if noise == "diagonal":
        @nb.njit(inline="always")
        def noise_product(g, dW, i):
            return g[i] * dW[i]
    elif noise == "scalar":
        @nb.njit(inline="always")
        def noise_product(g, dW, i):
            return g[i] * dW[0]
    else:
        m = noise_dim

        @nb.njit(inline="always")
        def noise_product(g, dW, i):
            acc = 0.0
            row = i * m
            for j in range(m):
                acc += g[row + j] * dW[j]
            return acc
    return noise_product


def diffusion_view(noise, dim, noise_dim):
    """Return compiled ``view(buf)`` giving the diffusion buffer in the shape the user writes."""
    if noise in ("diagonal", "scalar"):
        @nb.njit(inline="always")
        def view(buf):
            return buf
    else:
        shape = (dim, noise_dim)

        @nb.njit(inline="always")
        def view(buf):
            return buf.reshape(shape)
    return view
