"""A fake ``gi.repository`` (Gimp, Gegl, GLib, GObject, GimpUi, Gtk) for the plug-in's unit
tests: just enough of GIMP 3's Python API, with layers that hold numpy pixels."""

from __future__ import annotations

import types
from types import SimpleNamespace

import numpy as np

from instructir_desktop.core.images import to_uint8, to_uint16


class FakeBuffer:
    def __init__(self, layer: FakeLayer) -> None:
        self.layer = layer

    def get(self, rect, scale, fmt, abyss):
        x, y, w, h = rect
        px = self.layer.pixels[y : y + h, x : x + w]
        assert scale == 1.0 and abyss == "clamp" and px.shape[:2] == (h, w)
        if fmt == "R'G'B'A u8":
            return to_uint8(px).tobytes()
        assert fmt == "R'G'B'A u16"
        return to_uint16(px).astype("=u2").tobytes()

    def set(self, rect, fmt, data):
        x, y, w, h = rect
        if fmt == "R'G'B'A u8":
            values = np.frombuffer(data, np.uint8).reshape(h, w, 4) / np.float32(255)
        else:
            assert fmt == "R'G'B'A u16"
            values = np.frombuffer(data, "=u2").reshape(h, w, 4) / np.float32(65535)
        self.layer.pixels[y : y + h, x : x + w] = values
        self.layer.writes += 1

    def flush(self):
        self.layer.flushed = True


class FakeLayer:
    def __init__(self, image, name, w, h, kind="rgba", opacity=100.0, mode="normal"):
        self.image, self.name, self.kind = image, name, kind
        self.pixels = np.zeros((h, w, 4), np.float32)
        self.offsets = (0, 0)
        self.mask = None
        self.edit_mask = False
        self.visible = True
        self.parasites = {}
        self.writes = 0
        self.flushed = False
        self.updates = []

    @staticmethod
    def from_mask(mask):
        return mask.layer

    def get_width(self):
        return self.size[0]

    def get_height(self):
        return self.size[1]

    def get_visible(self):
        return self.visible

    def set_edit_mask(self, edit):
        self.edit_mask = edit

    def attach_parasite(self, parasite):
        self.parasites[parasite.name] = parasite

    @classmethod
    def new(cls, image, name, w, h, kind, opacity, mode):
        layer = cls(image, name, w, h, kind, opacity, mode)
        image.log.append(("new-layer", image.undo_depth))
        return layer

    @property
    def size(self):
        return self.pixels.shape[1], self.pixels.shape[0]

    def get_name(self):
        return self.name

    def get_buffer(self):
        return FakeBuffer(self)

    def get_offsets(self):
        return (True, *self.offsets)

    def set_offsets(self, x, y):
        self.offsets = (x, y)

    def get_parent(self):
        return None

    def is_group(self):
        return False

    def type_with_alpha(self):
        return "graya" if self.kind.startswith("gray") else "rgba"

    def update(self, *rect):
        self.updates.append(rect)

    def mask_intersect(self):
        w, h = self.size
        sel = self.image.selection
        if sel is None:
            return (True, 0, 0, w, h)
        ox, oy = self.offsets
        x0, y0 = max(sel[0], ox), max(sel[1], oy)
        x1, y1 = min(sel[0] + sel[2], ox + w), min(sel[1] + sel[3], oy + h)
        if x1 <= x0 or y1 <= y0:
            return (False, 0, 0, 0, 0)
        return (True, x0 - ox, y0 - oy, x1 - x0, y1 - y0)

    def create_mask(self, kind):
        return FakeLayerMask(self, kind)

    def add_mask(self, mask):
        self.mask = mask
        self.edit_mask = True  # as in GIMP: a new mask is the layer's active drawable


class FakeLayerMask:
    def __init__(self, layer, kind) -> None:
        self.layer, self.kind = layer, kind


class FakeParasite:
    def __init__(self, name, flags, data) -> None:
        self.name, self.flags, self.data = name, flags, bytes(data)

    @classmethod
    def new(cls, name, flags, data):
        return cls(name, flags, data)


class FakeImage:
    def __init__(self, precision="GIMP_PRECISION_U8_NON_LINEAR") -> None:
        self.precision = SimpleNamespace(value_name=precision)
        self.layers: list[FakeLayer] = []
        self.selection = None
        self.undo_depth = 0
        self.undo_groups = 0
        self.undo_names: list = []
        self.selected: list = []
        self.log: list = []

    def get_layers(self):
        return list(self.layers)

    def set_selected_layers(self, layers):
        self.selected = list(layers)

    def get_selected_drawables(self):
        """What GIMP hands the next run: a layer's mask while the mask is being edited."""
        return [layer.mask if layer.edit_mask else layer for layer in self.selected]

    def get_precision(self):
        return self.precision

    def insert_layer(self, layer, parent, position):
        self.layers.insert(position, layer)
        self.log.append(("insert", self.undo_depth))

    def get_item_position(self, layer):
        return self.layers.index(layer)

    def undo_group_start(self):
        self.undo_depth += 1
        self.undo_groups += 1
        # GIMP names a plug-in's undo group after the running procedure's label.
        self.undo_names.append(FakePlugIn.running_label or "InstructIR")

    def undo_group_end(self):
        self.undo_depth -= 1


