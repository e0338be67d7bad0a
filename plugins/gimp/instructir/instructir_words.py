"""The plug-in's words: the seven fixes, how the bridge's reading of an instruction is put
to the user (and whether it is clear enough to apply), and the names of layers and undo
steps. GIMP's own Python, stdlib only; see ``instructir_client.py``."""

from __future__ import annotations

__all__ = [
    "TASKS",
    "TASK_PROMPTS",
    "TASK_LABELS",
    "MIN_CONFIDENCE",
    "AS_WRITTEN",
    "Reading",
    "read_intent",
    "unclear_message",
    "layer_name",
    "undo_name",
]

# Same order, prompts and gate as instructir_desktop.core.packs (a test keeps them equal); the
# bridge's /intent answer carries its own min_confidence, which wins.
TASKS = ("denoise", "deblur", "derain", "dehaze", "lowlight", "superres", "enhance")
TASK_PROMPTS = {
    "denoise": "Remove the noise from this photo",
    "deblur": "Remove the blur and make it sharp",
    "derain": "Remove the rain from this photo",
    "dehaze": "Remove the haze and fog",
    "lowlight": "The photo is too dark, brighten it",
    "superres": "Increase the resolution and detail",
    "enhance": "Improve the colours and contrast",
}
TASK_LABELS = {
    "denoise": "Noise",
    "deblur": "Blur",
    "derain": "Rain",
    "dehaze": "Haze / fog",
    "lowlight": "Too dark",
    "superres": "Low detail",
    "enhance": "Dull colours",
}
MIN_CONFIDENCE = 0.5

AS_WRITTEN = "Apply as written"
MAX_NAME_CHARS = 60
SHORT_NAME_CHARS = 24  # "IR: " + this fits the default Layers dock


def unclear_message(instruction: str, reason: str | None) -> str:
    why = f" ({reason.rstrip('.')})" if reason else ""
    return (
        f"Nothing was changed: InstructIR is not sure what “{instruction}” asks for{why}. "
        "Run the filter again and pick one of the seven fixes, or tick "
        f"“{AS_WRITTEN}” to apply it anyway."
    )


class Reading:
    """What the bridge understood of one instruction: the dialog's line and the gate."""

    def __init__(self, line: str, unclear: bool) -> None:
        self.line = line
        self.unclear = unclear

    def __repr__(self) -> str:
        return f"Reading({self.line!r}, unclear={self.unclear})"


def read_intent(answer: dict) -> Reading:
    """The dialog's reading of a POST /intent answer, with the bridge's gate: unclear when a
    step is flagged (a request to darken) or the model is less sure than ``min_confidence``.

    "Understood as: Too dark (98%)"; several fixes: "Understood as: Too dark, then Noise";
    unclear: "Not sure what to fix (Haze / fog, 21%). Pick one of the fixes above…"."""
    results = answer.get("results") or [{}]
    result = results[0] if isinstance(results[0], dict) else {}
    gate = answer.get("min_confidence")
    gate = float(gate) if isinstance(gate, (int, float)) else MIN_CONFIDENCE
    steps = [s for s in result.get("steps") or [] if isinstance(s, dict)]
    plan = steps or [result]
    if not result.get("task"):
        return Reading("", False)
    note = next((s["note"] for s in (result, *plan) if s.get("note")), "")
    unsure = [s for s in plan if float(s.get("confidence") or 0) < gate]
    names = [TASK_LABELS.get(s.get("task", ""), s.get("task", "")) for s in plan]
    if note:
        line = f"{note} Pick one of the fixes above, or tick “{AS_WRITTEN}”."
        return Reading(line, True)
    if unsure:
        what = ", ".join(
            f"{TASK_LABELS.get(s.get('task', ''), s.get('task'))}, "
            f"{100 * float(s.get('confidence') or 0):.0f}%"
            for s in unsure
        )
        line = (
            f"Not sure what to fix ({what}). Pick one of the fixes above, or tick "
            f"“{AS_WRITTEN}” to apply it anyway."
        )
        return Reading(line, True)
    if steps:
        return Reading("Understood as: " + ", then ".join(names), False)
    confidence = 100 * float(result.get("confidence") or 0)
    return Reading(f"Understood as: {names[0]} ({confidence:.0f}%)", False)


def layer_name(instruction: str) -> str:
    """A name the default Layers dock shows whole: ``IR: too dark``; a suggestion's prompt
    by its fix ("IR: Noise"); longer text cut at a word with an ellipsis (the full
    instruction goes into the layer's parasite)."""
    text = " ".join(instruction.split())
    for task, prompt in TASK_PROMPTS.items():
        if text.lower() == prompt.lower():
            return f"IR: {TASK_LABELS[task]}"
    if len(text) > SHORT_NAME_CHARS:
        cut = text[: SHORT_NAME_CHARS - 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space >= SHORT_NAME_CHARS // 2 else cut).rstrip(" ,.;:") + "…"
    return f"IR: {text}"


def undo_name(instruction: str) -> str:
    """The Undo History's name for the step: ``InstructIR: <instruction>``."""
    text = " ".join(instruction.split())
    if len(text) > MAX_NAME_CHARS:
        text = text[: MAX_NAME_CHARS - 1].rstrip() + "…"
    return f"InstructIR: {text}"
