"""The installer's platform files agree with each other and with the app (fast, no build).

The macOS .app and .dmg can only be built on a Mac (the workflow's macOS job does it) and
the Windows setup is exercised under Wine (tests/test_windows_installer.py); this checks what
can be checked anywhere: the Info.plist and entitlements the spec merges into the .app, the
Linux desktop entry and MIME type, the shell scripts' syntax, and the workflow's build matrix.
"""

from __future__ import annotations

import configparser
import plistlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from instructir_desktop.app.project import PROJECT_SUFFIX

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer"
MIME = "application/x-instructir"


def test_macos_info_plist_declares_the_app_and_its_document_types():
    info = plistlib.loads((INSTALLER / "macos" / "Info.plist").read_bytes())
    assert re.fullmatch(r"[a-z]+(\.[a-z]+)+", info["CFBundleIdentifier"])
    assert info["CFBundleExecutable"] == "instructir-desktop"
    assert (ROOT / "resources" / "icons" / info["CFBundleIconFile"]).is_file()
    # MPS, which the Apple-silicon build runs the model on, needs macOS 12.3.
    major, minor = (int(p) for p in info["LSMinimumSystemVersion"].split(".")[:2])
    assert (major, minor) >= (12, 3)
    assert info["NSHighResolutionCapable"] is True
    types = {d["CFBundleTypeName"]: d for d in info["CFBundleDocumentTypes"]}
    project = types["InstructIR Project"]
    assert project["LSHandlerRank"] == "Owner"
    (uti,) = project["LSItemContentTypes"]
    (exported,) = [t for t in info["UTExportedTypeDeclarations"] if t["UTTypeIdentifier"] == uti]
    tags = exported["UTTypeTagSpecification"]
    assert tags["public.filename-extension"] == [PROJECT_SUFFIX.lstrip(".")]
    assert tags["public.mime-type"] == MIME
    # Photos: offered in "Open With", never taken over.
    images = types["Image"]
    assert images["LSHandlerRank"] == "Alternate"
    assert {"public.jpeg", "public.png", "public.tiff"} <= set(images["LSItemContentTypes"])


def test_macos_entitlements_allow_what_a_frozen_python_app_needs():
    ent = plistlib.loads((INSTALLER / "macos" / "entitlements.plist").read_bytes())
    # Under the hardened runtime (Developer ID signing) PyInstaller's bootloader loads
    # unsigned-by-Apple libraries and torch maps executable memory.
    for key in (
        "com.apple.security.cs.allow-unsigned-executable-memory",
        "com.apple.security.cs.disable-library-validation",
    ):
        assert ent.get(key) is True, key


def test_linux_desktop_entry_and_mime_type_agree():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(INSTALLER / "linux" / "instructir-desktop.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"].split()[0] == desktop["TryExec"] == "instructir-desktop"
    assert "%f" in desktop["Exec"].split()
    assert MIME in desktop["MimeType"].split(";")
    assert desktop["Icon"] == "instructir-desktop"
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    tree = ET.parse(INSTALLER / "linux" / "instructir-mime.xml")
    (mime,) = tree.getroot().findall("m:mime-type", ns)
    assert mime.get("type") == MIME
    assert mime.find("m:glob", ns).get("pattern") == "*" + PROJECT_SUFFIX
    install = (INSTALLER / "linux" / "install.sh").read_text(encoding="utf-8")
    assert "instructir-desktop.png" in install and "instructir-mime.xml" in install


@pytest.mark.parametrize(
    "script",
    [
        "installer/linux/install.sh",
        "installer/linux/AppRun",
        "installer/macos/make_dmg.sh",
        "scripts/chroot_lib.sh",
        "scripts/gimp_chroot.sh",
        "scripts/wine_chroot.sh",
        "scripts/test.sh",
    ],
)
def test_shell_scripts_parse(script):
    path = ROOT / script
    assert path.read_text(encoding="utf-8").startswith("#!")
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    if shutil.which("shellcheck"):
        proc = subprocess.run(
            ["shellcheck", "-S", "error", "-x", str(path)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout


def test_workflow_builds_every_os_with_unique_artifacts():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "build.yml").read_text())
    job = flow["jobs"]["build"]
    matrix = job["strategy"]["matrix"]["include"]
    oses = {m["os"].split("-")[0] for m in matrix}
    assert oses == {"ubuntu", "windows", "macos"}
    # The default Linux CPU download (the size target) and its OpenVINO variant.
    linux_cpu = [m for m in matrix if m["os"].startswith("ubuntu") and m["flavor"] == "cpu"]
    assert sorted(bool(m.get("openvino")) for m in linux_cpu) == [False, True]
    # upload-artifact@v4 refuses a second artifact of the same name in one run.
    runner_os = {"ubuntu": "Linux", "windows": "Windows", "macos": "macOS"}
    names = [
        f"instructir-{runner_os[m['os'].split('-')[0]]}-{m['flavor']}"
        + ("-openvino" if m.get("openvino") else "")
        for m in matrix
    ]
    assert len(set(names)) == len(names), names
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-art"))
    assert upload["with"]["name"] == (
        "instructir-${{ runner.os }}-${{ matrix.flavor }}"
        "${{ matrix.openvino && '-openvino' || '' }}"
    )
    build = next(s for s in job["steps"] if "installer/build.py" in s.get("run", ""))
    assert "--package" in build["run"] and "matrix.openvino" in build["run"]
