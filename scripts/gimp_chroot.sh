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

ROOT="${INSTRUCTIR_GIMP_CHROOT:-/var/cache/instructir-gimp-chroot}"
SUITE=trixie
# xvfb: the dialog check builds the real GimpUi dialog on a virtual display.
PACKAGES=(gimp python3 python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 gir1.2-babl-0.1 fonts-dejavu-core
          xvfb xauth)
STAMP="$ROOT/.instructir-ready"

die() { echo "gimp_chroot: $*" >&2; exit 1; }

mirror() {
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(grep -hoE '^(URIs:|deb)[[:space:]]+[^ ]+/debian/?([[:space:]]|$)' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -n1 || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

MOUNTED=()
mount_all() {
    local target
    for target in proc dev; do
        mkdir -p "$ROOT/$target"
        if ! mountpoint -q "$ROOT/$target"; then
            if [[ $target == proc ]]; then
                mount -t proc proc "$ROOT/proc"
            else
                mount --bind /dev "$ROOT/dev"
            fi
            MOUNTED+=("$ROOT/$target")
        fi
    done
    # Name resolution for apt; loopback needs nothing.
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
}

unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    MOUNTED=()
}

usable() {
    [[ -f "$STAMP" && -x "$ROOT/usr/bin/gimp-console-3.0" ]]
}

build() {
    if usable && [[ "$(cat "$STAMP")" == "${PACKAGES[*]}" ]]; then echo "$ROOT"; return; fi
    [[ $(id -u) -eq 0 ]] || die "building the chroot needs root"
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    if [[ -d "$ROOT/debootstrap" ]]; then
        # An interrupted debootstrap: start again (never crossing into a leftover mount).
        for target in proc dev; do umount -l "$ROOT/$target" 2>/dev/null || true; done
        rm -rf --one-file-system "$ROOT"
    fi
    if [[ ! -x "$ROOT/usr/bin/apt-get" ]]; then
        local url
        url=$(mirror)
        mkdir -p "$ROOT"
        echo "gimp_chroot: debootstrap $SUITE from $url into $ROOT" >&2
        debootstrap --variant=minbase "$SUITE" "$ROOT" "$url" >&2
    fi
    trap unmount_all EXIT
    mount_all
    chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2
    chroot "$ROOT" apt-get clean
    unmount_all
    trap - EXIT
    [[ -x "$ROOT/usr/bin/gimp-console-3.0" ]] || die "gimp-console-3.0 is missing after the install"
    echo "${PACKAGES[*]}" >"$STAMP"
    echo "$ROOT"
}

run() {
    usable || die "the chroot is not built; run: $0 build"
    [[ $(id -u) -eq 0 ]] || die "running in the chroot needs root"
    trap unmount_all EXIT
    mount_all
    local rc=0
    chroot "$ROOT" "$@" || rc=$?
    unmount_all
    trap - EXIT
    return "$rc"
}

# One build or run at a time: a run unmounts /proc and /dev when it ends.
lock() {
    mkdir -p "$(dirname "$ROOT")"
    exec 9>"$ROOT.lock"
    flock 9
}

case "${1:-build}" in
    build) lock; build ;;
    run) shift; [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARG...]"; lock; run "$@" ;;
    path) echo "$ROOT" ;;
    check) usable ;;
    *) die "usage: $0 [build|run CMD...|path|check]" ;;
esac
