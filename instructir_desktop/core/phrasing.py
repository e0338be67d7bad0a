"""What the words of an instruction ask, before any model reads them.

A message is cut into the parts that could each be a request (``split_clauses``); rules on
real phrasing say which parts ask for nothing ("don't denoise", "I like the grain", "shot at
night" beside a request), which ask to darken (no fix does: ``asks_to_darken``), which ask
for a fix without naming one ("fix it") and which name a flaw by its cause ("I had the iso
too high": ``reading`` is what the model reads). ``core.text`` combines them with the model's
reading into an ``Intent`` and a plan of steps. No torch here: the bridge and the command line check
an instruction (``clean_instruction``) without loading a model.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import EmptyInstructionError
from .scope import NEGATED_BEFORE

__all__ = [
    "Intent",
    "MAX_INSTRUCTION_CHARS",
    "COMPOUND_CONFIDENCE",
    "NOTHING_ASKED_NOTE",
    "TOO_BRIGHT_NOTE",
    "UNSAID_NOTE",
    "asks_for_nothing",
    "asks_nothing",
    "asks_to_darken",
    "clean_instruction",
    "how_taken",
    "names_cause",
    "reading",
    "says_nothing_wrong",
    "chatter",
    "fine_part",
    "only_chatter",
    "praises",
    "CHATTER_NOTE",
    "split_clauses",
    "unsaid",
]

MAX_INSTRUCTION_CHARS = 1000
COMPOUND_CONFIDENCE = 0.9
"""How sure the head must be of each part of "it's dark and grainy" to split it into steps."""

# Where one request ends and the next begins: punctuation, a dash, "and", "then", "also",
# "plus"...
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[,;!?]+|\.(?:\s|$)|\s+-+\s+|\s+(?:and\s+then|and\s+also|and|then|also|plus|&|n|"
    r"as\s+well\s+as)\s+|(?<=[^\W\d_])\s*\+\s*(?=[^\W\d_])"
    r"|(?<=[^\W\d_]{2})\s*/\s*(?=[^\W\d_]{2}))\s*",  # "grain + dark", "denoise/brighten"
    re.IGNORECASE,
)
# A turn inside a part: "too dark but don't denoise", "the noise is fine but it's too dark".
# Only a side that asks for nothing is split off ("it's grainy but I like it" stays whole).
_CONTRAST = re.compile(
    r"(\s+(?:but|while|though|although|however|yet|except|just)\s+)", re.IGNORECASE
)
# Set phrases whose "and" joins one thing, not two requests.
_BOUND_PAIRS = ("black white", "salt pepper", "before after", "back forth", "up down", "pros cons",
                "bits pieces", "more more", "again again", "over over", "light dark",
                "light shadow", "highlights shadows", "shadows highlights")  # fmt: skip
_BOUND_PHRASES = re.compile(
    "|".join(r"\b{}\s*(?:and|&|n)\s*{}\b".format(*p.split()) for p in _BOUND_PAIRS),
    re.IGNORECASE,
)
_LEADING_CONNECTOR = re.compile(r"^(?:(?:and|then|also|plus|please|pls|but|so)\s+)+", re.IGNORECASE)
# Words that name a flaw the seven fixes take away.
_FLAW_WORDS = (
    r"dark|darkness|dim|blurr?y|blur|blurred|blurriness|noisy|noise|grain|grainy|graininess|"
    r"haze|hazy|fog|foggy|mist|misty|rain|rainy|drops|raindrops|pixelated|small|tiny|dull|flat|"
    r"washed|soft|fuzzy|shaky|muddy|murky|underexposed|under-exposed|gloomy"
)
# A part that asks for nothing to be done: what to leave alone ("but do not sharpen", "keep
# the colours", "no denoising", "not too much") or how the photo was taken ("shot at night,
# remove the grain"). Apostrophes may be typed straight or curly.
_NOT_A_REQUEST = re.compile(
    r"^(?:just\s+|please\s+)?(?:don['’]?t|do\s+not|never|no\s+need|without|avoid(?:ing)?|"
    r"keep(?:ing)?|leav(?:e|ing)|preserv(?:e|ing)|retain(?:ing)?)\b"
    r"|^no\s+\w+ing\b|^not\s+(?:too|so|that)\s+(?:much|strong(?:ly)?|heavy|heavily|hard|"
    r"aggressive(?:ly)?)\b"
    # What the user likes or accepts: "I like the grain", "I don't mind the noise".
    r"|^(?:i|we)\s+(?:really\s+|actually\s+|kind\s+of\s+|kinda\s+|quite\s+)?(?:like|love|"
    r"don['’]?t\s+mind|do\s+not\s+mind|can\s+live\s+with)\s+"
    r"(?:the|that|this|these|those|its|it['’]?s|how|some|a\s+(?:bit|little)|all)\b"
    # "I don't want it brighter", "I don't want you to sharpen it"; but "I don't want it so
    # dark" or "I don't want any noise" name the flaw to fix.
    rf"|^(?:i|we)\s+(?:don['’]?t|do\s+not)\s+(?:want|need)\b(?!.*\b(?:{_FLAW_WORDS})\b)"
    r"|^(?:i|we)(?:\s+am|\s+are|['’]m|['’]re)?\s+(?:ok|okay|fine|happy)\s+with\b",
    re.IGNORECASE,
)
# A part that says how the photo was taken: set aside beside a request ("shot at night, remove
# the grain"), but on its own it describes the flaw ("taken through a dirty window", "shot at
# night") and is read as the request.
_HOW_TAKEN = re.compile(
    r"^(?:(?:this|it|the\s+(?:photo|picture|pic|image|shot))\s+(?:was|is|got|were)\s+)?"
    r"(?:taken|shot|captured|photographed|snapped)\b",
    re.IGNORECASE,
)
# What the user did, told beside a request: "I zoomed in too much", "I brightened it in post";
# not a request put politely ("I was hoping you could brighten it", "I was wondering if...").
_WHAT_I_DID = re.compile(
    r"^(?:i|we)\s+(?:(?:\w+ly|just|had\s+to|then)\s+)?(?:took|shot|used|brightened|edited|"
    r"zoomed|cropped|scanned|photographed|snapped|captured|had|forgot|tried|was|were|moved|"
    r"filmed|screenshotted|downloaded|exported|compressed|lightened|darkened|sharpened|"
    r"printed)\b(?!.*\b(?:you|u|ya|hoping|wondering|wishing)\b)",
    re.IGNORECASE,
)
_FLAW = re.compile(rf"\b(?:{_FLAW_WORDS})\b", re.IGNORECASE)


def how_taken(clause: str, *, told: bool = True) -> bool:
    """The part says how the photo was taken (``told``: or what the user did to it) and names
    no flaw ("shot at night"; not "taken in the fog", nor "shot at iso 6400", which names
    the cause of one: ``names_cause``)."""
    said = _HOW_TAKEN.match(clause) or (told and _WHAT_I_DID.match(clause))
    return bool(said) and not _FLAW.search(clause) and not names_cause(clause)


# A flaw named by its cause. The sentence encoder reads a camera setting by its topic, not by
# what it does to a photo: "I had the iso too high" reads as exposure (low light, 99 %), "high
# iso" and "cranked the iso" as upscaling. A high ISO is what makes a photo noisy, so a part
# that says the ISO was high (a word for high or raised, a value from 800 up, or the ISO
# alone: a low ISO is said as low, "iso 100") is read with the flaw it causes named after it
# (``reading``).
_ISO_VALUE = r"(?:[89]\d{2}|[1-9]\d{3,5})"  # 800 and up; base ISOs are 50-400
_HIGH_ISO = re.compile(
    rf"\biso[\s:-]*{_ISO_VALUE}\b|\b{_ISO_VALUE}\s*iso\b"
    r"|\biso(?![\s:-]*\d)\b(?!(?:\s+(?:was|is|at|set|to|of|on|been))*\s+(?:(?:very|really|so|too|"
    rf"quite|pretty|fairly|rather)\s+)*(?:low|lower|down|minimum|min|base|native|(?!{_ISO_VALUE})"
    r"\d+)\b)",
    re.IGNORECASE,
)
_LOW_BEFORE = re.compile(
    r"\b(?:low|lower|lowest|lowered|lowering|base|native|minimum|min|reduced|dropped|"
    r"decreased)\s+(?:(?:the|my|an?)\s+)?$|(?<![\d./])\d{1,3}\s*$",  # "a low iso", "200 iso"
    re.IGNORECASE,
)
_CAUSES: tuple[tuple[re.Pattern, re.Pattern, str, re.Pattern], ...] = (
    # (the cause, what just before it says the cause is not there, the flaw it causes, the
    # words that already name that flaw)
    (_HIGH_ISO, _LOW_BEFORE, "noisy", re.compile(r"\b(?:nois|grain)\w*", re.IGNORECASE)),
)


def _causes(text: str) -> list[tuple[str, re.Pattern]]:
    """The flaws (with the words that name them) whose cause the text names and does not
    negate or call low."""
    flaws = []
    for cause, absent, flaw, said in _CAUSES:
        for m in cause.finditer(text):
            before = text[: m.start()]
            if not absent.search(before) and not NEGATED_BEFORE.search(before):
                flaws.append((flaw, said))
                break
    return flaws


def names_cause(clause: str) -> bool:
    """The part names the cause of a flaw ("I had the iso too high", "shot at iso 6400")."""
    return bool(_causes(clause))


def reading(text: str) -> str:
    """The words the model reads for ``text``: the text, with the flaw whose cause it names
    added ("I had the iso too high" → "I had the iso too high, noisy"). The step keeps the
    user's words; its embedding and its task come from the reading."""
    return ", ".join([text, *(flaw for flaw, said in _causes(text) if not said.search(text))])


