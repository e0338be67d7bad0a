#!/usr/bin/env python3
"""InstructIR for GIMP 3: Filters → Enhance → InstructIR…

Type what is wrong with the photo; the InstructIR bridge (InstructIR Desktop or
``instructir serve``) restores the active layer, or the selection's bounds, and the result
comes back as a new layer "InstructIR: <instruction>" above it, in one undo step.

Non-interactive use (batch scripts)::

    proc = Gimp.get_pdb().lookup_procedure("python-fu-instructir")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    config.set_property("instruction", "remove the noise")
    config.set_property("strength", 1.0)
    proc.run(config)

Everything that does not touch GIMP lives in ``instructir_client.py`` (unit-tested).
"""

import os
import sys
from pathlib import Path

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import instructir_client as client  # noqa: E402

PLUGIN_DIR = Path(os.path.dirname(os.path.abspath(__file__)))


def _error(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def _progress(fraction, text=None):
    if text:
        Gimp.progress_set_text(text)
    Gimp.progress_update(max(0.0, min(1.0, fraction)))


def read_layer(image, drawable):
    """(x, y, w, h, bit depth, PNG bytes) of the drawable, or of the selection's bounds."""
    rect = client.intersect_rect(drawable.mask_intersect())
    if rect is None:
        raise client.BridgeError("The selection does not touch the active layer.")
    x, y, w, h = rect
    high = client.is_high_bit_depth(image.get_precision())
    depth = 16 if high else 8
    buffer = drawable.get_buffer()
    data = buffer.get(
        Gegl.Rectangle.new(x, y, w, h), 1.0, client.babl_format(high), Gegl.AbyssPolicy.CLAMP
    )
    png = client.encode_png(w, h, client.gegl_to_png_samples(bytes(data), depth), depth)
    return x, y, w, h, depth, png


def insert_result(image, drawable, rect, instruction, png):
    """Decode the bridge's PNG into a new layer above ``drawable``; returns the layer."""
    x, y, w, h = rect
    rw, rh, depth, channels, samples = client.decode_png(png)
    if (rw, rh) != (w, h):
        raise client.BridgeError(
            f"The InstructIR bridge returned {rw}x{rh} pixels for a {w}x{h} layer."
        )
    pixels = client.png_samples_to_gegl(samples, depth, channels, w * h)
    image.undo_group_start()
    try:
        layer = Gimp.Layer.new(
            image,
            client.layer_name(instruction),
            w,
            h,
            drawable.type_with_alpha(),
            100.0,
            Gimp.LayerMode.NORMAL,
        )
        image.insert_layer(layer, drawable.get_parent(), image.get_item_position(drawable))
        offsets = tuple(drawable.get_offsets())
        ox, oy = offsets[-2:]
        layer.set_offsets(ox + x, oy + y)
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, w, h), client.babl_format(depth == 16), pixels)
        buffer.flush()
        layer.update(0, 0, w, h)
        if not Gimp.Selection.is_empty(image):
            # Keep the selection's shape (and feathering) as the new layer's mask.
            layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    finally:
        image.undo_group_end()
    return layer


def apply(image, drawable, instruction, strength, interactive):
    """The whole filter: read, send, wait with progress, insert."""
    instruction = client.clean_instruction(instruction)
    if not isinstance(drawable, Gimp.Layer) or drawable.is_group():
        raise client.BridgeError(
            "InstructIR works on a pixel layer; select one in the Layers dialog "
            "(not a layer group, mask or channel)."
        )
    Gimp.progress_init(f"InstructIR: {instruction}")
    x, y, w, h, _, png = read_layer(image, drawable)
    info = client.find_bridge_info(PLUGIN_DIR)
    bridge = client.connect(info, on_wait=lambda msg: _progress(0.0, msg))
    result = client.run_job(
        bridge,
        png,
        instruction,
        strength,
        on_progress=lambda frac, msg: _progress(0.02 + 0.93 * frac, msg),
    )
    _progress(0.97, "InstructIR: adding the layer")
    layer = insert_result(image, drawable, (x, y, w, h), instruction, result)
    Gimp.progress_end()
    if interactive:
        Gimp.displays_flush()
    return layer


