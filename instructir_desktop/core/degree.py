"""How much of a fix a request asks for: "brighten it a little", "slightly sharper", "a light
denoise" ask for part of it.

The model has no notion of degree: it restores as far as it can whatever the wording, so a
gentle request is honoured by the layer's strength (``gentle``). Words that only say how bad
the flaw is ("it's a bit dark", "slightly blurry") ask for the whole fix of a small flaw, which
the model already makes small: they are not gentle. No torch and no Qt here.
"""

from __future__ import annotations

import re

__all__ = ["GENTLE_STRENGTH", "gentle"]

GENTLE_STRENGTH = 0.5
"""The layer strength of a request for part of a fix; "more" in the chat takes it further."""

_DEGREE = (
    r"(?:(?:just\s+|only\s+)?a\s+(?:little\s+|tiny\s+|wee\s+|teeny\s+)?"
    r"(?:bit|little|touch|tad|hint|smidge|notch)|slightly|somewhat|gently|lightly|subtly|"
    r"mildly|marginally|a\s+little)"
)
_BETTER = (
    r"(?:brighter|lighter|darker|sharper|clearer|cleaner|crisper|smoother|punchier|livelier|"
    r"richer|"
    r"(?:more|less)\s+(?!than\b)\w+)"
)
_ACT = (
    r"(?:brighten|lighten|darken|sharpen|denoise|de-?noise|dehaze|de-?haze|deblur|de-?blur|"
    r"unblur|enhance|boost|lift|raise|increase|reduce|lessen|lower|cut|remove|clean|clear|"
    r"fix|improve|smooth|soften|correct|restore|recover|open\s+up|tone)\w*"
)
# Said of the flaw, not of the fix: "a bit dark", "slightly out of focus", "a little too noisy".
_FLAW = (
    r"(?:too\s+|over\s*|under\s*)?(?:dark|dim|gloomy|noisy|grainy|blurry|blurred|soft|fuzzy|"
    r"hazy|foggy|misty|dull|flat|washed|faded|murky|muddy|rainy|out\s+of\s+focus|"
    r"under-?exposed|over-?exposed|pixelated|low|small|off|much|strong)\b"
)
_FORMS = re.compile(
    rf"\b{_DEGREE}\s+(?:{_BETTER}|{_ACT})\b"  # "slightly brighter", "a bit less noisy"
    rf"|\b{_ACT}(?:,?\s+(?!and\b|but\b)[\w'-]+){{0,4}}?,?\s+{_DEGREE}\b(?!\s+{_FLAW})"
    # "remove some of the haze"
    rf"|\b{_ACT}\s+(?:just\s+|only\s+)?(?:some|part|a\s+(?:little|bit))\s+of\b"
    r"|\b(?:a\s+)?(?:light|gentle|subtle|mild|slight|small|little|soft)\s+"
    r"(?:denois\w*|noise\s+reduction|sharpen\w*|brighten\w*|lighten\w*|dehaz\w*|deblur\w*|"
    r"clean[\s-]?up|boost|lift|touch(?:[\s-]?up)?|enhancement|correction|fix)\b"  # "light denoise"
    rf"|\b(?:a\s+)?(?:touch|hint|bit|little)\s+(?:more\s+)?(?:of\s+)?(?:light|brightness|"
    r"exposure|clarity|sharpness|detail|contrast|colou?r|saturation|definition)\b",
    re.IGNORECASE,
)


def gentle(text: str) -> str:
    """The words of ``text`` that ask for part of a fix ("a little", "slightly brighter"), or
    "" when it asks for the whole of it."""
    said = " ".join(text.replace("’", "'").split())
    m = _FORMS.search(said)
    return m.group(0) if m else ""
