#!/usr/bin/env bash
# Create the environment (with the optional torch/torchsde, data and sweep extras, so that the
# torchsde agreement tests and the Dask sweep tests run) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test,data,sweep,torch]"
# two workers (the machines have 2 cores; most of the suite's time is single-threaded kernel compiles),
# a test file per worker so that its compiled kernels are reused within the file
.venv/bin/python -m pytest -q -n 2 --dist loadfile