def show_dialog(procedure, config):
    """The instruction, strength and seven suggestion buttons; True when the user said OK."""
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GimpUi, Gtk

    GimpUi.init("instructir")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "InstructIR")
    dialog.get_spin_scale("strength", 100.0)  # a slider shown as 0-100 %, fill() uses it
    dialog.fill(["instruction", "strength"])
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
    box.set_border_width(12)
    box.pack_start(Gtk.Label(label="What is wrong with the photo? Suggestions:", xalign=0.0),
                   False, False, 0)  # fmt: skip
    flow = Gtk.FlowBox(selection_mode=Gtk.SelectionMode.NONE, max_children_per_line=4)
    for task in client.TASKS:
        prompt = client.TASK_PROMPTS[task]
        button = Gtk.Button(label=client.TASK_LABELS[task])
        button.set_tooltip_text(prompt)
        button.connect("clicked", lambda _b, p=prompt: config.set_property("instruction", p))
        flow.add(button)
    box.pack_start(flow, False, False, 0)
    understood = Gtk.Label(label="", xalign=0.0)
    understood.set_line_wrap(True)  # a warning ("cannot darken a photo") can be long
    understood.set_max_width_chars(60)
    box.pack_start(understood, False, False, 0)
    dialog.get_content_area().pack_end(box, False, False, 0)
    box.show_all()
    _follow_intent(config, understood)
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)


def _follow_intent(config, label):
    """Show what the model understands as the user types (only if a bridge is running)."""
    info = client.find_bridge_info(PLUGIN_DIR)
    if info is None:
        return
    bridge = client.BridgeClient(info.url, info.token, timeout=1.0)
    pending = {"source": 0}

    def update():
        pending["source"] = 0
        text = " ".join((config.get_property("instruction") or "").split())
        if not text:
            label.set_text("")
            return False
        try:
            result = bridge.intent(text, timeout=1.0)["results"][0]
        except (client.BridgeError, KeyError, IndexError, TypeError):
            label.set_text("")
            return False
        label.set_text(client.understood(result))
        return False

    def changed(*_args):
        if pending["source"]:
            GLib.source_remove(pending["source"])
        pending["source"] = GLib.timeout_add(400, update)

    config.connect("notify::instruction", changed)
    changed()


def run(procedure, run_mode, image, drawables, config, _data):
    """The procedure body (GIMP 3.0 and 3.2 calling convention)."""
    drawables = list(drawables or [])
    if len(drawables) != 1:
        return _error(procedure, "Select exactly one layer for InstructIR.")
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    if interactive and not show_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        apply(
            image,
            drawables[0],
            config.get_property("instruction"),
            config.get_property("strength"),
            interactive,
        )
    except client.JobCancelled:
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except client.BridgeError as exc:
        Gimp.progress_end()
        return _error(procedure, str(exc))
    except Exception as exc:  # noqa: BLE001 - a message beats a plug-in crash dialog
        Gimp.progress_end()
        return _error(procedure, f"InstructIR failed unexpectedly: {exc!r}")
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


class InstructIR(Gimp.PlugIn):
    """Registers Filters → Enhance → InstructIR…"""

    def do_query_procedures(self):
        return [client.PROCEDURE]

    def do_set_i18n(self, _name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("InstructIR…")
        procedure.add_menu_path("<Image>/Filters/Enhance")
        procedure.set_documentation(
            "Restore the layer from a plain-language instruction",
            "Describe what is wrong with the photo ('it is too dark', 'remove the noise'); "
            "InstructIR restores the active layer (or the selection's bounds) into a new "
            "layer above it. Needs the InstructIR bridge: InstructIR Desktop or "
            "`instructir serve`.",
            name,
        )
        procedure.set_attribution("InstructIR Desktop", "InstructIR Desktop (MIT)", "2025")
        procedure.add_string_argument(
            "instruction",
            "_Instruction",
            "What is wrong with the photo, e.g. 'remove the noise'",
            "",
            GObject.ParamFlags.READWRITE,
        )
        procedure.add_double_argument(
            "strength",
            "_Strength",
            "How much of the restoration to apply (0 to 1)",
            0.0,
            1.0,
            1.0,
            GObject.ParamFlags.READWRITE,
        )
        return procedure


if __name__ == "__main__":
    Gimp.main(InstructIR.__gtype__, sys.argv)
