"""The application layer on top of the toolkit and the paper's models: the ``sdesim`` command line
(:mod:`.cli`), TOML configs (:mod:`.config`), one simulation (:mod:`.simulate`), sweeps on Dask
(:mod:`.sweep`), the paper's experiments (:mod:`.experiments`), the reproduction report
(:mod:`.report`) and atomic writes of results (:mod:`._io`)."""