# A part that says a flaw is *not* there: "it's not too dark, just noisy", "not blurry, only
# grainy", "the colours are fine". ("not sharp", "not bright enough" do ask for something.)
_NEGATED_FLAW = re.compile(
    r"\b(?:not|isn['’]?t|aren['’]?t|wasn['’]?t|no\s+longer)\s+(?:(?:too|very|that|so|really|"
    r"overly|particularly|at\s+all)\s+)*(?:dark|dim|blurr?y|blurred|noisy|grainy|hazy|foggy|"
    r"misty|rainy|wet|small|tiny|pixelated|dull|flat|washed[\s-]out|(?:under|over)[\s-]?exposed|"
    r"soft)\b"
    r"|\b(?:not|isn['’]?t|aren['’]?t)\s+(?:too|overly)\s+bright\b"
    # Something is fine as it is: "the colours are fine", "blur is ok", "it looks good".
    r"|(?<=\w)(?:\s+|['’])(?:is|are|looks?|seems?|s)\s+(?:(?:totally|really|quite|pretty|"
    r"perfectly|already|still)\s+)?(?:fine|ok(?:ay)?|good|great|perfect|alright|right)\b"
    r"|^no\s+(?:blur|noise|grain|haze|fog|rain)\b"
    # A flaw the user accepts: "the noise doesn't bother me", "grain is not a problem".
    r"|\b(?:doesn['’]?t|does\s+not|don['’]?t|do\s+not)\s+(?:really\s+)?(?:bother|matter|"
    r"worry)\b|\b(?:is|are|['’]s)\s+(?:not\s+(?:a|an)\s+(?:problem|issue)|no\s+problem)\b"
    r"|\b(?:isn['’]?t|aren['’]?t)\s+(?:a|an)\s+(?:problem|issue|big\s+deal)\b",
    re.IGNORECASE,
)
# A negation or "fine" that is part of what is asked: "make it not blurry", "I want it not
# grainy", "make it look good".
_WISHED = re.compile(
    r"\b(?:make|makes|making|get|want|wanna|need|would\s+like|['’]d\s+like)\s+"
    r"(?:it|this|that|them|everything|(?:the|my)\s+\w+)"
    r"(?:\s+(?:look|looking|seem|be|to\s+be|to\s+look))?\s*$"
    r"|\b(?:can|could|should|would)\s+(?:it|this|that|the\s+\w+)\s+(?:look|be|seem)\s*$",
    re.IGNORECASE,
)
NOTHING_ASKED_NOTE = (
    "This says what to leave alone (or that a flaw is not there), not what to fix, so nothing "
    "is applied. Say what is wrong with the photo, e.g. 'too dark' or 'remove the noise'."
)


