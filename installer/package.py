"""Packaging a built bundle for its OS: the Linux tarball (with install.sh) and AppDir or
AppImage, the macOS .dmg, the Windows setup.exe (Inno Setup)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from platform_info import INSTALLER, ROOT, arch, version

__all__ = ["make_appdir", "package_linux", "package_macos", "package_windows"]


def package_linux(dist: Path, bundle: Path, flavor: str) -> Path:
    """dist/InstructIR-<ver>-linux-<arch>-<variant>.tar.gz with install.sh and the .desktop."""
    name = f"InstructIR-{version()}-linux-{arch()}-{flavor}"
    out = dist / f"{name}.tar.gz"
    linux = INSTALLER / "linux"
    extras = {
        "install.sh": linux / "install.sh",
        "instructir-desktop.desktop": linux / "instructir-desktop.desktop",
        "instructir-mime.xml": linux / "instructir-mime.xml",
        "instructir-desktop.png": ROOT / "resources" / "icons" / "app.png",
        "README.txt": linux / "README.txt",
    }

    def executable(info: tarfile.TarInfo) -> tarfile.TarInfo:
        if info.name.endswith("install.sh"):
            info.mode = 0o755
        return info

    print(f"packaging {out.name} ...", flush=True)
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=name)
        for arcname, src in extras.items():
            tar.add(src, arcname=f"{name}/{arcname}", filter=executable)
    return out


def make_appdir(dist: Path, bundle: Path, flavor: str) -> tuple[Path, Path | None]:
    """Assemble an AppDir and, if appimagetool is on PATH, turn it into an AppImage."""
    appdir = dist / "InstructIR.AppDir"
    if appdir.exists():
        shutil.rmtree(appdir)
    shutil.copytree(bundle, appdir / "usr" / "lib" / "instructir-desktop", symlinks=True)
    shutil.copy2(INSTALLER / "linux" / "AppRun", appdir / "AppRun")
    os.chmod(appdir / "AppRun", 0o755)
    desktop = (INSTALLER / "linux" / "instructir-desktop.desktop").read_text(encoding="utf-8")
    (appdir / "instructir-desktop.desktop").write_text(desktop, encoding="utf-8")
    shutil.copy2(ROOT / "resources" / "icons" / "app.png", appdir / "instructir-desktop.png")
    (appdir / ".DirIcon").symlink_to("instructir-desktop.png")
    tool = shutil.which("appimagetool") or shutil.which("appimagetool-x86_64.AppImage")
    if tool is None:
        print("appimagetool not found: left the AppDir in", appdir, flush=True)
        return appdir, None
    out = dist / f"InstructIR-{version()}-{arch()}-{flavor}.AppImage"
    env = dict(os.environ, ARCH=arch(), APPIMAGE_EXTRACT_AND_RUN="1")
    subprocess.check_call([tool, str(appdir), str(out)], env=env)
    return appdir, out


def package_macos(dist: Path, flavor: str) -> Path:
    """dist/InstructIR-<ver>-macos-<arch>-<variant>.dmg from dist/InstructIR.app."""
    out = dist / f"InstructIR-{version()}-macos-{arch()}-{flavor}.dmg"
    subprocess.check_call(
        ["bash", str(INSTALLER / "macos" / "make_dmg.sh"), str(dist / "InstructIR.app"), str(out)]
    )
    return out


def package_windows(dist: Path, bundle: Path, flavor: str) -> Path:
    """dist/InstructIR-<ver>-windows-x64-<variant>-setup.exe, made by Inno Setup's ISCC."""
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    default = Path(os.environ.get("ProgramFiles(x86)", r"C:\Program Files (x86)"))
    if iscc is None and (default / "Inno Setup 6" / "ISCC.exe").is_file():
        iscc = str(default / "Inno Setup 6" / "ISCC.exe")
    if iscc is None:
        raise SystemExit("Inno Setup's ISCC.exe was not found (choco install innosetup).")
    subprocess.check_call(
        [
            iscc,
            f"/DAppVersion={version()}",
            f"/DFlavor={flavor}",
            f"/DBundleDir={bundle}",
            f"/DOutputDir={dist}",
            str(INSTALLER / "windows" / "instructir.iss"),
        ]
    )
    return dist / f"InstructIR-{version()}-windows-x64-{flavor}-setup.exe"
