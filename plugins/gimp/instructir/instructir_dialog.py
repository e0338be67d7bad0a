"""The InstructIR dialog: the question and the seven fixes above the instruction, the bridge's
state (connecting…, ready, not running) retried while the dialog is open, and what the model
understands as the user types, with the same confidence gate as the app and the CLI.

OK with an instruction the bridge is not sure about keeps the dialog open until the user picks
a fix, rewords it or ticks "Apply as written".
"""

import json

import gi
import instructir_client as client
from gi.repository import GLib

LAST_FILE = "last-instruction.json"
POLL_MS = 1000  # bridge state retries while it is not ready
TYPING_MS = 400  # pause after typing before asking what the model understands


def show_dialog(procedure, config, plugin_dir, layer_png=None):
    """The dialog; True when the user said OK to an instruction that can be sent.

    ``layer_png()`` gives the active layer's pixels as PNG: the bridge assesses them and the
    fixes they suggest become the first row of buttons."""
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GimpUi, Gtk

    GimpUi.init("instructir")
    last = load_last(plugin_dir)
    if last and last != config.get_property("instruction"):
        # Re-show after a failed run: the text the user typed, not GIMP's last success.
        config.set_property("instruction", last)
    config.set_property("as-written", False)  # asked again for every photo
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "InstructIR")
    dialog.get_spin_scale("strength", 100.0)  # shown as 0-100 %
    content = dialog.get_content_area()

    top = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
    top.set_border_width(12)
    top.pack_start(Gtk.Label(label="What is wrong with the photo?", xalign=0.0), False, False, 0)
    layer = LayerSuggestions(layer_png, lambda p: suggest(dialog, config, watch, p))
    top.pack_start(layer.box, False, False, 0)
    flow = Gtk.FlowBox(selection_mode=Gtk.SelectionMode.NONE, max_children_per_line=4)
    top.pack_start(flow, False, False, 0)

    bottom = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
    bottom.set_border_width(12)
    reading = Gtk.Label(label="", xalign=0.0)
    state = Gtk.Label(label="InstructIR bridge: connecting…", xalign=0.0)
    for label in (reading, state):
        label.set_line_wrap(True)  # a warning ("cannot darken a photo") can be long
        label.set_max_width_chars(60)
        bottom.pack_start(label, False, False, 0)

    watch = DialogWatch(config, plugin_dir, state, reading)
    watch.on_connected = layer.fill
    for task in client.TASKS:
        prompt = client.TASK_PROMPTS[task]
        button = Gtk.Button(label=client.TASK_LABELS[task])
        button.set_tooltip_text(prompt)
        button.connect("clicked", lambda _b, p=prompt: suggest(dialog, config, watch, p))
        flow.add(button)

    content.pack_start(top, False, False, 0)
    content.reorder_child(top, 0)  # above the instruction field
    dialog.fill(["instruction", "strength", "on-top", "as-written"])
    content.pack_end(bottom, False, False, 0)
    top.show_all()
    bottom.show_all()
    watch.start()
    try:
        while dialog.run():
            text = " ".join((config.get_property("instruction") or "").split())
            if not text or config.get_property("as-written") or not watch.is_unclear(text):
                save_last(plugin_dir, text)
                return True
            reading.set_text(watch.reading.line)  # stay open: the user decides
        return False
    finally:
        watch.stop()
        layer.stop()
        dialog.destroy()


def suggest(dialog, config, watch, prompt):
    """A fix button: fills the field when it is empty, holds a suggestion or an unclear
    instruction; asks before replacing what the user typed."""
    text = " ".join((config.get_property("instruction") or "").split())
    mine = text and text not in client.TASK_PROMPTS.values() and not watch.reading.unclear
    if mine and not ask_replace(dialog, text, prompt):
        return
    config.set_property("instruction", prompt)


def ask_replace(parent, old, new):
    """Yes/No: replace the typed instruction with a suggestion."""
    from gi.repository import Gtk

    box = Gtk.MessageDialog(
        transient_for=parent,
        modal=True,
        message_type=Gtk.MessageType.QUESTION,
        buttons=Gtk.ButtonsType.YES_NO,
        text=f"Replace “{old}” with “{new}”?",
    )
    try:
        return box.run() == Gtk.ResponseType.YES
    finally:
        box.destroy()


