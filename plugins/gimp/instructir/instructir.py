#!/usr/bin/env python3
"""InstructIR for GIMP 3: Filters → Enhance → InstructIR…

Type what is wrong with the photo; the InstructIR bridge (InstructIR Desktop or
``instructir serve``) restores the active layer, or the selection's bounds, and the result
comes back as a new layer "IR: <instruction>" above it (the full instruction is kept in the
layer's "instructir-instruction" parasite), in one undo step "InstructIR: <instruction>". An
instruction the bridge is not sure about is applied only when "as-written" is set.

Non-interactive use (batch scripts)::

    proc = Gimp.get_pdb().lookup_procedure("python-fu-instructir")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    config.set_property("instruction", "remove the noise")
    config.set_property("strength", 1.0)
    proc.run(config)

Everything that does not touch GIMP lives in ``instructir_client.py`` (unit-tested); the
dialog lives in ``instructir_dialog.py``.
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
import instructir_dialog  # noqa: E402

PLUGIN_DIR = Path(os.path.dirname(os.path.abspath(__file__)))
STEP_PROCEDURE = "python-fu-instructir-step"
UNNAMED_UNDO = "InstructIR: the undo step keeps GIMP's default name"


def _error(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def _progress(fraction, text=None):
    if text:
        Gimp.progress_set_text(text)
    Gimp.progress_update(max(0.0, min(1.0, fraction)))


def pixel_layer(drawable):
    """The layer to restore: the drawable, or the layer a selected layer mask belongs to."""
    if isinstance(drawable, Gimp.LayerMask):
        drawable = Gimp.Layer.from_mask(drawable)
    if not isinstance(drawable, Gimp.Layer) or drawable.is_group():
        raise client.BridgeError(
            "InstructIR works on a pixel layer; select one in the Layers dialog "
            "(not a layer group or channel)."
        )
    return drawable


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


def insert_result(image, drawable, rect, instruction, png, on_top=False):
    """Decode the bridge's PNG into a new layer above ``drawable`` (or on top of the image);
    the new layer, not its mask, is left active. Returns the layer."""
    x, y, w, h = rect
    rw, rh, depth, channels, samples = client.decode_png(png)
    if (rw, rh) != (w, h):
        raise client.BridgeError(
            f"The InstructIR bridge returned {rw}x{rh} pixels for a {w}x{h} layer."
        )
    pixels = client.png_samples_to_gegl(samples, depth, channels, w * h)
    image.undo_group_start()
    layer, inserted = None, False
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
        if on_top:
            image.insert_layer(layer, None, 0)
        else:
            image.insert_layer(layer, drawable.get_parent(), image.get_item_position(drawable))
        inserted = True
        flags = Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE
        layer.attach_parasite(Gimp.Parasite.new(client.PARASITE, flags, instruction.encode()))
        offsets = tuple(drawable.get_offsets())
        ox, oy = offsets[-2:]
        layer.set_offsets(ox + x, oy + y)
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, w, h), client.babl_format(depth == 16), pixels)
        buffer.flush()
        layer.update(0, 0, w, h)
        if not Gimp.Selection.is_empty(image):
            # Keep the selection's shape (and feathering) as the new layer's mask, but leave
            # the layer active: with the mask active the next run would get the mask.
            layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
            layer.set_edit_mask(False)
        image.set_selected_layers([layer])
    except Exception:
        if inserted:
            _remove_half_made(image, layer)
        raise
    finally:
        image.undo_group_end()
    return layer


def _remove_half_made(image, layer):
    """Take out a result layer that could not be finished, so the image is as it was."""
    try:
        image.remove_layer(layer)
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        print(f"InstructIR: could not remove the unfinished layer ({exc})", file=sys.stderr)


def covering_layers(image, layer):
    """Visible layers above ``layer`` in its stack that overlap it (they hide the result)."""
    parent = layer.get_parent()
    stack = list(parent.get_children() if parent is not None else image.get_layers())
    index = stack.index(layer)
    x0, y0 = tuple(layer.get_offsets())[-2:]
    x1, y1 = x0 + layer.get_width(), y0 + layer.get_height()
    hiding = []
    for other in stack[:index]:
        if not other.get_visible():
            continue
        ox, oy = tuple(other.get_offsets())[-2:]
        if ox < x1 and oy < y1 and ox + other.get_width() > x0 and oy + other.get_height() > y0:
            hiding.append(other)
    return hiding


def named_undo_step(plug_in, instruction, work):
    """Run ``work()`` inside a temporary procedure labelled "InstructIR: <instruction>": GIMP
    names a plug-in's undo group after the running procedure's label. Falls back to running
    it directly (undo step "InstructIR") when the temporary procedure cannot be used."""
    if plug_in is None:
        return work()
    outcome = {}

    def step(procedure, config, _data):
        try:
            outcome["value"] = work()
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller below
            outcome["error"] = exc
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    try:
        temp = Gimp.Procedure.new(plug_in, STEP_PROCEDURE, Gimp.PDBProcType.TEMPORARY, step, None)
        temp.set_menu_label(client.undo_name(instruction))
        plug_in.add_temp_procedure(temp)
    except Exception as exc:  # noqa: BLE001 - a plain undo name beats no result
        print(f"{UNNAMED_UNDO} ({exc})", file=sys.stderr)
        return work()
    try:
        pdb_proc = Gimp.get_pdb().lookup_procedure(STEP_PROCEDURE)
        pdb_proc.run(pdb_proc.create_config())
    finally:
        plug_in.remove_temp_procedure(STEP_PROCEDURE)
    if "error" in outcome:
        raise outcome["error"]
    if "value" not in outcome:
        print(UNNAMED_UNDO, file=sys.stderr)
        return work()
    return outcome["value"]


def apply(
    image,
    drawable,
    instruction,
    strength,
    interactive,
    as_written=False,
    on_top=False,
    plug_in=None,
):
    """The whole filter: read, send, wait with progress, insert."""
    instruction = client.clean_instruction(instruction)
    drawable = pixel_layer(drawable)
    Gimp.progress_init(f"InstructIR: {instruction}")
    x, y, w, h, _, png = read_layer(image, drawable)
    info = client.find_bridge_info(PLUGIN_DIR)
    bridge = client.connect(info, on_wait=lambda msg: _progress(0.0, msg))
    result = client.run_job(
        bridge,
        png,
        instruction,
        strength,
        as_written=as_written,
        on_progress=lambda frac, msg: _progress(0.02 + 0.93 * frac, msg),
    )
    _progress(0.97, "InstructIR: adding the layer")
    layer = named_undo_step(
        plug_in,
        instruction,
        lambda: insert_result(image, drawable, (x, y, w, h), instruction, result, on_top),
    )
    Gimp.progress_end()
    hiding = covering_layers(image, layer)
    if hiding:
        Gimp.message(
            f"InstructIR: the result, layer “{layer.get_name()}”, is under {len(hiding)} "
            "visible layer(s), so the image may look unchanged. Move it up in the Layers "
            "dialog, or tick “Put the result on top” next time."
        )
    if interactive:
        Gimp.displays_flush()
    return layer


def run(procedure, run_mode, image, drawables, config, _data):
    """The procedure body (GIMP 3.0 and 3.2 calling convention)."""
    drawables = list(drawables or [])
    if len(drawables) != 1:
        return _error(procedure, "Select exactly one layer for InstructIR.")
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    if interactive:
        pixels = lambda: read_layer(image, pixel_layer(drawables[0]))[5]  # noqa: E731
        if not instructir_dialog.show_dialog(procedure, config, PLUGIN_DIR, pixels):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        apply(
            image,
            drawables[0],
            config.get_property("instruction"),
            config.get_property("strength"),
            interactive,
            as_written=bool(config.get_property("as-written")),
            on_top=bool(config.get_property("on-top")),
            plug_in=procedure.get_plug_in(),
        )
    except client.JobCancelled:
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except client.BridgeError as exc:
        Gimp.progress_end()
        return _error(procedure, str(exc))
    except Exception as exc:  # noqa: BLE001 - a message beats a plug-in crash dialog
        Gimp.progress_end()
        return _error(procedure, f"InstructIR failed unexpectedly: {exc}")
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
        # Mnemonics: GIMP's own buttons take H, R, C, O, L and S.
        procedure.add_string_argument(
            "instruction",
            "_Instruction",
            "What is wrong with the photo, e.g. 'remove the noise'",
            "",
            GObject.ParamFlags.READWRITE,
        )
        procedure.add_double_argument(
            "strength",
            "Stre_ngth (%)",
            "How much of the restoration to apply (0 to 1; the dialog shows 0-100 %)",
            0.0,
            1.0,
            1.0,
            GObject.ParamFlags.READWRITE,
        )
        procedure.add_boolean_argument(
            "on-top",
            "Put the result on to_p",
            "Insert the new layer at the top of the image instead of above the active layer",
            False,
            GObject.ParamFlags.READWRITE,
        )
        procedure.add_boolean_argument(
            "as-written",
            "Apply as _written",
            "Apply the instruction even when InstructIR is not sure what it asks for",
            False,
            GObject.ParamFlags.READWRITE,
        )
        return procedure


if __name__ == "__main__":
    Gimp.main(InstructIR.__gtype__, sys.argv)
