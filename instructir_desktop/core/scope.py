"""Requests that none of InstructIR's seven fixes carries out, however sure its head is.

The head maps every text to one of seven restorations, and a sentence embedding reads a
request by its topic, not its direction: "blur the background" lands on deblurring (about
100 %), "add some fog" on dehazing, "add film grain" on denoising, "remove the red eye" and
"whiten my teeth" on some fix as well. Applied, each does the opposite of what was asked or
something unrelated. Such a request gets a note (``scope_note``) that says what InstructIR
does not do; front ends treat a note as unclear (nothing applied until the user picks a fix
or applies the text as written).

The rules are anchored on the verb of a request ("add ...", "blur the ...", "make it
grainier", "crop ...", "remove the person ...", "turn it into ..."), not on a word alone, so
that a description of the photo ("a black and white photo with a lot of noise", "remove the
background noise", "apply noise reduction") keeps its fix. No model and no dependency.
"""

from __future__ import annotations

import re

__all__ = ["scope_note", "SEVEN_FIXES", "NEGATED_BEFORE"]

SEVEN_FIXES = (
    "Its seven fixes restore a photo's quality: noise, blur, rain, haze or fog, low light, "
    "detail and colour."
)

# Where a verb starts a request: the start of a clause, or after a word that leads into one
# ("please", "can you", "I want to", "and").
_LEAD = (
    r"(?:^|[,.;:!?]\s*|\b(?:and|then|but|so|also|please|pls|kindly|to|you|just|i|we|let'?s|"
    r"maybe|now|me)\s+)"
)
# What follows a flaw's name when the text asks to take it away ("noise reduction").
_NOT_ADDED = (
    r"(?!\s*-?\s*(?:\w+\s+)?(?:reduction|removal|remover|free|less|filter(?:ing)?|"
    r"suppression|cleanup|clean-up|correction|canceling|cancelling)\b)"
)
_DEGREE = (
    r"(?:(?:a\s+(?:bit|little|lot)|(?:a\s+)?little|bit|more|slightly|somewhat|even|really|"
    r"very|much|too)\s+)*"
)
_ADD_VERB = (
    r"\b(?:add|adding|put|putting|apply|applying|introduce|simulate|simulating|"
    r"give\s+(?:it|this|the\s+(?:photo|picture|image|shot))|create|creating)\s+"
)
_ADD_WORDS = (
    r"(?:(?:a|an|some|more|little|bit|of|lot|lots|subtle|slight|light|heavy|nice|soft|fake|"
    r"artificial|the|film|vintage|analog|analogue|cinematic|realistic|gaussian|motion|lens|"
    r"background|atmospheric|dreamy|strong|grainy)\s+)*"
)
# Words of a restoration, which stay one when a thing follows ("a noise filter").
_RESTORED = (
    r"(?:noise|denoise|denoising|grain|sharpen\w*|deblur\w*|blur|haze|dehaze|fog|rain|derain|"
    r"reduction|clarity|detail|details|contrast|colou?r|correction|enhancement|quality)"
)
_MAKE_IT = (
    r"\bmake\s+(?:it|this|that|everything|them|the\s+(?:photo|picture|image|shot|background|"
    r"sky|scene|whole\s+thing))\s+(?:look\s+|seem\s+|appear\s+)?"
)


def _added(nouns: str, adjectives: str) -> re.Pattern:
    """A request to add a flaw: "add some grain", "make it grainier"."""
    return re.compile(
        rf"{_ADD_VERB}{_ADD_WORDS}(?:{nouns})\b{_NOT_ADDED}"
        rf"|{_MAKE_IT}{_DEGREE}(?:{adjectives})\b",
        re.IGNORECASE,
    )


