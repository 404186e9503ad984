"""Running a plan on the CPU: the kernel factory (:mod:`.kernel`), the runner (:mod:`.cpu`), the
thread runner shared with :func:`sdesim.normalized.run_sgd` (:mod:`.threads`), borrowed array
views (:mod:`.borrow`) and the moment merging and failure handling shared with the CUDA runner
(:mod:`.results`)."""