class FakePlugIn:
    """Gimp.PlugIn with temporary procedures, run through a fake PDB."""

    running_label = None
    temp: dict = {}

    def add_temp_procedure(self, procedure):
        FakePlugIn.temp[procedure.name] = procedure

    def remove_temp_procedure(self, name):
        del FakePlugIn.temp[name]


class FakePDB:
    def lookup_procedure(self, name):
        procedure = FakePlugIn.temp[name]
        return SimpleNamespace(
            create_config=lambda: FakeConfig(), run=lambda c: _run_temp(procedure, c)
        )


def _run_temp(procedure, config):
    FakePlugIn.running_label = procedure.info.get("label")
    try:
        return procedure.run(procedure, config, None)
    finally:
        FakePlugIn.running_label = None


class FakeProcedure:
    def __init__(self, plugin, name, kind, run, data) -> None:
        self.plugin, self.name, self.run = plugin, name, run
        self.menu_paths, self.arguments, self.info = [], {}, {}

    def get_plug_in(self):
        return self.plugin

    def set_image_types(self, types_):
        self.info["image_types"] = types_

    def set_sensitivity_mask(self, mask):
        self.info["sensitivity"] = mask

    def set_menu_label(self, label):
        self.info["label"] = label

    def add_menu_path(self, path):
        self.menu_paths.append(path)

    def set_documentation(self, *doc):
        self.info["doc"] = doc

    def set_attribution(self, *who):
        self.info["attribution"] = who

    def add_string_argument(self, name, nick, blurb, default, flags):
        self.arguments[name] = ("string", default)
        self.info[f"nick:{name}"] = nick

    def add_double_argument(self, name, nick, blurb, lo, hi, default, flags):
        self.arguments[name] = ("double", lo, hi, default)
        self.info[f"nick:{name}"] = nick

    def add_boolean_argument(self, name, nick, blurb, default, flags):
        self.arguments[name] = ("boolean", default)
        self.info[f"nick:{name}"] = nick

    def new_return_values(self, status, error):
        return status, error.message


class FakeConfig:
    def __init__(self, **values) -> None:
        self.values = values
        self.handlers: dict[str, list] = {}

    def get_property(self, name):
        return self.values[name]

    def set_property(self, name, value):
        self.values[name] = value
        for cb in self.handlers.get(f"notify::{name}", []):
            cb(self, None)

    def connect(self, signal, cb):
        self.handlers.setdefault(signal, []).append(cb)
        return (signal, cb)

    def disconnect(self, handler):
        signal, cb = handler
        self.handlers[signal].remove(cb)


class FakeWidget:
    created: list[FakeWidget] = []

    def __init__(self, *args, **kwargs) -> None:
        self.kwargs, self.children, self.handlers = kwargs, [], {}
        self.text = kwargs.get("label", "")
        FakeWidget.created.append(self)

    def pack_start(self, child, *args):
        self.children.append(child)

    pack_end = add = pack_start

    def reorder_child(self, child, position):
        self.children.remove(child)
        self.children.insert(position, child)

    def connect(self, signal, cb):
        self.handlers[signal] = cb

    def click(self):
        self.handlers["clicked"](self)

    def set_text(self, text):
        self.text = text

    def __getattr__(self, name):
        return lambda *a, **k: None


class FakeMessageDialog(FakeWidget):
    answer = "yes"
    asked: list = []

    def run(self):
        FakeMessageDialog.asked.append(self.kwargs["text"])
        return FakeMessageDialog.answer


class FakeDialog:
    answer = True
    on_run = None

    def __init__(self, procedure, config, title) -> None:
        self.config, self.content = config, FakeWidget()

    @classmethod
    def new(cls, procedure, config, title):
        return cls(procedure, config, title)

    def get_spin_scale(self, name, factor):
        assert (name, factor) == ("strength", 100.0)

    def fill(self, names):
        assert names == ["instruction", "strength", "on-top", "as-written"]
        self.content.children.append(("fields", tuple(names)))

    def get_content_area(self):
        return self.content

    def run(self):
        if FakeDialog.on_run:
            answer = FakeDialog.on_run(self)
            if answer is not None:
                return answer
        return FakeDialog.answer

    def destroy(self):
        pass


class GLibError(Exception):
    def __init__(self, message=None) -> None:
        super().__init__(message)
        self.message = message


def run_timeouts(glib, rounds: int = 5) -> None:
    """Fire the pending GLib timeouts (and the ones they add), as GTK's main loop would."""
    for _ in range(rounds):
        pending = list(glib.timeouts.items())
        if not pending:
            return
        for source, (_ms, cb) in pending:
            if glib.timeouts.pop(source, None) is not None and cb():
                glib.timeouts[source] = (_ms, cb)


