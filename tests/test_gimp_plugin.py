"""The GIMP plug-in against a fake ``gi.repository`` (tests/fake_gi.py) and a real bridge on
127.0.0.1: the procedure and the dialog (the helpers: tests/test_gimp_client.py)."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_gi import (
    FakeConfig,
    FakeDialog,
    FakeImage,
    FakeLayer,
    FakeMessageDialog,
    FakePlugIn,
    FakeWidget,
    ReadsInstructions,
    fake_gi,
    run_timeouts,
)

from instructir_desktop.bridge.info import read_bridge_info, write_bridge_info
from instructir_desktop.bridge.server import BridgeServer
from instructir_desktop.core.errors import InstructIRError
from instructir_desktop.core.images import Photo, to_uint8, to_uint16
from instructir_desktop.core.packs import TASK_PROMPTS

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "gimp" / "instructir"


@pytest.fixture
def plugin(monkeypatch):
    """The plug-in's entry module, imported with the fake gi in sys.modules."""
    for name, mod in fake_gi().items():
        monkeypatch.setitem(sys.modules, name, mod)
    modules = ("instructir_bridge_info", "instructir_client", "instructir_dialog")
    for name in (*modules, "instructir_png", "instructir_words"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    path = list(sys.path)
    spec = importlib.util.spec_from_file_location(
        "instructir_gimp_entry", PLUGIN_DIR / "instructir.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = path
    monkeypatch.setattr(module, "PLUGIN_DIR", Path(os.environ["INSTRUCTIR_CONFIG_DIR"]).parent)
    FakeDialog.answer, FakeDialog.on_run = True, None
    FakeWidget.created = []
    FakeMessageDialog.answer, FakeMessageDialog.asked = "yes", []
    FakePlugIn.temp, FakePlugIn.running_label = {}, None
    yield module


@pytest.fixture
def client(plugin):
    return plugin.client


@pytest.fixture
def reader(tiny_restorer):
    return ReadsInstructions(tiny_restorer)


@pytest.fixture
def server(reader):
    srv = BridgeServer(lambda pack: reader)
    srv.start()
    yield srv
    srv.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_layer(image, w=36, h=28, seed=0, offsets=(0, 0), kind="rgb"):
    layer = FakeLayer(image, "Background", w, h, kind)
    rng = np.random.default_rng(seed)
    layer.pixels[..., :3] = rng.random((h, w, 3), dtype=np.float32)
    layer.pixels[..., 3] = 1.0
    layer.offsets = offsets
    image.layers.append(layer)
    return layer


def run(
    plugin,
    image,
    layer,
    instruction="remove the noise",
    strength=1.0,
    mode="noninteractive",
    **options,
):
    proc = plugin.InstructIR().do_create_procedure(plugin.client.PROCEDURE)
    values = {"on-top": False, "as-written": False, **options}
    config = FakeConfig(instruction=instruction, strength=strength, **values)
    return proc.run(proc, mode, image, [layer], config, None)


# ---------------------------------------------------------------- the procedure


def test_registration(plugin):
    p = plugin.InstructIR()
    assert p.do_query_procedures() == ["python-fu-instructir"]
    proc = p.do_create_procedure("python-fu-instructir")
    assert proc.menu_paths == ["<Image>/Filters/Enhance"]
    assert proc.info["label"] == "InstructIR…"
    assert proc.info["image_types"] == "RGB*, GRAY*"
    assert proc.arguments == {
        "instruction": ("string", ""),
        "strength": ("double", 0.0, 1.0, 1.0),
        "on-top": ("boolean", False),
        "as-written": ("boolean", False),
    }
    nicks = [v for k, v in proc.info.items() if k.startswith("nick:")]
    assert "Stre_ngth (%)" in nicks
    mnemonics = [n[n.index("_") + 1].lower() for n in nicks]
    # Unique, and none of GIMP's own dialog buttons (Help, Reset, Cancel, OK, Load, Save).
    assert len(set(mnemonics)) == len(mnemonics) and not set(mnemonics) & set("hrcols")


def test_eight_bit_layer_gets_a_new_layer_with_the_bridge_result(plugin, server, tiny_restorer):
    image = FakeImage()
    source = make_layer(image)
    status, error = run(plugin, image, source)
    assert (status, error) == ("success", None)
    assert [layer.name for layer in image.layers] == ["IR: remove the noise", "Background"]
    new = image.layers[0]
    assert new.size == source.size and new.offsets == (0, 0) and new.mask is None
    assert new.parasites["instructir-instruction"].data == b"remove the noise"
    assert image.undo_names == ["InstructIR: remove the noise"] and image.selected == [new]
    assert FakePlugIn.temp == {}  # the undo step's temporary procedure is gone again
    assert new.flushed and new.updates == [(0, 0, 36, 28)]
    want = to_uint8(
        tiny_restorer.restore(to_uint8(source.pixels) / np.float32(255), "remove the noise")
    )
    np.testing.assert_array_equal(to_uint8(new.pixels), want)
    # One undo group around the whole change, balanced.
    assert image.undo_groups == 1 and image.undo_depth == 0
    assert image.log == [("new-layer", 1), ("insert", 1)]
    calls = [c[0] for c in plugin.Gimp.calls]
    assert (
        calls[0] == "progress_init" and "progress_update" in calls and calls[-1] == "progress_end"
    )


def test_selection_bounds_and_offsets_sixteen_bit(plugin, server, tiny_restorer):
    image = FakeImage("GIMP_PRECISION_U16_LINEAR")
    source = make_layer(image, offsets=(3, 4), seed=2)
    image.selection = (10, 5, 20, 12)  # image coordinates
    status, _ = run(plugin, image, source, "it is too dark", 0.5)
    assert status == "success"
    new = image.layers[0]
    assert new.size == (20, 12) and new.offsets == (10, 5)
    assert new.mask.kind == "selection" and new.name == "IR: it is too dark"
    assert not new.edit_mask and image.get_selected_drawables() == [new]
    crop = to_uint16(source.pixels[1:13, 7:27]) / np.float32(65535)
    want = tiny_restorer.restore(crop, "it is too dark", strength=0.5)
    np.testing.assert_array_equal(to_uint16(new.pixels), to_uint16(want))


def test_selection_outside_the_layer(plugin, server):
    image = FakeImage()
    source = make_layer(image)
    image.selection = (100, 100, 5, 5)
    status, error = run(plugin, image, source)
    assert status == "execution-error" and "selection does not touch" in error
    assert len(image.layers) == 1


def test_empty_instruction_and_wrong_drawables(plugin, server):
    image = FakeImage()
    source = make_layer(image)
    status, error = run(plugin, image, source, "   ")
    assert status == "execution-error" and "Type what is wrong" in error
    proc = plugin.InstructIR().do_create_procedure("python-fu-instructir")
    config = FakeConfig(instruction="x", strength=1.0, **{"on-top": False, "as-written": False})
    status, error = proc.run(proc, "noninteractive", image, [], config, None)
    assert status == "execution-error" and "exactly one layer" in error
    status, error = proc.run(proc, "noninteractive", image, [object()], config, None)
    assert status == "execution-error" and "pixel layer" in error


def test_no_bridge_settings_says_how_to_install(plugin):
    image = FakeImage()
    status, error = run(plugin, image, make_layer(image))
    assert status == "execution-error" and "instructir gimp install" in error


def test_bridge_not_running_says_how_to_start(plugin, client):
    port = free_port()
    write_bridge_info({"token": "t" * 43, "port": port, "url": f"http://127.0.0.1:{port}"})
    image = FakeImage()
    status, error = run(plugin, image, make_layer(image))
    assert status == "execution-error"
    assert "is not running" in error and f"`instructir serve --port {port}`" in error
    assert "Errno" not in error and "/" not in error.replace("InstructIR Desktop", "")
    assert len(image.layers) == 1


def test_bridge_job_error_becomes_a_gimp_error(plugin, tiny_restorer):
    def broken(pack):
        raise InstructIRError("The model pack 'instructir-7d' is damaged.")

    srv = BridgeServer(broken)
    srv.start()
    try:
        image = FakeImage()
        status, error = run(plugin, image, make_layer(image))
        assert status == "execution-error" and "is damaged" in error
    finally:
        srv.stop()


def test_wrong_token(plugin, server):
    info = read_bridge_info()
    info["token"] = "x" * 43
    write_bridge_info(info)
    image = FakeImage()
    status, error = run(plugin, image, make_layer(image))
    assert status == "execution-error" and "not the InstructIR bridge" in error
    assert len(image.layers) == 1


# ---------------------------------------------------------------- as a photographer uses it


def labels():
    return [w.text for w in FakeWidget.created if type(w).__name__ == "Label"]


def buttons():
    return {w.text: w for w in FakeWidget.created if type(w).__name__ == "Button"}


def test_running_again_after_a_selection_uses_the_new_layer(plugin, server):
    image = FakeImage()
    source = make_layer(image)
    image.selection = (4, 4, 10, 10)
    assert run(plugin, image, source)[0] == "success"
    first = image.layers[0]
    (active,) = image.get_selected_drawables()
    assert active is first  # not its mask
    assert run(plugin, image, active, "it is too dark")[0] == "success"
    assert [layer.name for layer in image.layers][:2] == ["IR: it is too dark", first.name]
    # A layer mask picked in the Layers dialog runs on the layer it belongs to.
    first.edit_mask, image.selected = True, [first]
    (mask,) = image.get_selected_drawables()
    status, error = run(plugin, image, mask, "it is blurry")
    assert (status, error) == ("success", None) and image.layers[1].name == "IR: it is blurry"


def test_unclear_instruction_is_refused_unless_applied_as_written(plugin, server):
    image = FakeImage()
    source = make_layer(image)
    status, error = run(plugin, image, source, "make it look like a painting")
    assert status == "execution-error" and len(image.layers) == 1
    assert error.startswith("Nothing was changed: InstructIR is not sure what")
    assert "Apply as written" in error and "seven fixes" in error
    status, error = run(plugin, image, source, "make it darker")
    assert status == "execution-error" and "cannot darken" in error
    status, _ = run(plugin, image, source, "make it look like a painting", **{"as-written": True})
    assert status == "success" and image.layers[0].name == "IR: make it look like a…"


def test_result_under_visible_layers_is_reported_or_put_on_top(plugin, server):
    image = FakeImage()
    make_layer(image, seed=1)  # an earlier result on top
    lower = make_layer(image, seed=2)
    image.layers[0].name = "IR: earlier"
    assert run(plugin, image, lower)[0] == "success"
    assert [layer.name for layer in image.layers] == [
        "IR: earlier",
        "IR: remove the noise",
        "Background",
    ]
    messages = [c[1] for c in plugin.Gimp.calls if c[0] == "message"]
    assert len(messages) == 1 and "under 1 visible layer" in messages[0]
    plugin.Gimp.calls.clear()
    image.layers[0].visible = image.layers[1].visible = False
    assert run(plugin, image, lower)[0] == "success"
    assert not [c for c in plugin.Gimp.calls if c[0] == "message"]  # hidden layers hide nothing
    assert run(plugin, image, lower, **{"on-top": True})[0] == "success"
    assert image.layers[0].name == "IR: remove the noise"


def test_dialog_layout_and_bridge_state_retried_while_open(plugin, reader):
    glib = sys.modules["gi.repository.GLib"]
    port = free_port()
    write_bridge_info({"token": "s" * 43, "port": port, "url": f"http://127.0.0.1:{port}"})
    image = FakeImage()
    source = make_layer(image)
    seen = {}

    def user(dialog):
        top, fields, bottom = dialog.content.children
        assert fields == ("fields", ("instruction", "strength", "on-top", "as-written"))
        assert top.children[0].text == "What is wrong with the photo?"  # above the field
        seen["off"] = list(labels())
        srv = BridgeServer(lambda pack: reader, port=port)
        srv.start()
        seen["server"] = srv
        run_timeouts(glib)  # the dialog retries once a second
        seen["on"] = list(labels())
        return False

    FakeDialog.on_run = user
    try:
        assert run(plugin, image, source, "", mode="interactive")[0] == "cancel"
    finally:
        seen["server"].stop()
    off = next(t for t in seen["off"] if "bridge" in t.lower())
    assert off.startswith("The InstructIR bridge is not running") and f"--port {port}" in off
    assert "InstructIR bridge ready." in seen["on"]  # the model loads with the first photo
    assert not glib.timeouts  # nothing left polling after the dialog closed


def test_another_clients_pack_does_not_turn_the_dialog_off(plugin, reader, tiny_pack):
    import base64
    import json
    import shutil
    import urllib.request

    from instructir_desktop.core.images import encode_image
    from instructir_desktop.core.paths import data_dir

    shutil.copytree(tiny_pack, data_dir() / "packs" / "broken")  # installed, fails to load

    def get_restorer(pack):
        if pack == "broken":
            raise RuntimeError("the broken pack's weights do not load")
        return reader

    srv = BridgeServer(get_restorer)
    srv.start()

    def post(path, body):
        request = urllib.request.Request(
            srv.url + path,
            data=json.dumps(body).encode(),
            headers={"X-InstructIR-Token": srv.token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    glib = sys.modules["gi.repository.GLib"]
    image = FakeImage()
    source = make_layer(image)
    seen = []

    def user(dialog):
        run_timeouts(glib)
        seen.append(list(labels()))
        return False

    FakeDialog.on_run = user
    photo = np.zeros((8, 8, 3), np.float32)
    png = base64.b64encode(encode_image(Photo(photo, None, 8, None, None, "PNG"), "PNG"))
    job = {"image": png.decode(), "instruction": "remove the noise", "as_written": True}
    try:
        status, answer = post("/jobs", {**job, "pack": "not-installed"})
        assert status == 400 and "'not-installed' is not installed" in answer["error"]
        status, answer = post("/jobs", {**job, "pack": "broken"})
        assert status == 202
        deadline = time.monotonic() + 30
        while srv.job_status(answer["id"])["state"] != "failed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert run(plugin, image, source, "", mode="interactive")[0] == "cancel"
    finally:
        srv.stop()
    shown = [t for t in seen[-1] if "bridge" in t.lower()]
    assert shown == ["InstructIR bridge ready."], shown  # not "off" with the broken pack's error


def test_dialog_unclear_instruction_offers_the_fixes(plugin, server):
    glib = sys.modules["gi.repository.GLib"]
    image = FakeImage()
    source = make_layer(image)
    runs = []

    def user(dialog):
        runs.append(list(labels()))
        if len(runs) == 1:
            dialog.config.set_property("instruction", "make it look like a painting")
            run_timeouts(glib)
            return True  # OK on an unclear instruction: the dialog stays open
        if len(runs) == 2:
            buttons()["Noise"].click()  # no question: the text was unclear
            return True
        raise AssertionError("the dialog should have closed")

    FakeDialog.on_run = user
    status, _ = run(plugin, image, source, "", mode="interactive")
    assert status == "success" and len(runs) == 2
    assert any(t.startswith("Not sure what to fix (Haze / fog, 21%)") for t in runs[1])
    assert image.layers[0].name == "IR: Noise"
    assert (
        image.layers[0].parasites["instructir-instruction"].data
        == b"Remove the noise from this photo"
    )
    assert not FakeMessageDialog.asked


def test_dialog_as_written_and_darken(plugin, server):
    glib = sys.modules["gi.repository.GLib"]
    image = FakeImage()
    source = make_layer(image)
    seen = []

    def darken(dialog):
        dialog.config.set_property("instruction", "it is too bright")
        run_timeouts(glib)
        seen.append(list(labels()))
        return False

    FakeDialog.on_run = darken
    assert run(plugin, image, source, "", mode="interactive")[0] == "cancel"
    assert any(t.startswith("InstructIR cannot darken a photo") for t in seen[0])

    def confirm(dialog):
        dialog.config.set_property("instruction", "make it look like a painting")
        run_timeouts(glib)
        dialog.config.set_property("as-written", True)  # the user ticks "Apply as written"
        return True

    FakeDialog.on_run = confirm
    status, _ = run(plugin, image, source, "", mode="interactive")
    assert status == "success" and image.layers[0].name == "IR: make it look like a…"


def test_suggestion_asks_before_replacing_typed_text(plugin, server):
    glib = sys.modules["gi.repository.GLib"]
    image = FakeImage()
    source = make_layer(image)

    def user(dialog):
        dialog.config.set_property("instruction", "it is blurry")
        run_timeouts(glib)
        FakeMessageDialog.answer = "no"
        buttons()["Noise"].click()
        assert dialog.config.get_property("instruction") == "it is blurry"
        FakeMessageDialog.answer = "yes"
        buttons()["Too dark"].click()
        assert dialog.config.get_property("instruction") == TASK_PROMPTS["lowlight"]
        buttons()["Noise"].click()  # a suggestion replaces a suggestion without asking
        return False

    FakeDialog.on_run = user
    assert run(plugin, image, source, "", mode="interactive")[0] == "cancel"
    assert FakeMessageDialog.asked == [
        "Replace “it is blurry” with “Remove the noise from this photo”?",
        f"Replace “it is blurry” with “{TASK_PROMPTS['lowlight']}”?",
    ]


def test_reshow_after_a_failed_run_brings_back_what_was_typed(plugin, client):
    port = free_port()
    write_bridge_info({"token": "t" * 43, "port": port, "url": f"http://127.0.0.1:{port}"})
    image = FakeImage()
    source = make_layer(image)
    FakeDialog.on_run = lambda dialog: dialog.config.set_property("instruction", "new words")
    status, error = run(plugin, image, source, "old success", mode="interactive")
    assert status == "execution-error" and "is not running" in error
    seen = []
    FakeDialog.on_run = lambda dialog: seen.append(dialog.config.get_property("instruction"))
    FakeDialog.answer = False
    run(plugin, image, source, "old success", mode="interactive")  # GIMP's last good values
    assert seen == ["new words"]


class ChecksWords(ReadsInstructions):
    """Refuses text without words, as the real model does (EmptyInstructionError → 400)."""

    def intent(self, text):
        from instructir_desktop.core.phrasing import clean_instruction

        return super().intent(clean_instruction(text, words=True))


def test_dialog_shows_why_the_bridge_refuses_the_text(plugin, tiny_restorer):
    glib = sys.modules["gi.repository.GLib"]
    server = BridgeServer(lambda pack: ChecksWords(tiny_restorer))
    server.start()
    image = FakeImage()
    source = make_layer(image)
    runs = []

    def user(dialog):
        runs.append(list(labels()))
        if len(runs) == 1:
            dialog.config.set_property("instruction", "🙂🙂🙂")
            run_timeouts(glib)
            return True  # OK on text the bridge cannot read: the dialog stays open
        return False

    FakeDialog.on_run = user
    try:
        assert run(plugin, image, source, "", mode="interactive")[0] == "cancel"
    finally:
        server.stop()
    assert len(runs) == 2 and any("has no words" in t for t in runs[1])
    assert "InstructIR bridge ready." in runs[1] or any(
        t.startswith("InstructIR bridge ready") for t in runs[1]
    )
    assert image.layers == [source]


def test_a_result_that_cannot_be_inserted_leaves_the_image_as_it_was(plugin, server, monkeypatch):
    removed = []

    def remove_layer(image, layer):
        removed.append(layer)
        image.layers.remove(layer)

    def broken_parasite(layer, parasite):
        raise RuntimeError("parasite too large")

    monkeypatch.setattr(FakeImage, "remove_layer", remove_layer, raising=False)
    monkeypatch.setattr(FakeLayer, "attach_parasite", broken_parasite)
    image = FakeImage()
    source = make_layer(image)
    before = source.pixels.copy()
    status, error = run(plugin, image, source)
    assert status == "execution-error" and "parasite too large" in error
    assert image.layers == [source] and len(removed) == 1
    assert image.undo_depth == 0  # the undo group is closed
    assert np.array_equal(source.pixels, before)