# A part that asks for a fix without saying which ("fix it", "can you help?", "clean it up",
# "do your magic", "it needs some work"), or is only a greeting or thanks. The head reads such
# text as some fix with high confidence; none is named.
_FILLER = (
    r"(?:(?:hey|hi|hello|ok|okay|so|um|uh|pls|plz|please|kindly|just|now|can|could|would|will|"
    r"u|you|ya|try\s+to|(?:i|we)\s+(?:need|want)\s+(?:you\s+)?to|help\s+me|me)\s+)*"
)
_THING = (
    r"(?:it|this|that|this\s+one|that\s+one|everything|all\s+of\s+it|(?:the|this|my|that)\s+"
    r"(?:photo|picture|pic|image|shot|file|one))"
)
_UNSAID = re.compile(
    rf"^{_FILLER}(?:(?:fix|repair|correct|edit|process|sort|clean|tidy)(?:\s+{_THING})?"
    r"(?:\s+(?:up|out))?|help(?:\s+me)?(?:\s+with\s+" + _THING + r")?"
    r"|do\s+(?:your|ur|the|its)\s+(?:thing|magic|best|needful)|work\s+(?:(?:your|ur)\s+)?magic"
    r"|do\s+(?:something|anything)(?:\s+(?:with|about)\s+" + _THING + r")?"
    rf"|(?:{_THING}\s+)?needs?\s+(?:some\s+)?(?:work|fixing|help|love|attention)"
    r"|what\s+can\s+(?:you|u)\s+do(?:\s+(?:with|about)\s+" + _THING + r")?"
    r"|any\s+(?:ideas|suggestions|tips))"
    r"(?:\s+(?:for\s+me|please|pls|plz|thanks|thank\s+you|thx|asap|quickly|again))*\W*$",
    re.IGNORECASE,
)
_CHATTER = re.compile(
    r"^(?:hey|hi|hello|(?:hey|hi|hello)\s+there|good\s+(?:morning|afternoon|evening)|thanks|"
    r"thank\s+you|thx|ty|please|pls|plz|ok|okay|cheers)(?:\s+(?:so\s+much|a\s+lot|again|"
    r"in\s+advance))*\W*$",
    re.IGNORECASE,
)
UNSAID_NOTE = (
    "This asks for a fix without saying what is wrong with the photo, so no fix is picked. "
    "Say what is wrong, e.g. 'too dark', 'it is blurry' or 'remove the noise'."
)
# What the user thinks of the result ("perfect", "looks great now", "I love it", "much
# better"): no request, though the head reads it as some fix, often above the confidence gate
# ("perfect": upscaling, 76 %; "great job": denoising, 67 %).
_PRAISE = re.compile(
    r"^(?:(?:wow|oh|omg|yes|yeah|yay|ok|okay|oh\s+wow)\s+)*"
    r"(?:(?:(?:that|it|this)(?:['’]s|s|\s+is|\s+was|\s+looks|\s+seems)|looks|much|so)\s+)?"
    r"(?:(?:so|really|very|much|way|a\s+lot|pretty|super|just|absolutely|totally)\s+)*"
    r"(?:perfect|great|good|better|nice|awesome|amazing|beautiful|lovely|excellent|fantastic|"
    r"wonderful|brilliant|cool|fine|gorgeous|stunning|superb|sweet|neat)"
    r"(?:\s+(?:now|already|indeed|thanks|thank\s+you|thx|ty))*\W*$"
    r"|^(?:i\s+)?(?:love|like|dig)\s+(?:it|that|this|the\s+result)(?:\s+now)?\W*$"
    r"|^(?:good|great|nice|excellent)\s+(?:job|work)\W*$|^well\s+done\W*$",
    re.IGNORECASE,
)
# A part of the photo said to be fine ("the colours are nice, brighten it"): set aside.
_FINE_PART = re.compile(
    r"^(?:the|my|its|his|her|their|our)\s+(?:\w+\s+){0,2}?(?:is|are|look|looks|seem|seems)\s+"
    r"(?:(?:so|really|very|pretty|quite|already|just)\s+)*(?:nice|good|fine|great|perfect|"
    r"lovely|beautiful|ok|okay|gorgeous|right)\W*$",
    re.IGNORECASE,
)
CHATTER_NOTE = (
    "This says nothing about what is wrong with the photo, so nothing is applied. Say what "
    "is wrong, e.g. 'too dark' or 'remove the noise'."
)


