#!/usr/bin/env bash
# Shared by scripts/gimp_chroot.sh and scripts/wine_chroot.sh: a Debian chroot built once with
# debootstrap, cached, and a way to run commands in it. Source it after setting:
#   NAME        the calling script's name, for messages
#   ROOT        the chroot folder
#   SUITE       the Debian suite (trixie)
#   PACKAGES    the packages to install (array)
#   READY       a file inside the chroot that exists once it is usable
# and optionally the functions pre_install (before apt-get install, chroot mounted) and
# post_install (after it). Then call chroot_main "$@".
#
# Needs root and debootstrap. The chroot shares the host's loopback network.

die() { echo "$NAME: $*" >&2; exit 1; }

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

STAMP="$ROOT/.instructir-ready"

usable() {
    [[ -f "$STAMP" && -e "$ROOT$READY" ]]
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
        echo "$NAME: debootstrap $SUITE from $url into $ROOT" >&2
        debootstrap --variant=minbase "$SUITE" "$ROOT" "$url" >&2
    fi
    trap unmount_all EXIT
    mount_all
    if declare -F pre_install >/dev/null; then pre_install; fi
    chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2
    chroot "$ROOT" apt-get clean
    if declare -F post_install >/dev/null; then post_install; fi
    unmount_all
    trap - EXIT
    [[ -e "$ROOT$READY" ]] || die "$READY is missing after the install"
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

chroot_main() {
    case "${1:-build}" in
        build) lock; build ;;
        run) shift; [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARG...]"; lock; run "$@" ;;
        path) echo "$ROOT" ;;
        check) usable ;;
        *) die "usage: $0 [build|run CMD...|path|check]" ;;
    esac
}
