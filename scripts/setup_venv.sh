#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment.
# torch is pinned first (torch==2.13.0) so that CPU machines get the CPU wheel instead of several GB of
# CUDA packages. On a GPU machine whose Python already has a CUDA torch, run with SA_SLM_SYSTEM_SITE=1:
# the venv then sees the system packages and, since torch imports, the pin is skipped.
set -euo pipefail
# espeak-ng (Debian) synthesises the paper-mini corpus (make paper-mini and its CI test); installed when
# missing and this user may (root with apt-get), otherwise a note.
if ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -q espeak-ng >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q espeak-ng >/dev/null 2>&1; }) \
      || echo "note: could not install espeak-ng; make paper-mini and its test need it (apt-get install espeak-ng)" >&2
  else
    echo "note: espeak-ng is not installed; make paper-mini and its test need it (apt-get install espeak-ng)" >&2
  fi
fi
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x "$VENV/bin/python" ]; then
  if [ "${SA_SLM_SYSTEM_SITE:-0}" = "1" ]; then
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip setuptools wheel
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  $PIP install -q "torch==2.13.0"
fi
if ! "$VENV/bin/python" -c "import deepspeed" 2>/dev/null; then
  DS_BUILD_OPS=0 $PIP install -q --no-build-isolation "deepspeed>=0.17"
fi
$PIP install -q -e ".[dev]"
