#!/usr/bin/env bash
# Create the environment and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test,data,sweep]"
.venv/bin/python -m pytest -q
