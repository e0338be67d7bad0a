"""The Windows installer script, compiled by the real Inno Setup 6 and run under Wine.

installer/windows/instructir.iss is what the release workflow compiles on a Windows runner
around the PyInstaller bundle. A Windows bundle cannot be built here, so the payload is a
small stand-in folder whose instructir.exe and instructir-desktop.exe are a MinGW-built
program that records its command line; everything else is real: ISCC.exe compiles the
script, the setup it makes installs silently into a fresh Wine prefix with every task
ticked, and its uninstaller removes it again. The test checks what a Windows user would
get: the files, the Start-menu and desktop shortcuts, the .instructir file association and
"Open with" entries, the GIMP plug-in step run by setup and undone by the uninstaller, the
Add/Remove Programs entry, and that nothing is left behind.

Wine, MinGW-w64 and Inno Setup live in a Debian 13 chroot (scripts/wine_chroot.sh), built on
first use; slow (marker "slow"). Skips with the reason where it cannot run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from chroots import chroot_or_skip, tail

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "wine_chroot.sh"
ISS = ROOT / "installer" / "windows" / "instructir.iss"
NO_BUILD_ENV = "INSTRUCTIR_WINE_NO_BUILD"
VERSION = "0.1.0"
APP_ID = "{EE0225DD-CA1D-478E-B26A-3FF3A78AE40A}_is1"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

# Stands in for the frozen executables: appends its command line to %INSTRUCTIR_STUB_LOG%.
STUB_C = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    const char *log = getenv("INSTRUCTIR_STUB_LOG");
    FILE *f = log ? fopen(log, "a") : NULL;
    if (f) {
        for (int i = 0; i < argc; i++) fprintf(f, "%s%s", i ? " " : "", argv[i]);
        fputc('\n', f);
        fclose(f);
    }
    return 0;
}
"""


def _unescape(text: str) -> str:
    """user.reg escapes backslashes and quotes with a backslash."""
    return re.sub(r"\\(.)", r"\1", text)


@pytest.fixture(scope="module")
def wine_chroot() -> Path:
    """The chroot folder, built on first use; skips with the reason when that is impossible."""
    return chroot_or_skip(SCRIPT, "the Wine test", NO_BUILD_ENV, ("debootstrap", "npm"))


class Wine:
    """Runs shell commands in the chroot with a private Wine prefix under a scratch folder."""

    def __init__(self, chroot: Path) -> None:
        self.inside = f"/tmp/instructir-iss-{uuid.uuid4().hex[:8]}"
        self.host = chroot / self.inside.lstrip("/")
        self.host.mkdir(parents=True)
        self.prefix = self.host / "prefix"
        self.users = self.prefix / "drive_c" / "users" / "root"

    def win(self, name: str) -> str:
        """A path under the scratch folder as Windows programs see it (drive Z: is /)."""
        return "Z:" + (self.inside + "/" + name).replace("/", "\\")

    def sh(self, script: str, timeout: int = 900) -> subprocess.CompletedProcess:
        env = (
            f"export WINEPREFIX={self.inside}/prefix WINEDEBUG=-all "
            f"WINEDLLOVERRIDES='mscoree,mshtml,winemenubuilder.exe=' "
            f"INSTRUCTIR_STUB_LOG='{self.win('calls.log')}'; cd {self.inside}; "
        )
        cmd = [str(SCRIPT), "run", "bash", "-c", env + script]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{script}\n{tail(proc.stdout)}\n{tail(proc.stderr)}"
        return proc

    def calls(self) -> list[str]:
        log = self.host / "calls.log"
        return log.read_text(errors="replace").splitlines() if log.exists() else []

    def registry(self) -> dict[str, dict[str, str]]:
        """HKEY_CURRENT_USER from the prefix's user.reg: key -> {value name: data}."""
        keys: dict[str, dict[str, str]] = {}
        current: dict[str, str] | None = None
        text = (self.prefix / "user.reg").read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            head = re.match(r"^\[(.+?)\](?: \d+)?$", line)
            value = re.match(r'^(@|"(?:[^"\\]|\\.)*")=(?:str\(\d\):)?"((?:[^"\\]|\\.)*)"$', line)
            if head:
                current = keys.setdefault(_unescape(head.group(1)).lower(), {})
            elif current is not None and value:
                name = "" if value.group(1) == "@" else _unescape(value.group(1)[1:-1])
                current[name.lower()] = _unescape(value.group(2))
        return keys


