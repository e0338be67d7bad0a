"""The Windows installer script, compiled by the real Inno Setup 6 and run under Wine.

installer/windows/instructir.iss is what the release workflow compiles on a Windows runner
around the PyInstaller bundle. A Windows bundle cannot be built here, so the payload is a
small stand-in folder whose instructir.exe and instructir-desktop.exe are a MinGW-built
program that records its command line; everything else is real: ISCC.exe compiles the
script, the setup it makes installs silently into a fresh Wine prefix with every task
ticked, once for the current user (the default, no administrator prompt) and once for all
users, and its uninstaller removes it again. The test checks what a Windows user would
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
from dataclasses import dataclass
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
    """Runs shell commands in the chroot, in a scratch folder, with a chosen Wine prefix."""

    def __init__(self, chroot: Path) -> None:
        self.inside = f"/tmp/instructir-iss-{uuid.uuid4().hex[:8]}"
        self.host = chroot / self.inside.lstrip("/")
        self.host.mkdir(parents=True)

    def win(self, name: str) -> str:
        """A path under the scratch folder as Windows programs see it (drive Z: is /)."""
        return "Z:" + (self.inside + "/" + name).replace("/", "\\")

    def sh(self, script: str, prefix: str, timeout: int = 900) -> subprocess.CompletedProcess:
        """Run script with WINEPREFIX=<scratch>/<prefix>, a fresh copy of the chroot's."""
        env = (
            f"export WINEPREFIX={self.inside}/{prefix} WINEDEBUG=-all "
            f"WINEDLLOVERRIDES='mscoree,mshtml,winemenubuilder.exe=' "
            f"INSTRUCTIR_STUB_LOG='{self.win(prefix + '-calls.log')}'; cd {self.inside}; "
            f"[ -d {prefix} ] || cp -a /opt/wineprefix {prefix}; "
        )
        cmd = [str(SCRIPT), "run", "bash", "-c", env + script]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{script}\n{tail(proc.stdout)}\n{tail(proc.stderr)}"
        return proc


def read_registry(path: Path) -> dict[str, dict[str, str]]:
    """A Wine registry file (user.reg: HKCU, system.reg: HKLM): key -> {value name: data}."""
    keys: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        head = re.match(r"^\[(.+?)\](?: \d+)?$", line)
        value = re.match(r'^(@|"(?:[^"\\]|\\.)*")=(?:str\(\d\):)?"((?:[^"\\]|\\.)*)"$', line)
        if head:
            current = keys.setdefault(_unescape(head.group(1)).lower(), {})
        elif current is not None and value:
            name = "" if value.group(1) == "@" else _unescape(value.group(1)[1:-1])
            current[name.lower()] = _unescape(value.group(2))
    return keys


# Where each install mode puts things, under drive C: (setup gets no /DIR: the defaults are
# tested): app folder, Start-menu programs, desktop, and the registry file of HKCU or HKLM.
LAYOUT = {
    "user": (
        "users/root/AppData/Local/Programs/InstructIR",
        "users/root/AppData/Roaming/Microsoft/Windows/Start Menu/Programs",
        "users/root/Desktop",
        "user.reg",
    ),
    "all": (
        "Program Files/InstructIR",
        "ProgramData/Microsoft/Windows/Start Menu/Programs",
        "users/Public/Desktop",
        "system.reg",
    ),
}


@dataclass
class Install:
    """One silent install of the setup, and where its parts must land in that mode."""

    wine: Wine
    mode: str  # "user" or "all"
    prefix: str
    app: Path
    start_menu: Path
    desktop: Path
    reg_file: Path

    @classmethod
    def where(cls, wine: Wine, mode: str) -> Install:
        prefix = f"prefix-{mode}"
        drive_c = wine.host / prefix / "drive_c"
        app, start_menu, desktop, reg_file = LAYOUT[mode]
        return cls(
            wine,
            mode,
            prefix,
            app=drive_c / app,
            start_menu=drive_c / start_menu,
            desktop=drive_c / desktop,
            reg_file=wine.host / prefix / reg_file,
        )

    def registry(self) -> dict[str, dict[str, str]]:
        return read_registry(self.reg_file)

    def calls(self) -> list[str]:
        log = self.wine.host / f"{self.prefix}-calls.log"
        return log.read_text(errors="replace").splitlines() if log.exists() else []

    def log(self, name: str) -> str:
        return (self.wine.host / f"{self.prefix}-{name}.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def compiled(wine_chroot):
    """ISCC.exe compiles the script around the stand-in bundle; yields (wine, setup.exe)."""
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
            "x86_64-w64-mingw32-gcc -O2 -o bundle/instructir.exe stub.c"
            " && cp bundle/instructir.exe bundle/instructir-desktop.exe"
            f" && xvfb-run -a wine /opt/innosetup-*/ISCC.exe /Q /DAppVersion={VERSION}"
            f" /DFlavor=cpu '/DBundleDir={wine.win('bundle')}' '/DOutputDir={wine.win('out')}'"
            f" '{wine.win('installer/windows/instructir.iss')}'"
            " && wineserver -w",
            prefix="prefix-build",
        )
        setup = wine.host / "out" / f"InstructIR-{VERSION}-windows-x64-cpu-setup.exe"
        assert setup.is_file(), sorted(p.name for p in (wine.host / "out").glob("*"))
        yield wine, setup
    finally:
        shutil.rmtree(wine.host, ignore_errors=True)


