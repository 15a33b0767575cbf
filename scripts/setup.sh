#!/usr/bin/env bash
# Creates .venv and installs trainlib with its test and demo extras.
# torch comes first, pinned, so pip takes the CPU build here instead of the multi-GB CUDA one;
# for a CUDA build elsewhere, install torch from https://pytorch.org first and set TORCH_SPEC=skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
if [[ $TORCH_SPEC != skip ]]; then
  .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "$TORCH_SPEC"
fi
.venv/bin/pip install -q -e ".[test,demo,migrate]"