@pytest.fixture(scope="module")
def installed(wine_chroot):
    """Compile the script, install with every task ticked; yields (wine, setup.exe, app dir)."""
    wine = Wine(wine_chroot)
    try:
        (wine.host / "stub.c").write_text(STUB_C)
        (wine.host / "installer" / "windows").mkdir(parents=True)
        shutil.copy2(ISS, wine.host / "installer" / "windows" / ISS.name)
        (wine.host / "resources" / "icons").mkdir(parents=True)
        shutil.copy2(ROOT / "resources" / "icons" / "app.ico", wine.host / "resources" / "icons")
        payload = wine.host / "bundle" / "_internal" / "resources"
        payload.mkdir(parents=True)
        (payload / "README.txt").write_text("stand-in for the PyInstaller bundle\n")
        wine.sh(
            "cp -a /opt/wineprefix prefix"
            " && x86_64-w64-mingw32-gcc -O2 -o bundle/instructir.exe stub.c"
            " && cp bundle/instructir.exe bundle/instructir-desktop.exe"
            f" && xvfb-run -a wine /opt/innosetup-*/ISCC.exe /Q /DAppVersion={VERSION}"
            f" /DFlavor=cpu '/DBundleDir={wine.win('bundle')}' '/DOutputDir={wine.win('out')}'"
            f" '{wine.win('installer/windows/instructir.iss')}'"
            " && wineserver -w"
        )
        setup = wine.host / "out" / f"InstructIR-{VERSION}-windows-x64-cpu-setup.exe"
        assert setup.is_file(), sorted(p.name for p in (wine.host / "out").glob("*"))
        wine.sh(
            f"xvfb-run -a wine out/{setup.name} /VERYSILENT /SUPPRESSMSGBOXES /NORESTART"
            " /CURRENTUSER /TASKS=desktopicon,association,gimpplugin"
            f" '/LOG={wine.win('setup.log')}'; wineserver -w"
        )
        # The default folder of a per-user install (no /DIR given).
        app = wine.users / "AppData" / "Local" / "Programs" / "InstructIR"
        yield wine, setup, app
    finally:
        shutil.rmtree(wine.host, ignore_errors=True)


def _start_menu(wine: Wine) -> Path:
    return wine.users / "AppData/Roaming/Microsoft/Windows/Start Menu/Programs"


def test_iscc_compiles_the_script_into_a_windows_setup(installed):
    _, setup, _ = installed
    assert setup.read_bytes()[:2] == b"MZ"
    assert setup.stat().st_size > 500_000  # the setup program itself plus the payload


def test_setup_installs_the_bundle_per_user(installed):
    wine, _, app = installed
    log = (wine.host / "setup.log").read_text(errors="replace")
    assert "Installation process succeeded" in log, tail(log, 20)
    for name in ("instructir.exe", "instructir-desktop.exe", "unins000.exe"):
        assert (app / name).is_file(), sorted(p.name for p in app.glob("*"))
    assert (app / "_internal" / "resources" / "README.txt").is_file()


def test_setup_makes_start_menu_and_desktop_shortcuts(installed):
    wine, _, _ = installed
    assert (_start_menu(wine) / "InstructIR Desktop.lnk").is_file()
    assert (wine.users / "Desktop" / "InstructIR Desktop.lnk").is_file()


def test_setup_registers_the_project_type_and_open_with(installed):
    wine, _, app = installed
    reg = wine.registry()
    assert reg["software\\classes\\.instructir"][""] == "InstructIR.Project"
    command = reg["software\\classes\\instructir.project\\shell\\open\\command"][""]
    assert command.lower().endswith('instructir-desktop.exe" "%1"'), command
    assert "\\programs\\instructir\\" in command.lower()
    assert "applications\\instructir-desktop.exe" in reg["software\\classes\\.jpg\\openwithprogids"]
    uninstall = reg[f"software\\microsoft\\windows\\currentversion\\uninstall\\{APP_ID.lower()}"]
    assert uninstall["displayname"] == "InstructIR Desktop"
    assert uninstall["displayversion"] == VERSION


def test_setup_runs_the_gimp_plugin_task(installed):
    wine, _, _ = installed
    calls = wine.calls()
    assert any(c.lower().endswith("instructir.exe gimp install") for c in calls), calls
    # The postinstall "launch the app" entry is skipped in a silent install.
    assert not any("instructir-desktop.exe" in c.lower() for c in calls), calls


def test_uninstaller_removes_everything_and_the_plugin(installed):
    wine, _, app = installed
    wine.sh(
        f"xvfb-run -a wine '{wine.win(str(app.relative_to(wine.host)))}\\unins000.exe'"
        f" /VERYSILENT /SUPPRESSMSGBOXES '/LOG={wine.win('uninstall.log')}'; wineserver -w"
    )
    assert any(c.lower().endswith("instructir.exe gimp uninstall") for c in wine.calls())
    assert not app.exists(), sorted(str(p.relative_to(app)) for p in app.rglob("*"))
    assert not (_start_menu(wine) / "InstructIR Desktop.lnk").exists()
    assert not (wine.users / "Desktop" / "InstructIR Desktop.lnk").exists()
    reg = wine.registry()
    assert "software\\classes\\instructir.project" not in reg
    assert "" not in reg.get("software\\classes\\.instructir", {})
    assert f"software\\microsoft\\windows\\currentversion\\uninstall\\{APP_ID.lower()}" not in reg
