#!/usr/bin/env bash
# Create the environment (with the optional torch/torchsde, data and sweep extras, so that the
# torchsde agreement tests and the Dask sweep tests run) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test,data,sweep,torch]"
.venv/bin/python -m pytest -q
