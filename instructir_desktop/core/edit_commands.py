"""What a message says about the last edit rather than the photo: "undo", "a bit less",
"50 %", "again" (``edit_command``). No Qt and no torch: the app carries such a message out on
its layers (``app.chat_commands``); the command line, which has no last edit, says so.

A message is a command only when all of it is one ("undo", "ok, a bit less please", "that's
way too much"); "undo the blur" or "remove the noise again" name a flaw and go to the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .phrasing import only_chatter, praises

__all__ = ["EditCommand", "edit_command", "CHATTER"]


@dataclass(frozen=True)
class EditCommand:
    """What a message asks of the last edit.

    action: "undo", "redo", "stop" (what is being applied), "reset" (every layer removed, one
    undo step), "compare", "uncompare" (the before/after split), "delete", "hide", "show" (the
    selected layer), "weaker", "stronger" (its strength by ``step``), "set" (its strength to
    ``strength``: "50 %"), "again" (the last message once more, as new layers at
    ``strength``).
    """

    action: str
    step: float = 0.25
    strength: float = 1.0


# Words around a command that change nothing: "ok", "hmm", "please", "thanks", emoji.
_AROUND = (
    r"ok|okay|k|now|please|pls|plz|just|hmm+|hm+|nope|nah|ugh|wow|yes|yeah|yep|yup|nice|"
    r"oops|lol|oh|hey|actually|um+|uh+|great|cool|thanks|thank\s+you|thx|ty|sorry|right|"
    r"alright|well|then|maybe|perhaps|can\s+you|could\s+you|would\s+you|will\s+you|"
    r"i\s+think|let'?s"
)
_AROUND_RE = re.compile(rf"^(?:(?:{_AROUND})\s+)+|(?:\s+(?:{_AROUND}))+$")
_THING = (
    r"(?:it|that|this|the\s+(?:last\s+)?(?:one|edit|change|step|fix|layer)|"
    r"last\s+(?:one|edit|change|step|fix|layer))"
)
_BIT = r"(?:a\s+(?:bit|little|touch|tad)|a\s+little\s+bit|slightly|bit|little|tiny\s+bit)"
_LOT = r"(?:a\s+lot|lots|much|way|far|a\s+great\s+deal|loads)"
_DEGREE = rf"(?:(?P<bit>{_BIT})\s+|(?P<lot>{_LOT})\s+|(?:even|still)\s+)?"
_IS = r"(?:(?:it|that|this)(?:'s|s|\s+is|\s+was|\s+looks|\s+seems)\s+)?"
_SOFTER = r"(?:less|weaker|softer|gentler|subtler|more\s+subtle)"
_HARDER = r"(?:more|stronger|harder)"

# One pattern per way of saying it (a pattern names its degree once), tried in this order.
_FORMS: list[tuple[str, str]] = [
    (
        "reset",
        r"reset(?:\s+(?:it|everything|all|the\s+photo))?|start\s+(?:over|again|afresh)|"
        r"(?:go\s+)?back\s+to\s+(?:the\s+)?original|(?:revert|return|restore)\s+(?:it\s+)?"
        r"(?:back\s+)?to\s+(?:the\s+)?original|(?:undo|remove|delete)\s+"
        r"(?:all|everything|all\s+(?:the\s+)?(?:edits|changes|layers|fixes))",
    ),
    ("redo", rf"redo(?:\s+{_THING})?|(?:put|bring)\s+{_THING}\s+back"),
    (
        "delete",
        r"(?:remove|delete|drop)\s+(?:the\s+)?(?:last|top|selected|new|newest|latest)\s+"
        r"(?:layer|edit|fix|change|one|step)|delete\s+(?:it|that|this)(?:\s+layer)?|"
        r"(?:remove|delete)\s+(?:that|this)\s+layer",
    ),
    ("hide", rf"hide\s+{_THING}"),
    (
        "compare",
        r"(?:let\s+me\s+|i\s+want\s+to\s+)?compare(?:\s+(?:it|them))?(?:\s+(?:with|to)\s+"
        r"(?:the\s+)?(?:original|before))?|(?:show\s+(?:me\s+)?)?(?:the\s+)?before\s+and\s+after|"
        r"(?:show|let\s+me\s+see)\s+(?:me\s+)?(?:the\s+)?(?:original|before)|side\s+by\s+side",
    ),
    ("uncompare", r"(?:stop|end|close|hide)\s+(?:the\s+)?(?:comparing|comparison|compare|split)"),
    ("show", rf"(?:show|unhide)\s+{_THING}(?:\s+again)?"),
    (
        "set",
        r"(?:(?:set|put|make)\s+(?:it|that|this|the\s+strength|strength)\s+(?:to\s+|at\s+)?|"
        r"(?:the\s+)?strength\s+(?:to\s+|at\s+|of\s+)?)?(?P<percent>\d{1,3})"
        r"(?:\s+percent)?(?:\s+strength)?",
    ),
    (
        "undo",
        rf"(?:undo|revert|reverse|scrap|drop)(?:\s+{_THING})?|take\s+{_THING}\s+back|"
        rf"take\s+back\s+{_THING}|go\s+back|{_IS}(?:(?:much|way|far|even)\s+)?worse|"
        rf"(?:(?:it|that|this)\s+)?(?:was|looked|looks|seemed)?\s*better\s+"
        rf"(?:before|without(?:\s+{_THING})?)|i\s+(?:liked|preferred)\s+it\s+better\s+before",
    ),
    ("stop", rf"cancel(?:\s+{_THING})?|stop(?:\s+(?:it|that|this))?|abort"),
    (
        "again",
        rf"(?:(?:do|apply|run)\s+(?:{_THING}\s+)?)?(?:again|once\s+more|one\s+more\s+time)"
        rf"(?:\s+but\s+(?:(?P<softer>{_SOFTER})|{_HARDER}))?|same\s+again|"
        rf"repeat(?:\s+{_THING})?",
    ),
    ("weaker", rf"(?:make\s+(?:it|that)\s+|go\s+)?{_DEGREE}{_SOFTER}(?:\s+of\s+{_THING})?"),
    (
        "weaker",
        rf"{_IS}{_DEGREE}(?:too\s+(?:much|strong|harsh|heavy|intense|aggressive)|overdone|"
        r"over\s+the\s+top|overkill|a\s+bit\s+much)",
    ),
    ("weaker", r"(?:tone|dial|turn|scale|pull)\s+(?:it|that)\s+(?:down|back)|not\s+so\s+much"),
    ("stronger", rf"(?:make\s+(?:it|that)\s+|go\s+)?{_DEGREE}{_HARDER}(?:\s+of\s+{_THING})?"),
    ("stronger", rf"{_IS}{_DEGREE}(?:not\s+enough|too\s+(?:weak|little|subtle|gentle))"),
    (
        "stronger",
        r"(?:i\s+)?(?:can'?t|cannot)\s+see\s+(?:a|any)\s+(?:difference|change)|"
        r"(?:barely|hardly)\s+(?:any|a)\s+(?:difference|change)|"
        r"(?:turn|crank|dial|push)\s+(?:it|that)\s+up",
    ),
]
_COMPILED = [(action, re.compile(form)) for action, form in _FORMS]


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"^\s*no\s*[,.!]+", "", text)  # "no, too much"; but "no more" is no command
    text = re.sub(r"[^\w\s']+", " ", text)  # punctuation and emoji
    text = " ".join(text.split())
    previous = None
    while previous != text:
        previous, text = text, _AROUND_RE.sub("", text).strip()
    return text


CHATTER = ("praise", "greet")
"""Actions for messages that ask nothing of the photo or of an edit ("perfect", "hi")."""


def edit_command(text: str) -> EditCommand | None:
    """The command ``text`` is, when all of it is one; None for anything else. Greetings,
    thanks and praise of the result ("perfect, thanks") are commands too (``CHATTER``): the
    app answers them instead of reading them as a fix."""
    said = " ".join(text.split())
    if only_chatter(said):
        return EditCommand("praise" if praises(said) else "greet")
    words = _normalise(text)
    if not words:
        return None
    for action, form in _COMPILED:
        m = form.fullmatch(words)
        if m is None:
            continue
        groups = m.groupdict()
        step = 0.1 if groups.get("bit") else 0.5 if groups.get("lot") else 0.25
        strength = 0.5 if groups.get("softer") else 1.0
        if groups.get("percent"):
            if int(groups["percent"]) > 100:
                return None
            strength = int(groups["percent"]) / 100
        return EditCommand(action, step=step, strength=strength)
    return None
