#!/usr/bin/env bash
# Set-up plus the main job: generate the default Basketball data, train the CPU preset, export
# the SavedModel, measure tracking/prediction and draw predictions (runs/basketball_cpu/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python train.py --dataset basketball "$@"