def chatter(clause: str) -> bool:
    """The part is a greeting, thanks or praise of the result: it asks for nothing."""
    return bool(_CHATTER.match(clause) or _PRAISE.match(clause))


def fine_part(clause: str) -> bool:
    """The part says a part of the photo is fine ("the lighting is great")."""
    return bool(_FINE_PART.match(clause))


_THANKS = re.compile(r"\b(?:thanks|thank\s+you|thx|ty|cheers)\b", re.IGNORECASE)


def praises(text: str) -> bool:
    """Every part of the text is chatter, and one praises the result or thanks ("perfect")."""
    clauses = split_clauses(text)
    return (
        bool(clauses)
        and all(chatter(c) or fine_part(c) for c in clauses)
        and any(_PRAISE.match(c) or _FINE_PART.match(c) or _THANKS.search(c) for c in clauses)
    )


def only_chatter(text: str) -> bool:
    """Every part of the text is a greeting, thanks or praise ("hi", "perfect, thanks", "the
    colours are nice")."""
    clauses = split_clauses(text)
    return bool(clauses) and all(chatter(c) or fine_part(c) for c in clauses)


def unsaid(clause: str) -> bool:
    """The part asks for a fix without naming one ("fix it", "help")."""
    return bool(_UNSAID.match(clause))