def fake_gi() -> dict[str, types.ModuleType]:
    gi = types.ModuleType("gi")
    gi.require_version = lambda name, version: None
    repo = types.ModuleType("gi.repository")
    gimp = types.ModuleType("gi.repository.Gimp")
    gimp.calls = []
    gimp.PlugIn = FakePlugIn
    gimp.LayerMask = FakeLayerMask
    gimp.Parasite = FakeParasite
    gimp.PARASITE_PERSISTENT, gimp.PARASITE_UNDOABLE = 1, 2
    gimp.Procedure = SimpleNamespace(new=FakeProcedure)
    gimp.get_pdb = FakePDB
    gimp.main = lambda *a: gimp.calls.append(("main", a))
    gimp.PDBProcType = SimpleNamespace(PLUGIN="plugin", TEMPORARY="temporary")
    gimp.PDBStatusType = SimpleNamespace(
        SUCCESS="success", CANCEL="cancel", EXECUTION_ERROR="execution-error"
    )
    gimp.RunMode = SimpleNamespace(INTERACTIVE="interactive", NONINTERACTIVE="noninteractive")
    gimp.ProcedureSensitivityMask = SimpleNamespace(DRAWABLE="drawable")
    gimp.LayerMode = SimpleNamespace(NORMAL="normal")
    gimp.AddMaskType = SimpleNamespace(SELECTION="selection")
    gimp.ImageProcedure = SimpleNamespace(new=FakeProcedure)
    gimp.Layer = FakeLayer
    gimp.Selection = SimpleNamespace(is_empty=lambda image: image.selection is None)
    for name in ("progress_init", "progress_update", "progress_set_text", "progress_end",
                 "displays_flush", "message"):  # fmt: skip
        setattr(gimp, name, lambda *a, _n=name: gimp.calls.append((_n, *a)))
    gegl = types.ModuleType("gi.repository.Gegl")
    gegl.Rectangle = SimpleNamespace(new=lambda x, y, w, h: (x, y, w, h))
    gegl.AbyssPolicy = SimpleNamespace(CLAMP="clamp")
    glib = types.ModuleType("gi.repository.GLib")
    glib.Error = GLibError
    glib.timeouts = {}

    def timeout_add(ms, cb):
        source = len(glib.timeouts) + 1 + max(glib.timeouts, default=0)
        glib.timeouts[source] = (ms, cb)
        return source

    glib.timeout_add = timeout_add
    glib.source_remove = lambda source: glib.timeouts.pop(source)
    gobject = types.ModuleType("gi.repository.GObject")
    gobject.ParamFlags = SimpleNamespace(READWRITE=3)
    gimpui = types.ModuleType("gi.repository.GimpUi")
    gimpui.init = lambda name: None
    gimpui.ProcedureDialog = FakeDialog
    gtk = types.ModuleType("gi.repository.Gtk")
    for name in ("Box", "Label", "FlowBox", "Button"):
        setattr(gtk, name, type(name, (FakeWidget,), {}))
    gtk.MessageDialog = FakeMessageDialog
    gtk.Orientation = SimpleNamespace(VERTICAL="v")
    gtk.SelectionMode = SimpleNamespace(NONE="none")
    gtk.MessageType = SimpleNamespace(QUESTION="question")
    gtk.ButtonsType = SimpleNamespace(YES_NO="yes-no")
    gtk.ResponseType = SimpleNamespace(YES="yes", NO="no")
    mods = {"Gimp": gimp, "Gegl": gegl, "GLib": glib, "GObject": gobject, "GimpUi": gimpui,
            "Gtk": gtk}  # fmt: skip
    for name, mod in mods.items():
        setattr(repo, name, mod)
    gi.repository = repo
    return {"gi": gi, "gi.repository": repo, **{f"gi.repository.{k}": v for k, v in mods.items()}}


class ReadsInstructions:
    """The tiny restorer with a fixed instruction head. The tiny pack's head is unsure of every
    instruction; the GIMP tests need clear ones, an unclear one and a request to darken, read
    the way the real model reads them."""

    CLEAR = {
        "remove the noise": "denoise",
        "it is too dark": "lowlight",
        "it is blurry": "deblur",
    }

    def __init__(self, inner) -> None:
        self.inner = inner
        self.pack_id = inner.pack_id
        self.manifest = getattr(inner, "manifest", None)

    def describe(self):
        return self.inner.describe()

    def intent(self, text):
        from instructir_desktop.core.packs import TASK_PROMPTS
        from instructir_desktop.core.phrasing import TOO_BRIGHT_NOTE, Intent, asks_to_darken

        text = " ".join(text.split())
        prompts = {p.lower(): t for t, p in TASK_PROMPTS.items()}
        task = self.CLEAR.get(text.lower()) or prompts.get(text.lower())
        if asks_to_darken(text):
            return Intent(text, "lowlight", 0.97, {"lowlight": 0.97}, TOO_BRIGHT_NOTE)
        if task:
            return Intent(text, task, 0.95, {task: 0.95})
        return Intent(text, "dehaze", 0.21, {"dehaze": 0.21})  # "make it look like a painting"

    def plan(self, text):
        return [self.intent(text)]

    def intent_row(self, text):
        return self.intent(text).to_dict()

    def restore(self, image, instruction, **kwargs):
        return self.inner.restore(image, instruction, **kwargs)
