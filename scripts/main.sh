#!/usr/bin/env bash
# Create the environment and run the main job: `sdesim reproduce --quick`, the paper's checks
# (norm equilibration, intrinsic LR, LR/WD decay, SGD vs SDE, fast equilibrium, last decay) and
# the report with every figure and a verdict per prediction -> results/report.html, results/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[plot,data]"
.venv/bin/sdesim reproduce --quick --out results
