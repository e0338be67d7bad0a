"""Settings: declared once, validated on load and on set, persisted; recent files."""

from __future__ import annotations

import pytest

from instructir_desktop.app.settings import SETTINGS, Settings, settings_file


def test_settings_are_declared_validated_and_persisted(qapp):
    settings = Settings()
    assert settings.theme == "dark" and settings.bridge_enabled is True
    settings.set("preview_edge", 900)
    settings.set("bridge_enabled", False)
    with pytest.raises(ValueError):
        settings.set("theme", "purple")
    with pytest.raises(ValueError):
        settings.set("min_confidence", 2.0)
    with pytest.raises(KeyError):
        settings.set("nope", 1)
    settings.sync()
    again = Settings()
    assert again.preview_edge == 900 and again.bridge_enabled is False
    assert all(s.description for s in SETTINGS.values())


def test_bad_values_in_the_file_fall_back_to_defaults(qapp):
    path = settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[General]\ntheme=purple\npreview_edge=abc\ntile=-5\n")
    settings = Settings()
    assert settings.theme == "dark" and settings.preview_edge == 1280 and settings.tile == 0
    assert len(settings.problems) == 3


def test_recent_files_are_capped_and_deduplicated(qapp, tmp_path):
    settings = Settings()
    for i in range(15):
        settings.add_recent(tmp_path / f"{i}.jpg")
    settings.add_recent(tmp_path / "3.jpg")
    recent = settings.recent_files
    assert len(recent) == 10 and recent[0].endswith("3.jpg") and len(set(recent)) == 10
