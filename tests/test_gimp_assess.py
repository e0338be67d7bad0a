"""The GIMP dialog's first row of buttons: what the active layer itself suggests fixing, asked
from the bridge's POST /assess (fake gi, real bridge)."""

from __future__ import annotations

import sys

import numpy as np
from fake_gi import FakeDialog, FakeImage, FakeMessageDialog, run_timeouts
from PIL import Image
from test_gimp_plugin import buttons, labels, make_layer, plugin, reader, run, server  # noqa: F401

from instructir_desktop.core.packs import TASK_PROMPTS
from instructir_desktop.core.resources import resource_path


def sample_layer(image, damaged: bool):
    """A layer holding the sample photo at a third of its size, or a dark grainy copy."""
    with Image.open(resource_path("sample", "sample.jpg")) as im:
        a = np.asarray(im.convert("RGB").reduce(3), np.float32) / 255
    if damaged:
        rng = np.random.default_rng(0)
        a = np.clip(a**1.6 * 0.12 + rng.normal(0, 20 / 255, a.shape), 0, 1)
    a = np.round(a * 255) / 255
    h, w = a.shape[:2]
    layer = make_layer(image, w=w, h=h)
    layer.pixels[..., :3] = a
    return layer


def test_dialog_offers_the_layers_own_fixes_first(plugin, server):  # noqa: F811
    glib = sys.modules["gi.repository.GLib"]
    client = plugin.client
    image = FakeImage()
    source = sample_layer(image, damaged=True)
    seen = {}

    def user(dialog):
        top = dialog.content.children[0]
        assert top.children[0].text == "What is wrong with the photo?"
        row = top.children[1]  # the layer's own suggestions, above the seven fixes
        assert row.children[0].text == "Looking at the layer…"
        run_timeouts(glib)
        seen["text"] = row.children[0].text
        seen["row"] = [b.text for b in row.children[1].children]
        buttons()[f"1. {client.TASK_LABELS['lowlight']}"].click()
        return True

    FakeDialog.on_run = user
    status, _ = run(plugin, image, source, "", mode="interactive")
    assert status == "success"
    assert seen["text"].startswith("This layer: This photo looks too dark (")
    assert seen["row"][:2] == [
        f"1. {client.TASK_LABELS['lowlight']}",
        f"2. {client.TASK_LABELS['denoise']}",
    ]
    assert image.layers[0].name == f"IR: {client.TASK_LABELS['lowlight']}"
    instruction = image.layers[0].parasites["instructir-instruction"].data.decode()
    assert instruction == TASK_PROMPTS["lowlight"]
    assert not FakeMessageDialog.asked  # an empty field is filled without asking
    assert not glib.timeouts


def test_dialog_says_when_the_layer_needs_nothing(plugin, server):  # noqa: F811
    glib = sys.modules["gi.repository.GLib"]
    image = FakeImage()
    source = sample_layer(image, damaged=False)
    seen = {}

    def user(dialog):
        run_timeouts(glib)
        row = dialog.content.children[0].children[1]
        seen["text"], seen["row"] = row.children[0].text, row.children[1].children
        return False

    FakeDialog.on_run = user
    assert run(plugin, image, source, "", mode="interactive")[0] == "cancel"
    assert seen == {"text": "Nothing obvious to fix.", "row": []}
    assert "Nothing obvious to fix." in labels()
