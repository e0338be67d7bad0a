#!/bin/sh
# Install InstructIR Desktop from this unpacked folder for the current user: the app under
# ~/.local/lib/instructir-desktop, the commands in ~/.local/bin, a menu entry, the icon and
# the .instructir file type. Nothing outside PREFIX is touched; no root needed.
#
#   ./install.sh [--prefix DIR] [--gimp]     install (--gimp: also the GIMP 3 plug-in)
#   ./install.sh [--prefix DIR] --uninstall  remove everything this script installed
set -eu

PREFIX="${PREFIX:-$HOME/.local}"
ACTION=install
GIMP=no
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift ;;
        --prefix=*) PREFIX="${1#--prefix=}" ;;
        --gimp) GIMP=yes ;;
        --uninstall) ACTION=uninstall ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

HERE=$(cd "$(dirname "$0")" && pwd)
APPDIR="$PREFIX/lib/instructir-desktop"
BIN="$PREFIX/bin"
SHARE="$PREFIX/share"
DESKTOP="$SHARE/applications/instructir-desktop.desktop"
ICON="$SHARE/icons/hicolor/512x512/apps/instructir-desktop.png"
MIME="$SHARE/mime/packages/instructir.xml"

refresh() {
    # Optional desktop caches: missing tools are fine, the files still work after a re-login.
    command -v update-mime-database >/dev/null 2>&1 && update-mime-database "$SHARE/mime" || true
    command -v update-desktop-database >/dev/null 2>&1 \
        && update-desktop-database "$SHARE/applications" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 \
        && gtk-update-icon-cache -q -f -t "$SHARE/icons/hicolor" || true
}

if [ "$ACTION" = uninstall ]; then
    if [ -x "$APPDIR/instructir" ]; then
        "$APPDIR/instructir" gimp uninstall >/dev/null 2>&1 || true
    fi
    for link in "$BIN/instructir" "$BIN/instructir-desktop"; do
        if [ -L "$link" ]; then rm -f "$link"; fi
    done
    rm -rf "$APPDIR"
    rm -f "$DESKTOP" "$ICON" "$MIME"
    refresh
    echo "InstructIR Desktop removed from $PREFIX (your settings and downloaded models stay)."
    exit 0
fi

if [ ! -x "$HERE/instructir-desktop" ] || [ ! -d "$HERE/_internal" ]; then
    echo "install.sh: run me from the unpacked InstructIR folder" >&2
    exit 1
fi

mkdir -p "$PREFIX/lib" "$BIN" "$(dirname "$DESKTOP")" "$(dirname "$ICON")" "$(dirname "$MIME")"
# Copy next to the old version first, then swap: an interrupted copy leaves the old app intact.
rm -rf "$APPDIR.new"
mkdir -p "$APPDIR.new"
cp -a "$HERE/instructir" "$HERE/instructir-desktop" "$HERE/_internal" "$APPDIR.new/"
rm -rf "$APPDIR"
mv "$APPDIR.new" "$APPDIR"
ln -sf "$APPDIR/instructir" "$BIN/instructir"
ln -sf "$APPDIR/instructir-desktop" "$BIN/instructir-desktop"

sed -e "s|^Exec=.*|Exec=\"$APPDIR/instructir-desktop\" %f|" \
    -e "s|^TryExec=.*|TryExec=$APPDIR/instructir-desktop|" \
    "$HERE/instructir-desktop.desktop" > "$DESKTOP"
chmod 644 "$DESKTOP"
cp "$HERE/instructir-desktop.png" "$ICON"
cp "$HERE/instructir-mime.xml" "$MIME"
refresh

if [ "$GIMP" = yes ]; then
    "$APPDIR/instructir" gimp install || echo "install.sh: the GIMP plug-in was not installed" >&2
fi

echo "InstructIR Desktop installed in $APPDIR"
case ":$PATH:" in
    *":$BIN:"*) ;;
    *) echo "Add $BIN to your PATH to run 'instructir' and 'instructir-desktop' from a terminal." ;;
esac
