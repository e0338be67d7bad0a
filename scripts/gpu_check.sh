#!/usr/bin/env bash
# GPU checks in one command: prints one JSON summary on stdout (progress on stderr) and
# exits 0 when nothing failed. Without CUDA it runs the CPU parts and reports the rest as
# skipped. See scripts/gpu_check.py for what is checked; --quick runs the toy-size CPU part.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# On a GPU machine the run takes under five minutes; past ten something is stuck.
exec timeout 600 "$PYTHON" scripts/gpu_check.py "$@"
