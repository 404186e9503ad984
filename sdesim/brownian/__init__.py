"""Counter-based Brownian paths: the random numbers (:mod:`.rng`: Philox4x32-10 and a ziggurat), the
Brownian tree over absolute time that every solve reads (:mod:`.tree`), the Levy and space-time areas of
a step from the tree's sub-points (:mod:`.areas`) and the public object
:class:`BrownianPath` (:mod:`.path`). A path is a function of (seed, path index, unit)."""

from .path import BrownianPath

__all__ = ["BrownianPath"]
