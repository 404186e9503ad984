#!/usr/bin/env bash
# Create the environment and run the main job (until the paper-reproduction run exists: the core demo).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[plot]"
.venv/bin/sdesim demo --out results/demo.json
