"""What the chat adds to a message beyond its state: where the bundled pack is weak, what an
adjustment layer is, and which requests are answered with one."""

from __future__ import annotations

from instructir_desktop.core.adjust import describe_stops
from instructir_desktop.core.degree import gentle
from instructir_desktop.core.packs import LITE_ID
from instructir_desktop.core.phrasing import asks_to_darken

from .document import Layer

__all__ = ["LITE_WEAK", "weak_spot", "layer_advice", "darkens"]

# Tasks the bundled pack barely changes on held-out photos (its evaluation: motion blur left
# as it was, x2 upscaling slightly worse than bicubic).
LITE_WEAK = {"deblur": "against blur", "superres": "for upscaling detail"}


def weak_spot(pack: str, task: str) -> str:
    """A sentence when ``task`` runs on the bundled pack where it helps little, else ""."""
    if pack != LITE_ID or task not in LITE_WEAK:
        return ""
    return (
        f"The bundled Lite model does little {LITE_WEAK[task]}. The official InstructIR "
        "model does much better: get it in Models…"
    )


def layer_advice(pack: str, layer: Layer) -> str:
    """What a newly applied layer's message says under its chip ("" for nothing)."""
    words = gentle(layer.instruction) if layer.strength < 1.0 else ""
    part = (
        f"At {round(layer.strength * 100)} % for “{words}”: say “more” for the full fix. "
        if words
        else ""
    )
    if layer.is_adjustment:
        return part + (
            f"An exposure adjustment ({describe_stops(layer.adjust)}), computed without the "
            "model: its seven fixes cannot darken a photo. Lower the layer's strength to "
            "darken less."
        )
    return (part + weak_spot(pack, layer.task)).strip()


def darkens(intent) -> bool:
    """A request to make the photo darker ("it's too bright"): flagged by the text rules
    (core.phrasing.asks_to_darken), answered with an exposure adjustment."""
    return bool(intent.note) and asks_to_darken(intent.text)