@pytest.fixture(scope="module", params=["user", "all"])
def installed(compiled, request) -> Install:
    """The setup installed silently with every task ticked, per user or for all users."""
    wine, setup = compiled
    inst = Install.where(wine, request.param)
    flag = "/CURRENTUSER" if inst.mode == "user" else "/ALLUSERS"
    wine.sh(
        f"xvfb-run -a wine out/{setup.name} /VERYSILENT /SUPPRESSMSGBOXES /NORESTART {flag}"
        " /TASKS=desktopicon,association,gimpplugin"
        f" '/LOG={wine.win(inst.prefix + '-setup.log')}'; wineserver -w",
        prefix=inst.prefix,
    )
    return inst


def test_iscc_compiles_the_script_into_a_windows_setup(compiled):
    _, setup = compiled
    assert setup.read_bytes()[:2] == b"MZ"
    assert setup.stat().st_size > 500_000  # the setup program itself plus the payload


def test_setup_installs_the_bundle(installed):
    log = installed.log("setup")
    assert "Installation process succeeded" in log, tail(log, 20)
    admin = "Administrative install mode: " + ("Yes" if installed.mode == "all" else "No")
    assert admin in log
    app = installed.app
    for name in ("instructir.exe", "instructir-desktop.exe", "unins000.exe"):
        assert (app / name).is_file(), sorted(p.name for p in app.parent.glob("*"))
    assert (app / "_internal" / "resources" / "README.txt").is_file()


def test_setup_makes_start_menu_and_desktop_shortcuts(installed):
    assert (installed.start_menu / "InstructIR Desktop.lnk").is_file()
    assert (installed.desktop / "InstructIR Desktop.lnk").is_file()


def test_setup_registers_the_project_type_and_open_with(installed):
    reg = installed.registry()
    assert reg["software\\classes\\.instructir"][""] == "InstructIR.Project"
    command = reg["software\\classes\\instructir.project\\shell\\open\\command"][""]
    assert command.lower().endswith('instructir-desktop.exe" "%1"'), command
    folder = "\\programs\\instructir\\" if installed.mode == "user" else "\\program files\\"
    assert folder in command.lower(), command
    assert "applications\\instructir-desktop.exe" in reg["software\\classes\\.jpg\\openwithprogids"]
    uninstall = reg[f"software\\microsoft\\windows\\currentversion\\uninstall\\{APP_ID.lower()}"]
    assert uninstall["displayname"] == "InstructIR Desktop"
    assert uninstall["displayversion"] == VERSION


def test_setup_runs_the_gimp_plugin_task(installed):
    calls = installed.calls()
    assert any(c.lower().endswith("instructir.exe gimp install") for c in calls), calls
    # The postinstall "launch the app" entry is skipped in a silent install.
    assert not any("instructir-desktop.exe" in c.lower() for c in calls), calls


def test_uninstaller_removes_everything_and_the_plugin(installed):
    wine, app = installed.wine, installed.app
    wine.sh(
        f"xvfb-run -a wine '{wine.win(str(app.relative_to(wine.host)))}\\unins000.exe'"
        f" /VERYSILENT /SUPPRESSMSGBOXES '/LOG={wine.win(installed.prefix + '-uninstall.log')}';"
        " wineserver -w",
        prefix=installed.prefix,
    )
    assert any(c.lower().endswith("instructir.exe gimp uninstall") for c in installed.calls())
    assert not app.exists(), sorted(str(p.relative_to(app)) for p in app.rglob("*"))
    assert not (installed.start_menu / "InstructIR Desktop.lnk").exists()
    assert not (installed.desktop / "InstructIR Desktop.lnk").exists()
    reg = installed.registry()
    assert "software\\classes\\instructir.project" not in reg
    assert "" not in reg.get("software\\classes\\.instructir", {})
    assert f"software\\microsoft\\windows\\currentversion\\uninstall\\{APP_ID.lower()}" not in reg
