#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment.
# torch is pinned first so that CPU machines get the local CPU wheel; a machine that already has a
# CUDA torch in the environment keeps it (pip sees the pin satisfied... or SA_SLM_KEEP_TORCH=1 skips it).
set -euo pipefail
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip setuptools wheel
if [ "${SA_SLM_KEEP_TORCH:-0}" != "1" ] && ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  $PIP install -q "torch==2.13.0"
fi
if ! "$VENV/bin/python" -c "import deepspeed" 2>/dev/null; then
  DS_BUILD_OPS=0 $PIP install -q --no-build-isolation "deepspeed>=0.17"
fi
$PIP install -q -e ".[dev]"
