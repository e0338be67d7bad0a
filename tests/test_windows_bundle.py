"""The real Windows bundle, built, installed, run and uninstalled under Wine.

scripts/windows_bundle.sh builds the PyInstaller bundle with the official embeddable CPython
and the Windows wheels of installer/windows/requirements.txt under Wine, and compiles
installer/windows/instructir.iss around it with the real Inno Setup 6 (a build of the same
inputs is reused). This test installs that setup silently for the current user into a fresh
Wine prefix, runs the installed programs the way a Windows user would (the command line:
--version, intent, demo, restore of a JPEG with EXIF and an ICC profile, of a DNG and of a
HEIC photo; the GUI's --self-test on Qt's offscreen platform; `gimp install` into a GIMP 3
profile in the Wine user's AppData), then uninstalls and checks that nothing is left: files,
shortcuts, the file association, the Add/Remove Programs entry and the GIMP plug-in.

Each step's time goes to <build folder>/smoke.json (docs/building.md has the table).
INSTRUCTIR_WINDOWS_BUILD=<folder> tests that build folder (scripts/windows_bundle.sh prints
it) instead of the build of the checkout. Slow (marker "slow"); skips with the reason where
the chroot cannot be built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from chroots import chroot_or_skip, tail
from test_windows_installer import APP_ID, read_registry

ROOT = Path(__file__).resolve().parents[1]
CHROOT_SCRIPT = ROOT / "scripts" / "wine_chroot.sh"
BUNDLE_SCRIPT = ROOT / "scripts" / "windows_bundle.sh"
NO_BUILD_ENV = "INSTRUCTIR_WINE_NO_BUILD"
# A build folder to test as it is (scripts/windows_bundle.sh prints it) instead of the build
# of the checkout.
BUILD_ENV = "INSTRUCTIR_WINDOWS_BUILD"
APP_REL = "users/root/AppData/Local/Programs/InstructIR"
START_MENU = "users/root/AppData/Roaming/Microsoft/Windows/Start Menu/Programs"
DESKTOP = "users/root/Desktop"
GIMP_PROFILE = "users/root/AppData/Roaming/GIMP/3.0"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(5400)]

TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def build() -> dict:
    """The build folder's build.json, with "folder" and "chroot" added; built when missing."""
    chroot = chroot_or_skip(
        CHROOT_SCRIPT, "the Windows bundle test", NO_BUILD_ENV, ("debootstrap", "npm")
    )
    start = time.monotonic()
    if os.environ.get(BUILD_ENV):
        folder = Path(os.environ[BUILD_ENV])
    else:
        proc = subprocess.run(
            [str(BUNDLE_SCRIPT), "build"], capture_output=True, text=True, timeout=4 * 3600
        )
        assert proc.returncode == 0, f"{tail(proc.stdout, 20)}\n{tail(proc.stderr, 40)}"
        folder = Path(proc.stdout.strip().splitlines()[-1])
    info = json.loads((folder / "build.json").read_text())
    info.update(folder=folder, chroot=chroot, wall_s=round(time.monotonic() - start, 1))
    return info


