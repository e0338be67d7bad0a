"""``instructir gimp install|uninstall``: every GIMP 3 plug-ins folder (Linux, Flatpak, Snap,
Windows, macOS), the executable bit, and where the plug-in finds the bridge."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from instructir_desktop import gimp_install
from instructir_desktop.bridge.info import read_bridge_info

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "gimp" / "instructir"


def gimp_dirs(home: Path) -> dict[str, Path]:
    return {
        "linux30": home / ".config" / "GIMP" / "3.0",
        "linux32": home / ".config" / "GIMP" / "3.2",
        "old": home / ".config" / "GIMP" / "2.10",
        "flatpak": home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0",
        "snap": home / "snap" / "gimp" / "current" / ".config" / "GIMP" / "3.0",
    }


def test_install_into_every_gimp3_folder_and_uninstall(tmp_path):
    home = tmp_path / "home"
    dirs = gimp_dirs(home)
    for d in dirs.values():
        d.mkdir(parents=True)
    (dirs["linux30"] / "plug-ins").mkdir()
    env = {"HOME": str(home)}
    installed = gimp_install.install(env=env, platform="linux")
    assert sorted(installed) == sorted(
        dirs[k] / "plug-ins" / "instructir" for k in ("linux30", "linux32", "flatpak", "snap")
    )
    assert not (dirs["old"] / "plug-ins").exists()
    info = read_bridge_info()
    assert info["token"] and info["command"] and info["port"] == 47841
    for folder in installed:
        entry = folder / "instructir.py"
        assert entry.read_bytes() == (PLUGIN_DIR / "instructir.py").read_bytes()
        for name in gimp_install.PLUGIN_FILES:
            assert (folder / name).read_bytes() == (PLUGIN_DIR / name).read_bytes()
        location = json.loads((folder / "bridge-location.json").read_text())
        assert location["token"] == info["token"] and location["command"] == info["command"]
        assert Path(location["config_file"]) == gimp_install.bridge_file().resolve()
        if os.name == "posix":
            assert entry.stat().st_mode & stat.S_IXUSR
            assert stat.S_IMODE((folder / "bridge-location.json").stat().st_mode) == 0o600
    again = gimp_install.install(env=env, platform="linux")  # reinstall replaces cleanly
    assert sorted(again) == sorted(installed)
    assert read_bridge_info()["token"] == info["token"]
    assert not [p for p in (dirs["linux30"] / "plug-ins").iterdir() if p.name.startswith(".")]
    removed = gimp_install.uninstall(env=env, platform="linux")
    assert sorted(removed) == sorted(installed)
    assert not any(p.exists() for p in installed)
    assert gimp_install.uninstall(env=env, platform="linux") == []


def test_install_windows_and_macos_locations(tmp_path):
    appdata = tmp_path / "Roaming"
    (appdata / "GIMP" / "3.0").mkdir(parents=True)
    got = gimp_install.install(
        env={"APPDATA": str(appdata), "HOME": str(tmp_path)}, platform="win32"
    )
    assert got == [appdata / "GIMP" / "3.0" / "plug-ins" / "instructir"]
    mac = tmp_path / "mac"
    (mac / "Library" / "Application Support" / "GIMP" / "3.2").mkdir(parents=True)
    got = gimp_install.install(env={"HOME": str(mac)}, platform="darwin")
    assert got == [
        mac / "Library" / "Application Support" / "GIMP" / "3.2" / "plug-ins" / "instructir"
    ]


def test_install_without_gimp3_explains(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "GIMP" / "2.10").mkdir(parents=True)
    with pytest.raises(gimp_install.GimpNotFoundError, match="Start GIMP 3 once"):
        gimp_install.install(env={"HOME": str(home)}, platform="linux")
    assert not (home / ".config" / "GIMP" / "3.0").exists()


def test_plugin_source_is_found():
    assert gimp_install.plugin_source() == PLUGIN_DIR.resolve()


def test_new_token_rotates_it_everywhere(tmp_path, monkeypatch, capsys):
    from instructir_desktop import cli

    home = tmp_path / "home"
    (home / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    env = {"HOME": str(home)}
    (folder,) = gimp_install.install(env=env, platform="linux")
    (folder / "last-instruction.json").write_text('{"instruction": "too dark"}')
    old = read_bridge_info()["token"]
    gimp_install.install(env=env, platform="linux")
    assert read_bridge_info()["token"] == old  # a plain reinstall keeps it
    gimp_install.install(env=env, platform="linux", new_token=True)
    new = read_bridge_info()["token"]
    assert new != old and len(new) >= 32
    assert json.loads((folder / "bridge-location.json").read_text())["token"] == new
    assert (folder / "last-instruction.json").is_file()  # kept across the update
    # The command line: `instructir gimp install --new-token`.
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert cli.main(["gimp", "install", "--new-token"]) == 0
    assert read_bridge_info()["token"] not in (old, new)
