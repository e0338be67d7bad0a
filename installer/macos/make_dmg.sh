#!/usr/bin/env bash
# Sign InstructIR.app (ad hoc unless a Developer ID is given) and wrap it in a compressed .dmg
# with an Applications shortcut to drag it onto.
#
#   installer/macos/make_dmg.sh [dist/InstructIR.app] [dist/InstructIR-<version>.dmg]
#   CODESIGN_IDENTITY="Developer ID Application: ..." installer/macos/make_dmg.sh ...
#
# Ad-hoc signed apps run on the machine that built them and, after the user allows them once
# (right-click > Open, or System Settings > Privacy & Security), on other Macs. Apple-silicon
# builds use the GPU through PyTorch's MPS backend; Intel builds run on the CPU.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
APP="${1:-$ROOT/dist/InstructIR.app}"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/instructir_desktop/__init__.py")"
OUT="${2:-$ROOT/dist/InstructIR-$VERSION-macos-$(uname -m).dmg}"
IDENTITY="${CODESIGN_IDENTITY:--}"

[ -d "$APP" ] || { echo "make_dmg.sh: no app at $APP (run installer/build.py first)" >&2; exit 1; }

# Extended attributes (quarantine, Finder info) make codesign refuse the bundle.
xattr -cr "$APP"
if [ "$IDENTITY" = "-" ]; then
    codesign --force --deep --sign - "$APP"
else
    codesign --force --deep --timestamp --options runtime \
        --entitlements "$HERE/entitlements.plist" --sign "$IDENTITY" "$APP"
fi
codesign --verify --deep --strict --verbose=2 "$APP"

STAGING="$(mktemp -d)"
trap 'rm -rf "$STAGING"' EXIT
cp -R "$APP" "$STAGING/"
ln -s /Applications "$STAGING/Applications"
rm -f "$OUT"
hdiutil create -volname "InstructIR $VERSION" -srcfolder "$STAGING" -fs HFS+ \
    -format UDZO -imagekey zlib-level=9 -ov "$OUT"
hdiutil verify "$OUT"
echo "$OUT"
