"""Commands about the last edit typed in the chat ("undo", "a bit less", "again"): what counts
as one, and what it does to the layers of a real window."""

from __future__ import annotations

import pytest
import test_ui_editing
from PySide6.QtCore import Qt
from test_ui_editing import WAIT, idle, make_photo, open_and_wait, type_instruction

from instructir_desktop.app.chat_commands import STRENGTH_FLOOR
from instructir_desktop.core.edit_commands import edit_command
from instructir_desktop.core.scope import scope_note

make_window = test_ui_editing.make_window  # the same fixture: windows on the tiny pack

COMMANDS = {
    "undo": ["undo", "Undo!", "undo that", "ok undo", "nope, go back", "revert it",
             "that was better before", "it looks worse", "I liked it better before",
             "can you undo the last edit please"],
    "redo": ["redo", "redo that", "put it back"],
    "stop": ["cancel", "stop", "stop it"],
    "reset": ["reset", "start over", "go back to the original", "undo everything",
              "revert to original"],
    "delete": ["delete the last layer", "delete it", "remove that layer", "remove the last fix"],
    "set": ["50%", "set it to 30 %", "strength 80", "make it 70 percent", "0%"],
    "hide": ["hide it", "hide the last layer"],
    "show": ["show it again", "unhide that"],
    "compare": ["compare", "compare it with the original", "show me the before and after",
                "let me see the original", "side by side"],
    "uncompare": ["stop comparing", "close the split"],
    "praise": ["perfect", "thanks!", "nice, thank you", "looks great now", "I love it",
               "great job", "that's much better", "the colours are nice"],
    "greet": ["hi", "hello there", "good morning"],
    "weaker": ["less", "a bit less", "less please", "that's too much", "way too strong",
               "ugh, too much 😅", "no, too much", "it's a bit much", "tone it down",
               "can you make it a bit less", "overdone", "weaker", "much softer"],
    "stronger": ["more", "a bit more", "stronger", "not enough", "still not enough",
                 "I can't see any difference", "it’s too subtle", "turn it up", "more please"],
    "again": ["again", "do it again", "once more", "do that again please", "same again",
              "repeat", "again but weaker", "again but stronger"],
}  # fmt: skip
NOT_COMMANDS = [
    "undo the blur", "remove the noise again", "more noise removal", "less noise", "no more",
    "brighter", "more contrast", "make it more vivid", "stop the noise", "make it look great",
    "perfect, now remove the noise", "the photo is fine but too dark",
    "it is too dark", "too much noise", "less grain please", "more detail", "again the fog",
    "it's too bright", "reset the white balance", "go back to the original colours",
    "150%", "iso 6400", "2x", "upscale 4x", "remove it", "hide the noise", "see",
    "compare the noise", "I want to see more detail", "show more detail",
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "action"), [(t, a) for a, texts in COMMANDS.items() for t in texts]
)
def test_commands_are_read_as_such(text, action):
    command = edit_command(text)
    assert command is not None and command.action == action, text


@pytest.mark.parametrize("text", NOT_COMMANDS)
def test_requests_that_name_a_flaw_are_not_commands(text):
    assert edit_command(text) is None


def test_the_degree_sets_the_step_and_a_weaker_repeat_its_strength():
    assert edit_command("set it to 30 %").strength == 0.3
    assert (
        edit_command("a bit less").step
        < edit_command("less").step
        < edit_command("a lot less").step
    )
    assert edit_command("again but weaker").strength == 0.5
    assert edit_command("again but stronger").strength == 1.0


def test_what_the_command_line_calls_the_last_edit_the_app_carries_out():
    """Every message core.scope answers with the last-edit note (the CLI and the bridge have no
    last edit) is a command in the app, so the chat never answers it with that note."""
    edit_note = "This is about the last edit"
    for text in ["undo", "redo", "again", "do it again", "a bit more", "more", "less please",
                 "that's too much", "way too strong", "not enough", "stronger", "worse",
                 "that was better before", "too much!!", "nope, go back", "reset"]:  # fmt: skip
        assert scope_note(text).startswith(edit_note), text
        assert edit_command(text) is not None, text


def layers(session) -> list[tuple[str, int]]:
    return [(x.instruction, round(x.strength * 100)) for x in session.document.layers]


