#!/usr/bin/env bash
# Install InstructIR Desktop (CPU) and run the main job: restore the bundled sample photo with
# the bundled model pack and print the PSNR gain. Usage: bash scripts/demo.sh [output folder]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -e ".[fast]"
HF_HUB_OFFLINE=1 $PY -m instructir_desktop.cli demo -o "${1:-instructir-demo}"
