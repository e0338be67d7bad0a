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
        self.writes = 0
        self.flushed = False
        self.updates = []

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
        return ("mask", kind)

    def add_mask(self, mask):
        self.mask = mask


class FakeImage:
    def __init__(self, precision="GIMP_PRECISION_U8_NON_LINEAR") -> None:
        self.precision = SimpleNamespace(value_name=precision)
        self.layers: list[FakeLayer] = []
        self.selection = None
        self.undo_depth = 0
        self.undo_groups = 0
        self.log: list = []

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

    def undo_group_end(self):
        self.undo_depth -= 1


class FakeProcedure:
    def __init__(self, plugin, name, kind, run, data) -> None:
        self.name, self.run = name, run
        self.menu_paths, self.arguments, self.info = [], {}, {}

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

    def add_double_argument(self, name, nick, blurb, lo, hi, default, flags):
        self.arguments[name] = ("double", lo, hi, default)

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


class FakeWidget:
    created: list[FakeWidget] = []

    def __init__(self, *args, **kwargs) -> None:
        self.kwargs, self.children, self.handlers = kwargs, [], {}
        self.text = kwargs.get("label", "")
        FakeWidget.created.append(self)

    def pack_start(self, child, *args):
        self.children.append(child)

    pack_end = add = pack_start

    def connect(self, signal, cb):
        self.handlers[signal] = cb

    def click(self):
        self.handlers["clicked"](self)

    def set_text(self, text):
        self.text = text

    def __getattr__(self, name):
        return lambda *a, **k: None


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
        assert names == ["instruction", "strength"]

    def get_content_area(self):
        return self.content

    def run(self):
        if FakeDialog.on_run:
            FakeDialog.on_run(self)
        return FakeDialog.answer

    def destroy(self):
        pass


class GLibError(Exception):
    def __init__(self, message=None) -> None:
        super().__init__(message)
        self.message = message


def fake_gi() -> dict[str, types.ModuleType]:
    gi = types.ModuleType("gi")
    gi.require_version = lambda name, version: None
    repo = types.ModuleType("gi.repository")
    gimp = types.ModuleType("gi.repository.Gimp")
    gimp.calls = []
    gimp.PlugIn = type("PlugIn", (), {})
    gimp.main = lambda *a: gimp.calls.append(("main", a))
    gimp.PDBProcType = SimpleNamespace(PLUGIN="plugin")
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
    glib.timeouts = []
    glib.timeout_add = lambda ms, cb: glib.timeouts.append(cb) or len(glib.timeouts)
    glib.source_remove = lambda source: None
    gobject = types.ModuleType("gi.repository.GObject")
    gobject.ParamFlags = SimpleNamespace(READWRITE=3)
    gimpui = types.ModuleType("gi.repository.GimpUi")
    gimpui.init = lambda name: None
    gimpui.ProcedureDialog = FakeDialog
    gtk = types.ModuleType("gi.repository.Gtk")
    for name in ("Box", "Label", "FlowBox", "Button"):
        setattr(gtk, name, type(name, (FakeWidget,), {}))
    gtk.Orientation = SimpleNamespace(VERTICAL="v")
    gtk.SelectionMode = SimpleNamespace(NONE="none")
    mods = {"Gimp": gimp, "Gegl": gegl, "GLib": glib, "GObject": gobject, "GimpUi": gimpui,
            "Gtk": gtk}  # fmt: skip
    for name, mod in mods.items():
        setattr(repo, name, mod)
    gi.repository = repo
    return {"gi": gi, "gi.repository": repo, **{f"gi.repository.{k}": v for k, v in mods.items()}}
