#!/usr/bin/env bash
# Set up and run the whole test suite (pytest; it drives dbt and delta-rs itself).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q tests/python "$@"
