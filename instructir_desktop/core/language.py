"""Is an instruction English words at all? The text encoders were trained on English, and
they map German, French, gibberish ("asdkjh qwe zxc") to some fix with high confidence, so
such text is treated as unclear instead of applied.

No model and no dependency: a word is English when it is in the shipped word list
(``resources/language/english-words.txt.gz``: SCOWL's American English words, the training
prompts' words and chat/photo shorthand, built by ``training/wordlist.py``) or one typo away
from a word in it; a word is foreign when it is a common function word of German, French,
Spanish, Italian, Dutch or Portuguese, or has their accented letters. A message reads as
English unless most of its words are not English, or foreign words outnumber English ones.
"""

from __future__ import annotations

import gzip
import re
import threading

from .resources import resource_path

__all__ = ["NOT_ENGLISH_NOTE", "english_words", "language_note", "reads_as_english"]

NOT_ENGLISH_NOTE = (
    "InstructIR reads instructions in English, and this does not read as English words. Say "
    "what is wrong with the photo in English, e.g. 'too dark', 'remove the noise', 'it is "
    "blurry'."
)
WORDS_FILE = ("language", "english-words.txt.gz")
ENGLISH_SHARE = 0.5
"""Below this share of English words a message is not English (gibberish, or a language
whose function words are not listed)."""

# Frequent words of the six languages users most often try, minus those that are also
# everyday English ("die", "also", "is", "in", "me", "no", "hat", "per", "pour", "den", "sin"...).
_FOREIGN = frozenset(
    """
    das der dem des ein eine einen einem einer und ist nicht sehr zu bitte mach mache
    mach's machen mir mich bild foto fotos dunkel heller dunkler unscharf scharf
    schärfer rauschen entferne entfernen etwas viel zuviel zu zum zur auch noch nur aber
    oder wie ich du sie wir ihr es ist sind wird kann können bitte danke
    le les des une sont trop très tres pas avec sur dans mais ou je tu il
    elle nous vous ils elles rends rendre fais faire moins sombre claire
    clair flou floue bruit enlève enlever enlevez c'est s'il qu'il qu'elle l'image
    merci svp beaucoup peu
    el los las un una es está esta este muy más por para pero hazla haz
    oscura oscuro clara claro borrosa borroso ruido quita quitar elimina eliminar demasiado
    gracias mucho poco imagen
    il lo gli della delle dello è più piu troppo molto rendi rendila fai togli
    rimuovi scura scuro chiara chiaro sfocata sfocato rumore grazie favore immagine
    questa questo quella che di del nella nel sono mio
    la en est du au aux ce cette ces qui que mon ma mes ton ta sa peux peut fait tout
    del al que mi tu su esto eso hay
    het een de te niet maak maken donker lichter licht wazig ruis verwijder alsjeblieft
    alstublieft graag dank bedankt ik hij zij wij jij deze dit dat veel erg van op met voor
    zijn weg haal kun je mijn wat
    uma muito mais menos com sem está esta escura escuro clara
    desfocada desfocado ruído tirar remova remover deixe deixar obrigado obrigada da dos na
    em desta deste essa esse melhore ficou
    imagem
    nette nettes lumineuse lumineux corrige corriger supprime supprimer augmente agrandis
    agrandir mehr weniger schärfen verbessern verbessere aufhellen mejora mejorar aclara
    aclarar nitida nitido migliora migliorare schiarisci scherper verbeter helderder clareie
    """.split()
)
_FOREIGN_LETTERS = set("äöüßàâçéèêëîïôûùœãõñìòáíóúå")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")

_words: frozenset[str] | None = None
_words_lock = threading.Lock()


def english_words() -> frozenset[str]:
    """The shipped English word list (loaded once)."""
    global _words
    with _words_lock:
        if _words is None:
            with gzip.open(resource_path(*WORDS_FILE), "rt", encoding="utf-8") as fh:
                _words = frozenset(line.strip() for line in fh if line.strip())
        return _words


def reads_as_english(text: str) -> bool:
    """True unless most words are not English, or foreign words outnumber English ones.
    Text without words (numbers, emoji) is left to other checks."""
    words = _WORD.findall(text.lower().replace("’", "'"))
    english = foreign = mashed = counted = 0
    for word in words:
        kind = _kind(word)
        if kind == "":
            continue
        counted += 1
        english += kind == "en"
        foreign += kind == "foreign"
        mashed += kind == "mash"
    if counted == 0:
        return True
    if foreign >= 2 and foreign >= english:
        return False
    share = english / counted
    if mashed and share <= ENGLISH_SHARE:
        return False
    return share >= ENGLISH_SHARE and not (foreign and english == 0)


def language_note(text: str) -> str:
    """NOT_ENGLISH_NOTE for text that does not read as English, else ""."""
    return "" if reads_as_english(text) else NOT_ENGLISH_NOTE


def _kind(word: str) -> str:
    """The word's kind: en, foreign, mash, unknown, or "" when it says nothing (a letter)."""
    known = english_words()
    if word in _FOREIGN:
        return "foreign"
    if word in known:
        return "en"
    parts = [p for p in word.split("'") if p]
    if len(parts) > 1:  # "it's", "photo's": the word before the apostrophe decides
        return _kind(parts[0]) or "en"
    if len(word) == 1 and word.isascii():
        return ""
    if _FOREIGN_LETTERS.intersection(word):
        return "foreign"
    if _is_mash(word):
        return "mash"
    if len(word) >= 4 and word.isascii() and _one_typo_from(word, known):
        return "en"
    return "unknown"


def _is_mash(word: str) -> bool:
    """Keys hit, not a word: one keyboard row ("asdkjh", "uiop"), no vowel ("zxcvb"), or
    one letter again and again ("aaaa")."""
    if not word.isascii() or len(word) < 3:
        return False
    letters = set(word)
    return (
        any(letters <= set(row) for row in _KEY_ROWS)
        or not letters & set("aeiouy")
        or re.search(r"(.)\1\1", word) is not None
        or len(letters) <= len(word) / 3
    )


def _one_typo_from(word: str, known: frozenset[str]) -> bool:
    """A deleted, inserted, swapped or wrong letter away from a known word ("nosie")."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    for left, right in splits:
        if right and left + right[1:] in known:
            return True
        if len(right) > 1 and left + right[1] + right[0] + right[2:] in known:
            return True
        for c in _LETTERS:
            if right and left + c + right[1:] in known:
                return True
            if left + c + right in known:
                return True
    return False
