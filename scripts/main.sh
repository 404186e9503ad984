#!/usr/bin/env bash
# Create the environment and run the main job: the core demo (fitted strong orders) and the
# paper's checks in quick mode (norm equilibration, intrinsic LR, LR/WD decay, SGD vs SDE,
# fast equilibrium, last decay) -> results/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[plot,data]"
.venv/bin/sdesim demo --out results/demo.json
for ex in norm_equilibration intrinsic_lr lr_decay sgd_vs_sde fast_equilibrium last_decay; do
    .venv/bin/python "examples/$ex.py" --quick --out "results/$ex"
done
