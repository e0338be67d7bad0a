#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine, then run it.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # Qt's offscreen platform still needs these shared libraries.
  apt-get install -y -qq libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 \
    libglib2.0-0 debootstrap binutils >/dev/null 2>&1 || { apt-get update -qq >/dev/null && \
    apt-get install -y -qq libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 \
    libglib2.0-0 debootstrap binutils >/dev/null; }
fi
# CPU build of torch first: any other torch request would fetch a multi-GB CUDA build.
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -e ".[test,fast,dev]"
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1
$PY -m pytest "$@"
# The engine's tests again with the bf16 precision policy forced: what `auto` picks on CPUs
# with native bf16 (AVX-512-BF16, AMX); emulated, and slower, on CPUs without it.
INSTRUCTIR_PRECISION=bf16 $PY -m pytest tests/test_restorer.py tests/test_network.py \
  tests/test_jobs.py tests/test_cli.py tests/test_cli_safety.py tests/test_official_pack.py \
  tests/test_startup_cache.py
# The real-GIMP integration test (marker "slow"): GIMP 3 from Debian 13 in a chroot, built on
# first use (root + debootstrap); without them it skips and prints why.
$PY -m pytest -m slow -rs tests/test_gimp_integration.py
# The Windows installer script (marker "slow"): compiled by the real Inno Setup 6 and installed
# and uninstalled under Wine, in a Debian 13 chroot built on first use (root + debootstrap +
# npm, which fetches Inno Setup); without them it skips and prints why.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v npm >/dev/null; then
  apt-get install -y -qq npm >/dev/null 2>&1 || true
fi
$PY -m pytest -m slow -rs tests/test_windows_installer.py
# The real Windows bundle (marker "slow"): PyInstaller and Inno Setup under Wine in the same
# chroot, then install, run (CLI, demo, restore, GUI self-test, gimp install) and uninstall;
# ~35 min when the app changed, ~8 min when /var/cache holds a build of the same inputs
# (docs/building.md).
$PY -m pytest -m slow -rs tests/test_windows_bundle.py
# The PyInstaller bundles (marker "slow", ~15 min): builds dist/InstructIR (the default CPU
# download) and the OpenVINO variant, and smoke-tests the frozen CLI (demo, restore) and GUI
# (--self-test) offline.
$PY -m pytest -m slow -rs tests/test_installer.py
