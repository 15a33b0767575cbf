#!/usr/bin/env bash
# Sets up .venv (see setup.sh) and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MPLBACKEND=Agg .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
