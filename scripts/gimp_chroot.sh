#!/usr/bin/env bash
# A Debian 13 (trixie) chroot with GIMP 3 and its Python plug-in support, for the real-GIMP
# integration test (tests/test_gimp_integration.py). GIMP 3 is not packaged for Debian 12.
#
#   scripts/gimp_chroot.sh [build]        build once (cached; reruns only add missing
#                                         packages), print the chroot folder
#   scripts/gimp_chroot.sh run CMD ARG..  run a command inside it (mounts /proc and /dev)
#   scripts/gimp_chroot.sh path           print the chroot folder
#   scripts/gimp_chroot.sh check          exit 0 when the chroot is built and usable
#
# Needs root and debootstrap. The chroot shares the host's loopback network, so GIMP inside
# reaches a bridge the host serves on 127.0.0.1. Environment:
#   INSTRUCTIR_GIMP_CHROOT  the folder (default /var/cache/instructir-gimp-chroot)
#   DEBIAN_MIRROR           the mirror (default: the host's deb.debian.org entry)
set -euo pipefail

NAME=gimp_chroot

ROOT="${INSTRUCTIR_GIMP_CHROOT:-/var/cache/instructir-gimp-chroot}"
SUITE=trixie
# xvfb: the dialog check builds the real GimpUi dialog on a virtual display.
PACKAGES=(gimp python3 python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 gir1.2-babl-0.1 fonts-dejavu-core
          xvfb xauth)
READY=/usr/bin/gimp-console-3.0

# shellcheck source=scripts/chroot_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chroot_lib.sh"
chroot_main "$@"
