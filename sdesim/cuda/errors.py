"""The errors of the CUDA backend."""

__all__ = ["GPUUnsupportedError"]


class GPUUnsupportedError(ValueError):
    """An SDE or an option the CUDA backend cannot run (the message says why and what would)."""
