#!/usr/bin/env bash
# Set up and run the whole test suite (pytest; it drives dbt and delta-rs itself).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Two workers (the machine's cores), one test module per worker at a time (conftest.py groups them).
exec .venv/bin/python -m pytest -q -n 2 --dist loadgroup tests/python "$@"
