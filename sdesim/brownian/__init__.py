"""Counter-based Brownian paths: the random numbers (:mod:`.rng`: Philox4x32-10 and a ziggurat) and
the Brownian tree that every solve reads (:mod:`.tree`). A path is a function of (seed, path index)."""