_RULES: list[tuple[re.Pattern, str]] = [
    (
        re.compile(
            rf"{_ADD_VERB}{_ADD_WORDS}(?:blur|bokeh|defocus)\b{_NOT_ADDED}"
            rf"|{_MAKE_IT}{_DEGREE}(?:blurr?y|blurrier|blurred|out\s+of\s+focus|dreamy)\b"
            rf"|{_LEAD}(?:blur|blurring|defocus)\s+(?:out\s+)?(?:the|my|his|her|their|"
            r"this|that|it|everything|a\s+bit|slightly|some|faces?|backgrounds?)\b"
            r"|\bsoften\s+(?:the\s+|my\s+)?(?:background|photo|picture|image|edges|focus)\b"
            # Sharpening already overdone: deblurring would sharpen further.
            r"|\b(?:too|overly|way\s+too)\s+sharp(?:ened)?\b|\bover[\s-]?sharpen\w*"
            rf"|{_MAKE_IT}{_DEGREE}(?:softer|less\s+sharp)\b",
            re.IGNORECASE,
        ),
        "InstructIR takes blur away; it cannot add blur (a blurred background, a soft or "
        "dreamy look) or undo sharpening.",
    ),
    (
        _added(r"fog|haze|mist|smog|smoke", r"foggy|foggier|hazy|hazier|misty|mistier|smoky"),
        "InstructIR takes haze and fog away; it cannot add them.",
    ),
    (
        _added(
            r"noise|grain|film\s+grain|graininess|(?:grainy|noisy)\s+(?:\w+\s+)?(?:look|effect|"
            r"texture|feel|style)",
            r"grainy|grainier|noisy|noisier|gritty",
        ),
        "InstructIR takes noise and grain away; it cannot add them (a film-grain look).",
    ),
    (
        re.compile(
            rf"{_ADD_VERB}{_ADD_WORDS}(?:rain|raindrops|rain\s+drops|rain\s+streaks|snow)\b"
            rf"{_NOT_ADDED}|\bmake\s+it\s+(?:rain|snow)\b|{_MAKE_IT}{_DEGREE}(?:rainy|snowy)\b",
            re.IGNORECASE,
        ),
        "InstructIR takes rain away; it cannot add rain or snow.",
    ),
    (
        re.compile(
            rf"{_LEAD}(?:crop|rotate|straighten|flip|mirror|resize|downscale|downsize|shrink|"
            r"scale\s+down|trim|reframe)\b(?!\s+(?:\w+\s+)?(?:bigger|larger|up)\b)"
            rf"|{_MAKE_IT}(?:smaller|square|portrait|landscape|vertical|horizontal)\b"
            r"|\b(?:change|fix)\s+(?:the\s+)?(?:aspect\s+ratio|orientation|perspective)\b"
            r"|\b(?:horizon|picture|photo|image)\s+is\s+(?:crooked|tilted|upside\s+down|sideways)\b",
            re.IGNORECASE,
        ),
        "InstructIR does not crop, rotate, flip or resize a photo.",
    ),
    (
        re.compile(
            r"\b(?:remove|erase|delete|get\s+rid\s+of|take\s+out|take\s+away|clone\s+out|"
            r"edit\s+out|photoshop\s+out|cut\s+out|hide)\s+"
            r"(?:(?:the|a|an|that|this|those|these|all|my|his|her|their|some|every|any)\s+)*"
            r"(?:(?!(?:blurr?y|noisy|grainy|hazy|foggy|misty|dark|dim|rainy|soft)\b)\w+\s+)?"
            r"(?:person|people|ex|husband|wife|boyfriend|girlfriend|man|woman|men|women|guy|guys|girl|boy|kids?|child|"
            r"children|tourists?|crowd|photobombers?|strangers?|cars?|birds?|trash|rubbish|"
            r"litter|objects?|watermarks?|logos?|text|writing|date\s*stamp|time\s*stamp|"
            r"signature|caption|wires?|power\s*lines?|cables?|poles?|red[\s-]?eyes?|"
            r"blemish(?:es)?|pimples?|acne|zits?|wrinkles?|scratch(?:es)?|dust|dust\s+spots|"
            r"tears?|creases?|folds?|reflections?|background|sky|glasses|tattoos?|double\s+chin|"
            r"braces|stains?|fingers?|thumb|lens\s+flare|flare|sun\s+flare|glare|shadow\s+of\s+me)\b"
            r"(?!['’]s)(?!\s+(?:noise|grain|blur|haze|fog|rain|detail|details|colou?rs?|"
            r"contrast|sharpness|clarity|brightness|exposure|tones?|quality|graininess|"
            r"blurriness|haziness|darkness)\b)"
            r"|\bred[\s-]?eyes?\b"
            r"|\b(?:replace|change|swap)\s+(?:the\s+)?(?:sky|background|face|person)\b"
            r"|\btransparent\b"
            # Damage described rather than asked about: "the scan has dust and scratches".
            r"|\b(?:has|have|with|full\s+of|covered\s+(?:in|with)|there\s+(?:are|is)|there['’]s)\s+"
            r"(?:\w+\s+){0,3}?(?:scratch(?:es)?|dust\s+spots|dust\s+and\s+scratches|creases|"
            r"tears|stains|blemish(?:es)?)\b",
            re.IGNORECASE,
        ),
        "InstructIR does not remove or replace objects, people, text, red eye, blemishes or "
        "scratches.",
    ),
    (
        re.compile(
            r"\b(?:whiten|whitening|brighten)\s+(?:\w+\s+)?teeth\b"
            r"|\b(?:smooth|smoothen|smoothing|soften|retouch|airbrush)\s+(?:(?:the|my|his|her|"
            r"their|our)\s+)?(?:skin|face|faces|complexion)\b"
            r"|\bmake\s+(?:me|her|him|them|us|my\s+\w+|his\s+\w+|her\s+\w+)\s+(?:look\s+)?"
            r"(?:a\s+bit\s+|more\s+)?(?:thinner|slimmer|younger|older|prettier|taller|happier|"
            r"skinnier|fatter|bigger|smaller|thin|slim|young|pretty|tall|tan|tanned|smile)\b"
            r"|\b(?:open\s+(?:my|his|her|their)\s+eyes|fix\s+(?:my|his|her|their)\s+hair)\b"
            r"|\b(?:swap|switch)\s+(?:the\s+|our\s+)?faces\b|\bface[\s-]?swap",
            re.IGNORECASE,
        ),
        "InstructIR does not retouch faces or bodies.",
    ),
    (
        re.compile(
            r"\b(?:make|turn|convert|change|render|switch|transform|redo|paint)\s+"
            r"(?:(?:it|this|that|the|my|photo|picture|image|shot|whole|thing|one)\s+){0,3}"
            r"(?:(?:in|into|to|like)\s+)?(?:(?:look|looking)\s+)?(?:(?:like|as)\s+)?"
            r"(?:(?:a|an)\s+)?(?:(?!(?:less|not|fewer|too)\b)\w+\s+)?"
            r"(?:black\s*(?:and|&|n)\s*white|b\s*&\s*w|b/w|bw|monochrome|gr[ae]yscale|sepia|cartoons?|painting|paintings|sketch|drawing|anime|watercolou?r|"
            r"pop\s+art|pixel\s+art|comic|polaroid|vintage|retro|old\s+photo|duotone|"
            r"negative|infrared|hdr\s+look|cinematic\s+look|film\s+look)\b"
            r"(?!\s+(?:photo|picture|image|shot|pic|print|scan)s?\b)"  # what the photo is
            rf"|{_LEAD}desaturate\b|\bin\s+the\s+style\s+of\b|\b(?:sepia|black\s+and\s+white)\s+"
            r"(?:filter|effect|look|tone|conversion)\b"
            r"|\b(?:give|add|apply|want|get|go\s+for)\s+(?:it\s+|this\s+|me\s+)?(?:\w+\s+){0,2}?"
            r"(?:vintage|retro|film|polaroid|sepia|old[\s-]school|analog(?:ue)?|instagram)\s+"
            r"(?:look|feel|vibe|effect|style|filter|aesthetic)\b"
            # An era or medium: "make it look old", "like film", "like it was taken in the 80s".
            rf"|{_MAKE_IT}(?:more\s+|a\s+bit\s+|like\s+(?:it\s+(?:was|is)\s+(?:taken|shot)\s+"
            r"(?:in|on|from|with)\s+|it['’]?s\s+from\s+)?(?:(?:the|an?)\s+)?)?"
            r"(?:old|older|aged|antique|retro|vintage|film|analog(?:ue)?|polaroid|'?\d0s|"
            r"\d{4}s?|old\s+(?:photo|picture|film))\b"
            r"(?!\s+(?:camera|lens)\b)",
            re.IGNORECASE,
        ),
        "InstructIR does not change a photo's style (black and white, sepia, a painting or a "
        "cartoon).",
    ),
    (
        re.compile(
            r"\b(?:add|put|insert|draw|place|apply)\s+"
            r"(?:(?:a|an|some|the|more|nice|subtle|little|bit|of|white|black|dark|thin|thick|"
            r"small|big|pretty|my|our)\s+)*"
            rf"(?:(?!{_RESTORED}\b)\w+\s+)?"  # "an instagram filter", "a birthday caption"
            r"(?:vignett\w*|border|frame|text|caption|title|watermark|logo|signature|stickers?|"
            r"filter|effects?|sunset|sunrise|sun|moon|stars|clouds|rainbow|lens\s+flares?|"
            r"light\s+leaks?|"
            r"person|people|birds?|snowflakes|sparkles|glow|emoji)\b"
            r"(?!\s+(?:noise|grain|blur|haze|fog|rain|detail|details|colou?rs?|contrast|"
            r"sharpness|clarity|brightness|exposure|tones?|quality)\b)",
            re.IGNORECASE,
        ),
        "InstructIR does not add things to a photo (a vignette, a frame, text, a new sky).",
    ),
]
_RULES += [
    (
        re.compile(
            r"\b(?:change|turn|paint|recolou?r|dye|make)\s+(?:the|my|his|her|their|its|our)\s+"
            r"(?!whites?\b)(?:(?!less|more|too|look)\w+\s+){1,3}?(?:colou?r\s+)?(?:to\s+|into\s+)?"
            r"(?:red|blue|green|yellow|pink|purple|orange|brown|blonde?|gold(?:en)?|silver|"
            r"black|white|grey|gray)\b(?!\s*(?:and|&|n)\s*(?:white|black)\b)"
            r"|\b(?:change|alter)\s+the\s+colou?rs?\s+of\s+(?:the|my|his|her|their|our)\s+"
            r"(?!(?:whole\s+)?(?:photo|picture|image|shot|pic)\b)\w+",
            re.IGNORECASE,
        ),
        "InstructIR does not recolour parts of a photo (a shirt, a car, the sky); its colour "
        "fix corrects the colour and tone of the whole photo.",
    ),
    (
        re.compile(
            r"\bchromatic\s+aberrations?\b|\b(?:purple|colou?r|green|magenta)\s+fring\w*"
            r"|\b(?:lens|barrel|pincushion|fish[\s-]?eye)\s+distortion\b|\bfish[\s-]?eye\b"
            r"|\bvignett\w*|\bmoir[eé]\b|\bdark\s+corners\b"
            r"|\bcorners\s+(?:are|look)\s+(?:\w+\s+)?dark(?:er)?\b",
            re.IGNORECASE,
        ),
        "InstructIR does not correct lens faults (colour fringes, distortion, dark corners) or "
        "moiré.",
    ),
    (
        # The last edit, not the photo: "undo", "do it again", "stronger", "that's too much".
        re.compile(
            rf"{_LEAD}(?:undo|redo|revert|reset)\b(?!\s+(?:(?:the|this|that|all|some)\s+)?"
            r"(?:\w+\s+)?(?:blur|noise|grain|haze|fog|rain|darkness|shake|distortion)\b)"
            r"|\bgo\s+back\s+to\s+(?:the\s+)?(?:original|previous|last|before)\b"
            r"|^(?:(?:ok|okay|now|please|pls|just|hmm|no|nope|ugh|wow|yes|nice)\W*\s+)*"
            r"(?:go\s+back|(?:do\s+(?:it|that|this)\s+|same\s+|once\s+more\s+)?again|"
            r"(?:(?:a\s+)?(?:bit|little|lot|much|way|even|slightly)\s+)*(?:more|less|stronger|"
            r"weaker|harder|softer)|(?:(?:that|it|this)(?:['’]s|\s+is|\s+was)\s+)?(?:(?:way|far|"
            r"a\s+bit|a\s+little|slightly)\s+)?(?:too\s+(?:much|strong|weak|little)|overdone|"
            r"not\s+enough|worse|better\s+before))"
            r"(?:\s+(?:again|but\s+stronger|but\s+weaker|please|pls|thanks))*\W*$",
            re.IGNORECASE,
        ),
        "This is about the last edit, not about what is wrong with the photo: undo it, or set "
        "its strength, in the layers.",
    ),
]
# Toning colour or contrast down: the colour fix raises saturation and contrast on every
# photo measured (docs/benchmarks.md, "What the colour fix does"), so it would do the opposite.
_STRONG = r"(?:saturated|saturation|vivid|colou?rful|contrasty|punchy|garish|intense|loud)"
_TONED = r"(?:contrast|saturation|vibrance|vividness|colou?r\s+intensity|colou?rs?)"
_RULES.append(
    (
        re.compile(
            rf"\b(?:too|overly|way\s+too|far\s+too|much\s+too)\s+{_STRONG}\b"
            r"|\bover[\s-]?saturat\w*|\btoo\s+much\s+(?:contrast|saturation|colou?r)\b"
            r"|\b(?:reduce|lower|decrease|tone\s+down|dial\s+down|turn\s+down|bring\s+down|"
            r"cut|drop|mute|soften|lessen)\s+(?:(?:the|its|some|a\s+bit\s+of|all\s+the)\s+)?"
            rf"{_TONED}\b(?!\s+(?:noise|cast|fringing|fringes|banding|blotches|temperature)\b)"
            rf"|\b(?:tone|dial|turn|bring)\s+(?:the\s+)?{_TONED}\s+down\b"
            rf"|{_MAKE_IT}{_DEGREE}(?:(?:less|not\s+so)\s+{_STRONG}|muted|more\s+muted|"
            r"subdued|desaturated|flatter|duller)\b(?!\s+than\b)"
            r"|\bless\s+(?:saturat\w*|contrast\w*|vivid)\b(?!\s+than\b)",
            re.IGNORECASE,
        ),
        "InstructIR cannot tone colours or contrast down: its colour fix makes both stronger, "
        "so this would make them stronger still.",
    )
)
# White balance: the colour fix makes photos warmer whatever the words ask (docs/benchmarks.md,
# "What the colour fix does": mean b* +6 on the photos as they are, a yellow cast made about
# twice as strong, half of a blue cast taken away, on the bundled pack). A request to cool a
# photo or take a warm cast away would get the opposite. Warming, a blue or cold cast ("too
# blue", "warmer white balance") and white balance or a colour cast named without a direction
# ("fix the white balance": the paper's own wording for its colour fix, which helps a cool
# cast) keep the colour fix.
_WARM = r"(?:warm|yellow|yellowish|orange|orangey|orangy|amber)"
_WHOLE = (
    r"(?:it|this|that|everything|(?:the|my)\s+(?:photo|picture|pic|image|shot|colou?rs?|tones?|"
    r"white\s+balance|whole\s+thing))"
)
_RULES.append(
    (
        re.compile(
            rf"\b(?:too|overly|way\s+too|far\s+too|much\s+too|so)\s+{_WARM}\b"
            rf"|\b{_WARM}\s+(?:colou?r\s+)?(?:cast|tint)s?\b|\btungsten\s+(?:cast|tint|light)\b"
            rf"|\bless\s+{_WARM}\b|\b(?:reduce|remove|lower|decrease|cut|tone\s+down|take\s+out|"
            rf"get\s+rid\s+of)\s+(?:the\s+|some\s+|all\s+the\s+)?(?:warmth|yellowness|"
            rf"{_WARM}\s+(?:tones?|hues?|colou?rs?))\b"
            rf"|\b(?:make|get)\s+{_WHOLE}\s+(?:(?:look|feel|seem|a\s+bit|bit|a\s+little|little|"
            r"slightly|more|much|a\s+touch)\s+)*(?:cooler|colder|bluer|more\s+blue)\b"
            rf"|\bcool\s+(?:{_WHOLE}\s+)?down\b(?:\s+{_WHOLE})?"
            r"|\bcooler\s+(?:tones?|colou?rs?|white\s+balance|temperature|look|feel|tint)\b"
            r"|^(?:(?:a\s+)?(?:bit|little|touch|tad|lot|much|slightly)\s+)*(?:cooler|colder)"
            r"(?:\s+(?:please|pls|plz))?\W*$"
            r"|\b(?:lower|reduce|decrease|drop)\s+(?:the\s+)?(?:colou?r\s+)?temperature\b"
            r"|\b(?:too|overly|so)\s+warm\s+(?:white\s+balance|colou?r\s+temperature)\b",
            re.IGNORECASE,
        ),
        "InstructIR cannot correct white balance or make a photo cooler: its colour fix makes "
        "photos warmer, which takes a blue cast partly away but makes a yellow or orange one "
        "stronger.",
    )
)
# Snow over the scene: the head reads "remove the snow" as the colour fix and "snowflakes" as
# denoising. The rain removal, the nearest fix, leaves about three quarters of the brightness
# that white flakes (round, or short falling streaks) add to a photo, against under half of
# rain streaks', so the flakes stay plainly visible (docs/benchmarks.md, "What the rain removal
# does to snow"). Snow as the subject ("a snowy mountain", "the snow looks grey") is no such
# request.
_SNOW = r"(?:snow\s*flakes?|snowfall|snow\s*storm|falling\s+snow|snow)"
_RULES.append(
    (
        re.compile(
            r"\b(?:remove|removing|erase|delete|get\s+rid\s+of|take\s+(?:out|away)|clear|"
            r"clean\s+(?:up|out)|reduce|eliminate|wipe\s+(?:out|away)|filter\s+out|lose)\s+"
            r"(?:(?:the|all|those|these|this|that|some|of|falling|white|little|tiny|annoying|"
            rf"flying)\s+)*{_SNOW}\b(?!\s+(?:glare|noise|grain|blur|haze|fog|cast|reflections?|"
            r"light)\b)"
            r"|\bsnow\s*flakes?\b|\bfalling\s+snow\b|\bde-?snow\w*|\bsnow\s+removal\b"
            r"|\bsnow(?:fall)?\s+(?:is\s+|was\s+)?(?:falling|blocking|in\s+the\s+way|everywhere|"
            r"all\s+over|in\s+front)\b|\bit\s+(?:is|was|['’]s)\s+snowing\b",
            re.IGNORECASE,
        ),
        "InstructIR takes rain away, not snow: its rain removal leaves most snowflakes in place.",
    )
)
NEGATED_BEFORE = re.compile(
    r"(?:\bnot|n['’]t|\b(?:dont|doesnt|didnt|wont|cant|cannot|never|no|without|avoid|avoiding|"
    r"stop|rather\s+than|instead\s+of))\s+(?:\w+\s+){0,2}(?:any\s+|much\s+|even\s+)?$",
    re.IGNORECASE,
)
"""A negation just before a match ("don't add grain", "I do not want to crop it")."""


def scope_note(text: str) -> str:
    """What InstructIR does not do, when ``text`` asks for it (and does not negate it);
    "" otherwise."""
    for pattern, what in _RULES:
        for m in pattern.finditer(text):
            if not NEGATED_BEFORE.search(text[: m.start()]):
                return f"{what} {SEVEN_FIXES}"
    return ""
