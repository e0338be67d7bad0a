"""Chat messages about the last edit rather than the photo ("undo", "a bit less", "again";
read by ``core.edit_commands``), carried out on the layers at once and without the model:
every change is an undo command, like a click in the layers panel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from instructir_desktop.core.edit_commands import EditCommand

from . import commands

if TYPE_CHECKING:
    from .session import EditorSession

__all__ = ["carry_out", "STRENGTH_FLOOR"]

STRENGTH_FLOOR = 0.1
""""Less" stops here: below it a layer barely shows, and hiding or deleting it says so."""


def carry_out(session: EditorSession, command: EditCommand) -> str:
    """Do ``command`` on ``session``'s layers; what was done (or why nothing), for the chat."""
    return _ACTIONS[command.action](session, command)


def _undo(session: EditorSession, _command: EditCommand) -> str:
    waiting = session.waiting_instruction()
    if waiting:
        session.cancel()
        return f"Stopped “{waiting}” before it was applied."
    stack = session.undo_stack
    messages = session.chat.messages  # the last one is this command
    if len(messages) > 1 and messages[-2].state == "unclear":
        held = f"“{messages[-2].text}” was not applied, so there is nothing of it to undo."
        if not stack.canUndo():
            return held
        return f"{held} To take back {_lower(stack.undoText())}, say “undo” again."
    if not stack.canUndo():
        return "Nothing to undo."
    message = _last_added(session)
    if message is not None and message.part_of:  # one message, several layers: all of them
        whole = session.chat.get(message.part_of)
        parts = {m.layer_id for m in session.chat.messages if m.part_of == whole.id}
        what, undone = stack.undoText(), 0
        while (message := _last_added(session)) is not None and message.layer_id in parts:
            stack.undo()
            undone += 1
        if undone > 1:
            return f"Undone: “{whole.text}” ({undone} layers). (Ctrl+Z undoes one at a time.)"
        return f"Undone: {what}. (Ctrl+Z does the same.)"
    what = stack.undoText()
    stack.undo()
    return f"Undone: {what}. (Ctrl+Z does the same.)"


def _last_added(session: EditorSession):
    """The chat message of the layer the next undo step removes (None when it removes none)."""
    stack = session.undo_stack
    if not stack.canUndo():
        return None
    step = stack.command(stack.index() - 1)
    if not isinstance(step, commands.AddLayer):
        return None
    return session.chat.for_layer(step.layer.id)


def _stop(session: EditorSession, _command: EditCommand) -> str:
    waiting = session.waiting_instruction()
    if not waiting:
        return "Nothing is being applied. (To take back the last edit, say “undo”.)"
    session.cancel()
    return f"Stopped “{waiting}” before it was applied."


def _lower(step: str) -> str:
    """An undo step's name inside a sentence: "Add “x”" → "add “x”"."""
    return step[:1].lower() + step[1:]


def _redo(session: EditorSession, _command: EditCommand) -> str:
    stack = session.undo_stack
    if not stack.canRedo():
        return "Nothing to redo."
    what = stack.redoText()
    stack.redo()
    return f"Redone: {what}."


def _reset(session: EditorSession, _command: EditCommand) -> str:
    layers = session.document.layers
    if not layers:
        return "The photo has no edits: it is the original."
    session.undo_stack.beginMacro("Back to the original")
    for layer in reversed(layers):
        session.undo_stack.push(commands.RemoveLayer(session.document, layer.id))
    session.undo_stack.endMacro()
    fixes = "the edit" if len(layers) == 1 else f"all {len(layers)} edits"
    return f"Back to the original: removed {fixes} (undo brings them back)."


def _target(session: EditorSession):
    """The last edit: the selected layer (a new fix is selected when it lands), else the top."""
    doc = session.document
    if session.selected and doc.has_layer(session.selected):
        return doc.layer(session.selected)
    return doc.layers[-1] if doc.layers else None


def _no_edit(session: EditorSession, said: str) -> str:
    """Why a command about the last edit (``said``: "less", "delete") did nothing."""
    waiting = session.waiting_instruction()
    if waiting:
        return f"“{waiting}” is still being applied; say “{said}” again once it shows."
    return (
        f"There is no edit yet for “{said}”. Say what is wrong with the photo, e.g. “it is "
        "too dark”."
    )


def _name(session: EditorSession, layer) -> str:
    return session.task_title(layer.task) if layer.task else layer.instruction


