#!/usr/bin/env bash
# Sets up .venv (see setup.sh) and runs the demo: a small CNN on scikit-learn's digits (3s vs 7s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MPLBACKEND=Agg .venv/bin/python -m trainlib.demo "$@"