def says_nothing_wrong(text: str) -> bool:
    """The text asks for a fix but names none: "fix it pls", "hi, can you help? thanks"."""
    clauses = split_clauses(text)
    return any(unsaid(c) for c in clauses) and all(unsaid(c) or _CHATTER.match(c) for c in clauses)


def _declines(clause: str) -> bool:
    """The part says what not to do or which flaw is absent."""
    if _NOT_A_REQUEST.match(clause):
        return True
    return any(not _WISHED.search(clause[: m.start()]) for m in _NEGATED_FLAW.finditer(clause))


def asks_nothing(clause: str, *, told: bool = True) -> bool:
    return _declines(clause) or how_taken(clause, told=told)


def asks_for_nothing(text: str) -> bool:
    """Every part of the text says what not to do or which flaw is absent ("don't denoise",
    "it is not noisy", "keep the grain"). How the photo was taken describes its flaw ("shot
    at night, keep the colours" asks for something)."""
    clauses = split_clauses(text)
    return bool(clauses) and all(_declines(c) for c in clauses)


# "Too bright": none of the seven tasks darkens a photo (low light brightens; colour and tone
# correction was measured to brighten an overexposed photo further too), and sentence
# embeddings read "too bright" and "too dark" as one topic, so the model would confidently
# brighten it. Such a request is flagged (Intent.note) and treated as unclear.
_TOO_BRIGHT = re.compile(
    r"\b(?:too|overly|far\s+too|much\s+too|way\s+too|so)\s+(?:bright|light)\b"
    r"|\bover[\s-]?expos\w*|\bblown[\s-]out\b|\bburn(?:ed|t)[\s-]out\b"
    r"|\bhighlights\s+(?:are\s+)?(?:clipped|blown|burnt|gone|lost)\b"
    r"|\b(?:clipped|blown)\s+highlights\b"
    r"|\b(?:recover|bring\s+back|save|restore)\s+(?:the\s+)?highlights\b"
    r"|\b(?:reduce|lower|decrease|drop|cut|(?:turn|tone|bring|dial|knock|pull)\s+down)\s+"
    r"(?:the\s+)?(?:exposure|brightness)\b"
    r"|\b(?:exposure|brightness|highlights)\s+(?:is\s+|are\s+)?(?:too\s+(?:high|hot)|way\s+up)\b"
    r"|\btoo\s+much\s+(?:light|exposure|brightness|sun)\b"
    r"|\b(?:turn|bring|take|dial|knock|tone)\s+(?:the\s+)?(?:exposure|brightness|highlights)\s+"
    r"(?:\w+\s+)?down\b|\b(?:exposure|brightness)\s+down\b"
    r"|\bbright\s+(?:af|asf|as\s+hell)\b"
    r"|\bdarken\b|\bless\s+bright\b|\bdarker\b(?!\s+than\b)",
    re.IGNORECASE,
)
# "darker" that describes the photo ("it came out darker", "it looks a bit darker") says it
# is too dark; asked for ("a bit darker", "make the shadows darker") it is too bright.
_DESCRIBED = re.compile(
    r"\b(?:is|are|was|were|looks?|looked|seems?|came\s+out|comes\s+out|got|gets|getting|"
    r"turned\s+out|became|become|['’]s)\s+(?:(?:a|bit|little|lot|much|way|far|slightly|even|"
    r"so|too|kind\s+of|kinda)\s+)*$",
    re.IGNORECASE,
)
# A negation that is part of the request: "make it not so bright".
_WISHED_NEGATION = re.compile(
    r"\b(?:make|get|want|need|would\s+like|['’]d\s+like)\s+(?:it|this|that|them|"
    r"(?:the|my)\s+\w+)\s+(?:(?:look|seem|be|to\s+be|to\s+look)\s+)?not\s+$",
    re.IGNORECASE,
)
TOO_BRIGHT_NOTE = (
    "InstructIR cannot darken a photo: its seven fixes brighten dark photos, none lowers the "
    "exposure, so applying this would make an overexposed photo brighter still."
)