def _set_strength(session: EditorSession, layer, new: float) -> str:
    """``layer`` at strength ``new`` (shown again if hidden), and the note saying so."""
    if not layer.visible and new > 0:
        session.set_visible(layer.id, True)
    session.set_strength(layer.id, new)
    was = f" (was {round(layer.strength * 100)} %)" if abs(new - layer.strength) > 1e-6 else ""
    return f"“{_name(session, layer)}” at {round(new * 100)} % strength{was}."


def _weaker(session: EditorSession, command: EditCommand) -> str:
    layer = _target(session)
    if layer is None:
        return _no_edit(session, "less")
    if layer.strength <= STRENGTH_FLOOR + 1e-6:
        return (
            f"“{_name(session, layer)}” is at {round(layer.strength * 100)} % already; hide or "
            "delete it in the layers, or say “undo”."
        )
    return _set_strength(session, layer, max(STRENGTH_FLOOR, layer.strength - command.step))


def _stronger(session: EditorSession, command: EditCommand) -> str:
    layer = _target(session)
    if layer is None:
        return _no_edit(session, "more")
    if layer.strength >= 1.0 - 1e-6:
        return (
            f"“{_name(session, layer)}” is at full strength. Say “again” to apply it a second "
            "time, on top of the result."
        )
    return _set_strength(session, layer, min(1.0, layer.strength + command.step))


def _set(session: EditorSession, command: EditCommand) -> str:
    layer = _target(session)
    if layer is None:
        return _no_edit(session, f"{round(command.strength * 100)} %")
    return _set_strength(session, layer, command.strength)


def _compare(session: EditorSession, command: EditCommand) -> str:
    on = command.action == "compare"
    session.compareRequested.emit(on)
    if on:
        return "The original is left of the line, the result right of it: drag the line. (Ctrl+D)"
    return "Split off. (Ctrl+D turns it on again.)"


def _chatter(session: EditorSession, command: EditCommand) -> str:
    if command.action == "praise" and session.document.layers:
        return "Glad you like it. Export it with File → Export (Ctrl+E), or say what else is wrong."
    ask = "Say what is wrong with the photo, e.g. “it is too dark” or “remove the noise”."
    return f"Hello! {ask}" if command.action == "greet" else ask


def _visibility(session: EditorSession, command: EditCommand) -> str:
    """ "hide it" / "show it": the selected layer hidden or shown."""
    show = command.action == "show"
    layer = _target(session)
    if layer is None:
        return _no_edit(session, f"{command.action} it")
    name = _name(session, layer)
    if layer.visible == show:
        if show:
            return f"“{name}” is shown already."
        return f"“{name}” is hidden already; say “show it” to bring it back."
    session.set_visible(layer.id, show)
    if show:
        return f"“{name}” shown again."
    return f"“{name}” hidden (its layer stays; say “show it” to bring it back)."


def _delete(session: EditorSession, _command: EditCommand) -> str:
    layer = _target(session)
    if layer is None:
        return _no_edit(session, "delete")
    session.remove_layer(layer.id)
    return f"Deleted “{layer.instruction}” (undo brings it back)."


def _again(session: EditorSession, command: EditCommand) -> str:
    last = _last_request(session)
    if last is None:
        return (
            "There is no instruction yet to repeat. Say what is wrong with the photo, e.g. "
            "“remove the noise”."
        )
    text, steps = last
    weaker_asked = command.strength if command.strength < 1 else None  # else as worded
    for step in steps:
        session.again(step.text, step.task, step.confidence, strength=weaker_asked)
    layers = "a new layer" if len(steps) == 1 else f"{len(steps)} new layers"
    weaker = f" at {round(command.strength * 100)} % strength" if command.strength < 1 else ""
    return f"Again: “{text}”, as {layers} on top{weaker}."


def _last_request(session: EditorSession) -> tuple[str, list] | None:
    """The newest message applied or on its way, as typed, and its steps (several when it
    asked for several fixes; its held parts left out)."""
    live = ("applied", "queued", "rendering")
    messages = session.chat.messages
    for message in reversed(messages):
        if message.task and message.state in live:
            if not message.part_of:
                return message.text, [message]
            parts = [m for m in messages if m.part_of == message.part_of and m.state in live]
            return session.chat.get(message.part_of).text, [m for m in parts if m.task]
    return None


_ACTIONS = {
    "undo": _undo,
    "redo": _redo,
    "stop": _stop,
    "reset": _reset,
    "delete": _delete,
    "hide": _visibility,
    "praise": _chatter,
    "greet": _chatter,
    "compare": _compare,
    "uncompare": _compare,
    "show": _visibility,
    "set": _set,
    "weaker": _weaker,
    "stronger": _stronger,
    "again": _again,
}