class DialogWatch:
    """Keeps the bridge state and the model's reading of the instruction up to date."""

    def __init__(self, config, plugin_dir, state_label, reading_label):
        self.config = config
        self.plugin_dir = plugin_dir
        self.state_label = state_label
        self.reading_label = reading_label
        self.bridge = None
        self.ready = False
        self.reading = client.Reading("", False)
        self.read_text = None  # the text ``reading`` is about
        self._poll = 0
        self._typing = 0
        self._handler = None
        self.on_connected = None  # called with the client once a bridge answers

    def start(self):
        self._handler = self.config.connect("notify::instruction", self._changed)
        self.check_bridge()

    def stop(self):
        for source in (self._poll, self._typing):
            if source:
                GLib.source_remove(source)
        self._poll = self._typing = 0
        if self._handler is not None:
            self.config.disconnect(self._handler)
            self._handler = None

    def _schedule_poll(self):
        if not self._poll:
            self._poll = GLib.timeout_add(POLL_MS, self._poll_tick)

    def _poll_tick(self):
        self._poll = 0
        self.check_bridge()
        return False

    def check_bridge(self):
        """Connect (the bridge proves itself first); say what state it is in; retry soon
        unless it is ready."""
        info = client.find_bridge_info(self.plugin_dir)
        if info is None:
            self._set_state("off", f"InstructIR is not set up for GIMP. {client.INSTALL_HINT}")
            return
        bridge = client.BridgeClient(info.url, info.token, timeout=1.5)
        try:
            bridge.verify(timeout=1.5)
            health = bridge.health(timeout=1.5)
        except client.BridgeNotRunning:
            self._set_state("off", client.not_running_message(info.port))
            return
        except client.BridgeError as exc:
            self._set_state("off", str(exc))
            return
        self.bridge = bridge
        model = health.get("name") or health.get("pack")
        if health.get("model") == "error":
            self._set_state("off", f"InstructIR bridge: {health.get('model_error')}")
            return
        if health.get("model") == "loading":
            self._set_state("loading", "InstructIR bridge: loading the model…")
        elif model:
            self._set_state("ready", f"InstructIR bridge ready (model {model}).")
        else:  # the model loads with the first instruction
            self._set_state("ready", "InstructIR bridge ready.")
        if self.on_connected is not None:
            self.on_connected(bridge)
        if self.read_text is None:
            self.update_reading()

    def _set_state(self, state, text):
        """``state``: off (no usable bridge), loading or ready."""
        self.state_label.set_text(text)
        self.ready = state == "ready"
        if state == "off":
            self.bridge = None
        if not self.ready:
            self._schedule_poll()

    def _changed(self, *_args):
        self.read_text = None
        if self.config.get_property("as-written"):
            self.config.set_property("as-written", False)  # confirmed another text
        if self._typing:
            GLib.source_remove(self._typing)
        self._typing = GLib.timeout_add(TYPING_MS, self._typing_tick)

    def _typing_tick(self):
        self._typing = 0
        self.update_reading()
        return False

    def update_reading(self):
        """Ask the bridge what it understands of the instruction (retried while it warms)."""
        text = " ".join((self.config.get_property("instruction") or "").split())
        if not text:
            self._show(client.Reading("", False), "")
            return
        if self.bridge is None:
            self._show(client.Reading("", False), None)
            return
        try:
            answer = self.bridge.intent(text, timeout=3.0)
        except client.BridgeError as exc:
            if exc.status == 400:  # the bridge refuses the text itself (no words, too long)
                self._show(client.Reading(str(exc), True), text)
                return
            self._show(client.Reading("", False), None)
            self.bridge = None
            self._schedule_poll()  # reconnect, then read again
            return
        self._show(client.read_intent(answer), text)

    def _show(self, reading, text):
        self.reading = reading
        self.read_text = text
        self.reading_label.set_text(reading.line)

    def is_unclear(self, text):
        """True when the bridge is not sure of ``text`` (read now if it is not yet)."""
        if self.read_text != text:
            self.update_reading()
        return self.read_text == text and self.reading.unclear


class LayerSuggestions:
    """What the active layer itself suggests fixing, as a row of buttons in the order to apply
    them; asked once, shortly after a bridge answers, so the dialog is up first."""

    def __init__(self, layer_png, on_pick):
        from gi.repository import Gtk

        self.layer_png = layer_png
        self.on_pick = on_pick
        self.asked = layer_png is None
        self._source = 0
        self.box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        self.label = Gtk.Label(label="", xalign=0.0)
        self.label.set_line_wrap(True)
        self.label.set_max_width_chars(60)
        self.row = Gtk.FlowBox(selection_mode=Gtk.SelectionMode.NONE, max_children_per_line=4)
        self.box.pack_start(self.label, False, False, 0)
        self.box.pack_start(self.row, False, False, 0)

    def fill(self, bridge):
        if self.asked or self._source:
            return
        self.label.set_text("Looking at the layer…")
        self._source = GLib.timeout_add(50, lambda: self._ask(bridge))

    def _ask(self, bridge):
        from gi.repository import Gtk

        self._source = 0
        try:
            answer = bridge.assess(self.layer_png())
        except client.BridgeError as exc:
            self.label.set_text(f"Could not look at the layer: {exc}")
            return False  # asked again when the bridge answers next
        self.asked = True
        steps = [s for s in answer.get("steps", []) if isinstance(s, dict)]
        summary = answer.get("summary") or "Nothing obvious to fix."
        self.label.set_text(f"This layer: {summary}" if steps else summary)
        for n, step in enumerate(steps, 1):
            task, prompt = step.get("task", ""), step.get("instruction", "")
            button = Gtk.Button(label=f"{n}. {client.TASK_LABELS.get(task, task)}")
            button.set_tooltip_text(prompt)
            button.connect("clicked", lambda _b, p=prompt: self.on_pick(p))
            self.row.add(button)
        self.box.show_all()
        return False

    def stop(self):
        if self._source:
            GLib.source_remove(self._source)
            self._source = 0


def load_last(plugin_dir):
    """The instruction typed in the last dialog, whatever became of it."""
    try:
        data = json.loads((plugin_dir / LAST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text = data.get("instruction") if isinstance(data, dict) else None
    return text if isinstance(text, str) and text.strip() else None


def save_last(plugin_dir, text):
    try:
        (plugin_dir / LAST_FILE).write_text(json.dumps({"instruction": text}), encoding="utf-8")
    except OSError:
        pass  # a read-only plug-in folder: Re-show falls back to GIMP's last values
