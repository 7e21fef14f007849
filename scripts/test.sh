#!/usr/bin/env bash
# Set-up plus the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One worker process per core (pytest-xdist); a module's tests stay in one worker, so its
# module fixtures (tiny datasets, tiny trained runs) are built once. TEST_WORKERS=0 runs
# everything in this process.
exec .venv/bin/python -m pytest -q -n "${TEST_WORKERS:-auto}" --dist loadfile tests "$@"