def say(qtbot, window, text: str) -> str:
    """Type a command; it is done at once: the note it answers with."""
    type_instruction(qtbot, window, text)
    message = next(m for m in reversed(window.session.chat.messages) if m.text == text)
    assert message.state == "done"
    return message.note


def test_undo_strength_again_and_reset_from_the_chat(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session = window.session

    assert say(qtbot, window, "undo") == "Nothing to undo."
    assert "no edit yet" in say(qtbot, window, "a bit less")
    assert "no instruction yet" in say(qtbot, window, "again")

    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    idle(qtbot, window)
    assert "full strength" in say(qtbot, window, "more")
    assert layers(session) == [("remove the noise", 100)]

    note = say(qtbot, window, "a bit less")
    assert layers(session) == [("remove the noise", 90)]
    assert "90 %" in note and "was 100 %" in note
    say(qtbot, window, "that's way too much")
    assert layers(session) == [("remove the noise", 40)]
    say(qtbot, window, "a lot less")
    assert layers(session) == [("remove the noise", round(STRENGTH_FLOOR * 100))]
    assert "undo" in say(qtbot, window, "less")  # at the floor: hide, delete or undo it
    say(qtbot, window, "more")
    assert layers(session) == [("remove the noise", 35)]
    # The strength slider shows it, and each change is one undo step.
    assert window.layers.slider.value() == 35
    window.undo_action.trigger()
    assert layers(session) == [("remove the noise", 10)]
    window.redo_action.trigger()

    note = say(qtbot, window, "do it again but weaker")
    assert "“remove the noise”" in note and "50 %" in note
    qtbot.waitUntil(lambda: len(session.document.layers) == 2, timeout=WAIT)
    idle(qtbot, window)
    assert layers(session) == [("remove the noise", 35), ("remove the noise", 50)]
    repeat = session.chat.messages[-1]
    assert repeat.text == "remove the noise" and repeat.state == "applied"
    assert repeat.thumbnail is not None

    note = say(qtbot, window, "undo")
    assert note.startswith("Undone: Add “remove the noise”")
    assert layers(session) == [("remove the noise", 35)]
    assert session.chat.get(repeat.id).state == "undone"
    assert say(qtbot, window, "redo").startswith("Redone: Add")
    assert len(session.document.layers) == 2

    assert "all 2 edits" in say(qtbot, window, "start over")
    assert layers(session) == []
    window.undo_action.trigger()  # one step brings them all back
    assert len(session.document.layers) == 2
    idle(qtbot, window)


def test_undo_while_an_instruction_is_on_its_way_stops_it(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session = window.session
    assert say(qtbot, window, "cancel").startswith("Nothing is being applied.")
    first = session.submit("remove the noise")  # still being read when the next one comes
    undo = session.submit("undo")
    assert session.chat.get(undo).note == "Stopped “remove the noise” before it was applied."
    assert session.chat.get(first).state == "cancelled"
    qtbot.wait(300)
    idle(qtbot, window)
    assert session.document.layers == [] and not session.undo_stack.canUndo()

    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    second = session.submit("it is too dark")
    session.submit("stop")
    assert session.chat.get(second).state == "cancelled"
    qtbot.wait(300)
    idle(qtbot, window)
    assert len(session.document.layers) == 1  # what was applied stays


def test_undo_after_a_held_request_says_so_before_undoing(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session = window.session
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    held = session.submit("blur the background")
    qtbot.waitUntil(lambda: session.chat.get(held).state == "unclear", timeout=WAIT)
    assert say(qtbot, window, "undo") == (
        "“blur the background” was not applied, so there is nothing of it to undo. To take "
        "back add “remove the noise”, say “undo” again."
    )
    assert len(session.document.layers) == 1
    assert say(qtbot, window, "undo").startswith("Undone: Add “remove the noise”")
    assert session.document.layers == []


def test_a_percentage_sets_the_strength_and_delete_removes_the_layer(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session = window.session
    assert "no edit yet" in say(qtbot, window, "50%")
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    assert say(qtbot, window, "set it to 30 %").endswith("at 30 % strength (was 100 %).")
    assert layers(session) == [("remove the noise", 30)]
    window.layers.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    say(qtbot, window, "80%")  # a hidden layer is shown again at the strength asked for
    assert layers(session) == [("remove the noise", 80)] and session.document.layers[0].visible
    say(qtbot, window, "hide it")
    assert not session.document.layers[0].visible
    assert "hidden already" in say(qtbot, window, "hide it")
    assert say(qtbot, window, "show it again").endswith("shown again.")
    assert session.document.layers[0].visible
    assert say(qtbot, window, "delete it") == "Deleted “remove the noise” (undo brings it back)."
    assert session.document.layers == []
    window.undo_action.trigger()
    assert layers(session) == [("remove the noise", 80)]
    idle(qtbot, window)


def test_undo_takes_back_every_layer_of_a_message_that_made_several(qtbot, monkeypatch, tmp_path):
    """On the bundled pack "it's too dark and grainy" becomes two layers; "undo" in the chat
    takes back what that message did, Ctrl+Z one layer at a time."""
    window = test_ui_editing.bundled_window(qtbot, monkeypatch, tmp_path)
    session = window.session
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    type_instruction(qtbot, window, "it's too dark and grainy")
    qtbot.waitUntil(lambda: len(session.document.layers) == 3, timeout=WAIT)
    idle(qtbot, window)
    assert say(qtbot, window, "undo") == (
        "Undone: “it's too dark and grainy” (2 layers). (Ctrl+Z undoes one at a time.)"
    )
    assert layers(session) == [("remove the noise", 100)]
    window.redo_action.trigger()
    assert len(session.document.layers) == 2  # redo, like Ctrl+Z, goes one step
    assert say(qtbot, window, "undo").startswith("Undone: Add “it's too dark”")
    # "again" repeats what the last message asked, all of it.
    type_instruction(qtbot, window, "it's too dark and grainy")
    qtbot.waitUntil(lambda: len(session.document.layers) == 3, timeout=WAIT)
    note = say(qtbot, window, "again")
    assert note == "Again: “it's too dark and grainy”, as 2 new layers on top."
    qtbot.waitUntil(lambda: len(session.document.layers) == 5, timeout=WAIT)
    idle(qtbot, window)
    assert [x.instruction for x in session.document.layers[1:]] == [
        "it's too dark", "grainy", "it's too dark", "grainy"
    ]  # fmt: skip
    assert say(qtbot, window, "start over") == (
        "Back to the original: removed all 5 edits (undo brings them back)."
    )
    idle(qtbot, window)


def test_compare_turns_the_split_on_and_off(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    assert "drag the line" in say(qtbot, window, "show me the before and after")
    assert window.compare_action.isChecked()
    assert say(qtbot, window, "stop comparing").startswith("Split off.")
    assert not window.compare_action.isChecked()


def test_praise_is_answered_not_applied(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session = window.session
    assert say(qtbot, window, "hi").startswith("Hello! Say what is wrong with the photo")
    assert say(qtbot, window, "thanks").startswith("Say what is wrong with the photo")
    type_instruction(qtbot, window, "remove the noise")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    assert say(qtbot, window, "perfect, thanks!").startswith("Glad you like it. Export it")
    idle(qtbot, window)
    assert len(session.document.layers) == 1


def test_a_request_for_a_little_of_a_fix_starts_at_half_strength(qtbot, make_window, tmp_path):
    """The model has no degree: "a bit" is the layer's strength, said under the chip, and
    "more" takes it further; "again" repeats it as worded."""
    window = make_window()
    open_and_wait(qtbot, window, make_photo(tmp_path / "p.png", size=(48, 32)))
    session = window.session
    type_instruction(qtbot, window, "reduce the noise a bit")
    qtbot.waitUntil(lambda: len(session.document.layers) == 1, timeout=WAIT)
    assert layers(session) == [("reduce the noise a bit", 50)]
    message = session.chat.messages[-1]
    assert message.advice.startswith("At 50 % for “reduce the noise a bit”: say “more”")
    say(qtbot, window, "more")
    assert layers(session) == [("reduce the noise a bit", 75)]
    say(qtbot, window, "again")
    qtbot.waitUntil(lambda: len(session.document.layers) == 2, timeout=WAIT)
    assert layers(session)[-1] == ("reduce the noise a bit", 50)
    type_instruction(qtbot, window, "it's a bit noisy")  # the flaw is small: the whole fix
    qtbot.waitUntil(lambda: len(session.document.layers) == 3, timeout=WAIT)
    assert layers(session)[-1] == ("it's a bit noisy", 100)
    idle(qtbot, window)