def asks_to_darken(text: str) -> bool:
    """True when the text says the photo is too bright (and does not negate it)."""
    for m in _TOO_BRIGHT.finditer(text):
        before = text[: m.start()]
        if m.group(0).lower() == "darker" and _DESCRIBED.search(before):
            continue
        if not NEGATED_BEFORE.search(before) or _WISHED_NEGATION.search(before):
            return True
    return False


@dataclass(frozen=True)
class Intent:
    """What the head understood: the top task, its confidence and all probabilities."""

    text: str
    task: str
    confidence: float
    probabilities: dict[str, float]
    note: str = ""
    """Why this request should not be applied as understood, however sure the head is
    (TOO_BRIGHT_NOTE; core.scope's notes for what no fix does, such as "blur the background"
    or "undo"; NOT_ENGLISH_NOTE; NOTHING_ASKED_NOTE; UNSAID_NOTE for "fix it"); front ends
    treat it as unclear."""

    def to_dict(self) -> dict:
        row = {
            "text": self.text,
            "task": self.task,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }
        if self.note:
            row["note"] = self.note
        return row


def clean_instruction(text: str, *, words: bool = False) -> str:
    """Collapse whitespace; refuse empty instructions with a clear error.

    words=True also refuses text without a single letter (".", "🙂") and text longer than
    MAX_INSTRUCTION_CHARS: done for new instructions (intent, the command line), not when
    re-rendering a saved layer.
    """
    if not isinstance(text, str):
        raise EmptyInstructionError("The instruction must be text.")
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # undecodable bytes (surrogateescape)
        raise EmptyInstructionError(
            "The instruction contains bytes that are not valid text (UTF-8); type it again."
        )
    # Control characters (terminal escapes, zero-width marks) are not words: spaces.
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    cleaned = " ".join(text.split())
    if not cleaned:
        raise EmptyInstructionError(
            "The instruction is empty. Describe what is wrong with the photo, "
            "for example 'it is too dark' or 'remove the noise'."
        )
    if words and not any(ch.isalpha() for ch in cleaned):
        raise EmptyInstructionError(
            f"The instruction {cleaned[:40]!r} has no words. Describe what is wrong with the "
            "photo, for example 'it is too dark' or 'remove the noise'."
        )
    if words and len(cleaned) > MAX_INSTRUCTION_CHARS:  # cut, its last requests would be lost
        raise EmptyInstructionError(
            f"The instruction is {len(cleaned)} characters long; say what is wrong with the "
            f"photo in a sentence or two (at most {MAX_INSTRUCTION_CHARS} characters)."
        )
    return cleaned[:MAX_INSTRUCTION_CHARS]


def split_clauses(text: str) -> list[str]:
    """The parts of a message that could each be a request: "it's dark, and grainy too" →
    ["it's dark", "grainy too"]. Set phrases ("black and white", "salt and pepper") stay
    whole. Whether the parts really are separate requests is for the model to say."""
    glued = _BOUND_PHRASES.sub(lambda m: m.group(0).replace(" ", "\0"), text)
    parts = (p.replace("\0", " ").strip(" .,;:-") for p in _CLAUSE_BREAK.split(glued))
    parts = (_LEADING_CONNECTOR.sub("", p) for p in parts)
    clauses = []
    for part in parts:
        clauses.extend(_split_contrast(part))
    return [p for p in clauses if any(ch.isalpha() for ch in p)]


def _split_contrast(part: str) -> list[str]:
    """The part with each side of a turn that asks for nothing split off after it."""
    pieces = _CONTRAST.split(part)
    sides, turns = pieces[0::2], pieces[1::2]
    idle = [asks_nothing(_LEADING_CONNECTOR.sub("", side.strip()), told=False) for side in sides]
    if len(sides) < 2 or not any(idle):
        return [part]
    kept = ""
    for n, side in enumerate(sides):
        if not idle[n]:
            kept += (turns[n - 1] if kept and n else "") + side
    dropped = [_LEADING_CONNECTOR.sub("", s.strip()) for s, i in zip(sides, idle) if i]
    return ([kept.strip()] if kept.strip() else []) + dropped
