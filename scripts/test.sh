#!/usr/bin/env bash
# Set-up plus the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One worker process per core (pytest-xdist); a module's tests stay in one worker, so its
# module fixtures (tiny datasets, tiny trained runs) are built once. Files are handed out in
# collection order, which tests/conftest.py starts with the slowest files (xdist's default order,
# most tests first, left the slowest file running alone at the end). TEST_WORKERS=0 runs
# everything in this process.
exec .venv/bin/python -m pytest -q -n "${TEST_WORKERS:-auto}" --dist loadfile \
    --no-loadscope-reorder tests "$@"