class Machine:
    """A fresh copy of the app's Wine prefix in a scratch folder of the chroot."""

    def __init__(self, chroot: Path) -> None:
        self.inside = f"/tmp/instructir-win-{uuid.uuid4().hex[:8]}"
        self.host = chroot / self.inside.lstrip("/")
        self.host.mkdir(parents=True)
        self.drive_c = self.host / "prefix" / "drive_c"

    def win(self, host_path: Path) -> str:
        """A path under the scratch folder as Windows programs see it (drive Z: is /)."""
        return "Z:" + ("/" + str(host_path.relative_to(self.host.parents[1]))).replace("/", "\\")

    def sh(self, script: str, name: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        """Run script in the prefix, offline, with the app's folders in the scratch folder."""
        work = self.host / "work"
        env = (
            f"export WINEPREFIX={self.inside}/prefix HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "
            f"QT_QPA_PLATFORM=offscreen PYTHONIOENCODING=utf-8 TOKENIZERS_PARALLELISM=false "
            f"INSTRUCTIR_DATA_DIR='{self.win(work / 'data')}' "
            f"INSTRUCTIR_CACHE_DIR='{self.win(work / 'cache')}' "
            f"INSTRUCTIR_CONFIG_DIR='{self.win(work / 'config')}' "
            f"HF_HOME='{self.win(work / 'hf')}'; "
            f"[ -d {self.inside}/prefix ] || cp -a /opt/wineprefix-app {self.inside}/prefix; "
            f"mkdir -p {self.inside}/work; cd {self.inside}/work; "
        )
        start = time.monotonic()
        proc = subprocess.run(
            [
                str(BUNDLE_SCRIPT),
                "run",
                "bash",
                "-c",
                env + script + "; rc=$?; wineserver -w; exit $rc",
            ],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
        TIMES[name] = round(time.monotonic() - start, 1)
        return proc


@pytest.fixture(scope="module")
def machine(build):
    m = Machine(build["chroot"])
    yield m
    _write_report(build)
    shutil.rmtree(m.host, ignore_errors=True)


def _write_report(build: dict) -> None:
    report = {k: v for k, v in build.items() if k not in ("folder", "chroot")}
    report["steps_s"] = TIMES
    report["tested"] = time.strftime("%Y-%m-%d")
    (build["folder"] / "smoke.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def _exe(m: Machine, name: str) -> str:
    return f"'{m.win(m.drive_c / APP_REL / name)}'"


def _json(text: str):
    """The last JSON value printed: one per line, or one pretty-printed object at the end."""
    for line in reversed(text.splitlines()):
        if line.strip().startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    start = text.rfind("\n{")
    return json.loads(text[start:] if start >= 0 else text)


@pytest.fixture(scope="module")
def installed(build, machine) -> Machine:
    setup = build["folder"] / build["setup"]
    shutil.copy2(setup, machine.host / setup.name)
    proc = machine.sh(
        f"xvfb-run -a wine '{machine.win(machine.host / setup.name)}' /VERYSILENT"
        " /SUPPRESSMSGBOXES /NORESTART /CURRENTUSER /TASKS=desktopicon,association"
        f" '/LOG={machine.win(machine.host / 'setup.log')}'",
        "install",
    )
    log = (machine.host / "setup.log").read_text(errors="replace")
    assert "Installation process succeeded" in log, f"{tail(log, 20)}\n{tail(proc.stderr)}"
    return machine


def test_bundle_fits_the_size_target(build):
    # Decimal megabytes unpacked, as for the Linux bundle.
    assert build["bundle_bytes"] < 700e6, build
    assert build["setup_bytes"] < build["bundle_bytes"]


def test_setup_installs_the_real_bundle(installed):
    app = installed.drive_c / APP_REL
    for name in ("instructir.exe", "instructir-desktop.exe", "unins000.exe"):
        assert (app / name).is_file(), sorted(p.name for p in app.glob("*"))
    assert (app / "_internal" / "resources" / "sample" / "sample.jpg").is_file()
    # The VC++ runtime travels with the app (Wine's built-in copies are not collected).
    internal = {p.name.lower() for p in (app / "_internal").iterdir()}
    for dll in ("msvcp140.dll", "msvcp140_1.dll", "vcruntime140.dll", "vcruntime140_1.dll"):
        assert dll in internal, dll
    assert (installed.drive_c / START_MENU / "InstructIR Desktop.lnk").is_file()
    assert (installed.drive_c / DESKTOP / "InstructIR Desktop.lnk").is_file()


def test_version(build, installed):
    proc = installed.sh(f"wine {_exe(installed, 'instructir.exe')} --version", "--version")
    assert proc.returncode == 0, tail(proc.stderr, 20)
    assert build["version"] in proc.stdout, proc.stdout


def test_intent(installed):
    proc = installed.sh(
        f"wine {_exe(installed, 'instructir.exe')} intent 'it is too dark' --json", "intent"
    )
    assert proc.returncode == 0, f"{tail(proc.stdout)}\n{tail(proc.stderr, 20)}"
    data = _json(proc.stdout)
    assert data["task"] == "lowlight", data


def test_demo_restores_the_sample(installed):
    out = installed.host / "work" / "demo"
    proc = installed.sh(
        f"wine {_exe(installed, 'instructir.exe')} demo -o '{installed.win(out)}' --json", "demo"
    )
    assert proc.returncode == 0, f"{tail(proc.stdout)}\n{tail(proc.stderr, 20)}"
    cases = _json(proc.stdout)["cases"]
    assert cases and all(c["gain_db"] > 0 for c in cases), cases
    assert len(list(out.glob("*.png"))) >= 3


def _photo_with_exif_and_icc(path: Path) -> tuple[bytes, bytes]:
    from PIL import Image, ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with Image.open(ROOT / "resources" / "sample" / "sample.jpg") as src:
        image = src.convert("RGB").resize((256, 192))
    exif = Image.Exif()
    exif[0x010F] = "InstructIR Test Camera"  # Make
    exif[0x0110] = "Wine 10"  # Model
    image.save(path, quality=92, exif=exif.tobytes(), icc_profile=icc)
    return exif.tobytes(), icc


def test_restore_keeps_exif_and_icc(installed):
    from PIL import Image

    work = installed.host / "work"
    src, out = work / "camera.jpg", work / "camera-restored.jpg"
    work.mkdir(parents=True, exist_ok=True)
    _, icc = _photo_with_exif_and_icc(src)
    proc = installed.sh(
        f"wine {_exe(installed, 'instructir.exe')} restore '{installed.win(src)}'"
        f" -i 'remove the noise' -o '{installed.win(out)}' --json",
        "restore",
    )
    assert proc.returncode == 0, f"{tail(proc.stdout)}\n{tail(proc.stderr, 20)}"
    with Image.open(out) as result:
        assert result.size == (256, 192)
        assert result.info.get("icc_profile") == icc
        assert result.getexif().get(0x010F) == "InstructIR Test Camera"


def test_restore_develops_a_raw_file(installed):
    """LibRaw (rawpy's DLLs) works inside the Windows bundle: a DNG becomes a 16-bit TIFF."""
    import dngfiles
    import numpy as np

    from instructir_desktop.core.images import load_image

    work = installed.host / "work"
    src, out = work / "IMG_0001.dng", work / "IMG_0001-restored.tif"
    work.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:64, 0:96]
    scene = np.stack([x / 96, y / 64, np.full(x.shape, 0.3)], axis=2) * 0.8
    scene[:, :4] = 1.0
    dngfiles.write_dng(src, scene, make="InstructIR", model="Windows Test")
    proc = installed.sh(
        f"wine {_exe(installed, 'instructir.exe')} restore '{installed.win(src)}'"
        f" -i 'remove the noise' -o '{installed.win(out)}' --json",
        "restore a RAW file",
    )
    assert proc.returncode == 0, f"{tail(proc.stdout)}\n{tail(proc.stderr, 20)}"
    result = load_image(out)
    assert (result.width, result.height, result.bit_depth) == (96, 64, 16)
    assert b"Windows Test" in (result.exif or b"")


def test_restore_opens_a_heic_photo(installed):
    """pi-heif (libheif's DLLs) works inside the Windows bundle: a phone's HEIC photo is
    restored to a JPEG (the type its results default to)."""
    pillow_heif = pytest.importorskip("pillow_heif")  # writes the photo on the host
    from PIL import Image

    work = installed.host / "work"
    src, out = work / "IMG_4032.HEIC", work / "heic-out"
    work.mkdir(parents=True, exist_ok=True)
    pillow_heif.from_pillow(Image.new("RGB", (96, 64), (120, 90, 60))).save(src, quality=90)
    proc = installed.sh(
        f"wine {_exe(installed, 'instructir.exe')} restore '{installed.win(src)}'"
        f" -i 'remove the noise' -o '{installed.win(out)}' --json",
        "restore a HEIC photo",
    )
    assert proc.returncode == 0, f"{tail(proc.stdout)}\n{tail(proc.stderr, 20)}"
    with Image.open(out / "IMG_4032.jpg") as result:
        assert result.size == (96, 64) and result.format == "JPEG"


def test_gui_self_test(installed):
    proc = installed.sh(
        f"wine {_exe(installed, 'instructir-desktop.exe')} --self-test", "--self-test"
    )
    assert proc.returncode == 0, f"{tail(proc.stdout, 20)}\n{tail(proc.stderr, 30)}"
    if proc.stdout.strip():
        assert _json(proc.stdout).get("ok") is True, proc.stdout[-2000:]


def test_gimp_install_into_the_user_profile(installed):
    profile = installed.drive_c / GIMP_PROFILE
    profile.mkdir(parents=True, exist_ok=True)
    proc = installed.sh(
        f"wine {_exe(installed, 'instructir.exe')} gimp install --json", "gimp install"
    )
    assert proc.returncode == 0, f"{tail(proc.stdout)}\n{tail(proc.stderr, 20)}"
    assert (profile / "plug-ins" / "instructir" / "instructir.py").is_file(), proc.stdout
    assert (profile / "plug-ins" / "instructir" / "bridge-location.json").is_file()


def test_uninstall_leaves_nothing(installed):
    app = installed.drive_c / APP_REL
    proc = installed.sh(
        f"xvfb-run -a wine '{installed.win(app / 'unins000.exe')}' /VERYSILENT /SUPPRESSMSGBOXES"
        f" '/LOG={installed.win(installed.host / 'uninstall.log')}'",
        "uninstall",
    )
    assert proc.returncode == 0, tail(proc.stderr, 20)
    leftovers = sorted(str(p.relative_to(app)) for p in app.rglob("*")) if app.exists() else []
    assert not app.exists(), leftovers[:20]
    assert not (installed.drive_c / START_MENU / "InstructIR Desktop.lnk").exists()
    assert not (installed.drive_c / DESKTOP / "InstructIR Desktop.lnk").exists()
    assert not (installed.drive_c / GIMP_PROFILE / "plug-ins" / "instructir").exists()
    reg = read_registry(installed.host / "prefix" / "user.reg")
    assert "software\\classes\\instructir.project" not in reg
    assert "" not in reg.get("software\\classes\\.instructir", {})
    assert "software\\classes\\applications\\instructir-desktop.exe" not in reg
    assert f"software\\microsoft\\windows\\currentversion\\uninstall\\{APP_ID.lower()}" not in reg
