"""Build resources/language/english-words.txt.gz, the word list core/language.py reads.

Sources: SCOWL's American English list (the Debian package wamerican,
/usr/share/dict/american-english; permissive licence, kept in resources/language/), lower-case
entries only (capitalised ones are names); the words of the training prompts of the seven
tasks (never the held-out ones, so that the check is measured on text it has not seen); and
the shorthand of chat and photography below, which no dictionary lists.

    python -m instructir_desktop.training.wordlist [--dict /usr/share/dict/american-english]
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

from ..core.language import WORDS_FILE
from ..core.resources import resource_path
from .prompts import UNRELATED, load_corpus, split

__all__ = ["build_words", "main"]

SHORTHAND = """
    pls plz thx thanks ty ok okay lol haha hahaha omg btw tbh idk imo ugh hmm meh wow yo sup
    gonna wanna gotta kinda sorta lil bit abit alot dont cant wont isnt doesnt didnt wasnt
    arent couldnt shouldnt wouldnt hasnt havent aint im ive youre theyre thats whats
    doesn didn wasn aren couldn shouldn wouldn hasn haven isn ain
    iso hdr dslr slr mirrorless cctv jpeg jpg png tiff heic raw exif iphone android pixel
    photoshop lightroom gimp instagram insta selfie selfies bokeh vignette vignetting
    denoise denoising deblur deblurring dehaze dehazing derain deraining upscale upscaling
    upsample upres superres lowlight relight unblur declutter degrain sharpen sharpener
    pixelated pixelation jaggies moire chroma luma luminance astro astrophotography
    megapixel megapixels px dpi ppi ai ml
"""


def build_words(dictionary: Path) -> list[str]:
    """The sorted word list from a SCOWL dictionary file, the training prompts and SHORTHAND."""
    words = {
        w
        for w in dictionary.read_text(encoding="utf-8").split()
        if w.isascii() and w.isalpha() and w.islower()
    }
    train, _held_out = split(load_corpus())
    for prompt in train:
        if prompt.task == UNRELATED:  # its keyboard mashes and chat are not the list's words
            continue
        words.update(re.findall(r"[a-z]+", prompt.text.lower()))
    words.update(SHORTHAND.split())
    return sorted(words)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dict", type=Path, default=Path("/usr/share/dict/american-english"))
    args = ap.parse_args(argv)
    target = resource_path(*WORDS_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    words = build_words(args.dict)
    data = ("\n".join(words) + "\n").encode("utf-8")
    # mtime=0: the same input gives the same bytes.
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(data)
    print(f"{target}: {len(words)} words")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
