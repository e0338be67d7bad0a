"""What the colour fix (enhance) does to saturation, contrast, brightness and warmth, whatever
the instruction asks: the measurements behind core.scope's notes for "too saturated" / "reduce
the contrast" and for "make it cooler" / "too yellow".

    python benchmarks/colour_fix.py [--photos DIR] [--count 12] [--pack instructir-lite] [--warmth]

Restores each photo with instructions that ask to tone colour or contrast down and, for
comparison, one that asks to boost them; prints per instruction the head's task, the mean change
of saturation ((max - min) / max per pixel), of contrast (the standard deviation of luma) and
of mean brightness, with how many photos went up; then one JSON line.

``--warmth`` instead gives each photo a warm cast (red up, blue down) and a cool one (the
reverse) and restores the photo as it is and both cast copies with instructions about white
balance and colour temperature; prints per instruction and cast the mean change of warmth (mean
b* of CIELAB: positive is yellow, negative is blue), with how many photos got warmer, and the
share of the cast taken away (1 = back to the photo's own b*, 0 = unchanged, negative = the
cast made stronger); then one JSON line. Photos: ``--photos`` (JPEG/PNG files), by default the
project's training photos (../shared/data/train/photos) or, without them, the bundled sample.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXTS = (
    "the colours are too saturated",
    "reduce the contrast",
    "too much contrast",
    "make the colours more muted",
    "enhance the colours",
)


def saturation(rgb: np.ndarray) -> float:
    hi, lo = rgb.max(2), rgb.min(2)
    return float(((hi - lo) / (hi + 1e-6)).mean())


def contrast(rgb: np.ndarray) -> float:
    return float((rgb @ np.array([0.299, 0.587, 0.114], np.float32)).std())


# (instruction, cast of the photo it is given): "warm" and "cool" are cast copies, "none" the
# photo as it is.
WARMTH_TEXTS = (
    ("make it cooler", "none"),
    ("make it warmer", "none"),
    ("make it cooler", "warm"),
    ("too warm", "warm"),
    ("too yellow", "warm"),
    ("fix the white balance", "warm"),
    ("remove the colour cast", "warm"),
    ("enhance the colours", "warm"),
    ("make it warmer", "cool"),
    ("too blue", "cool"),
    ("fix the white balance", "cool"),
    ("remove the colour cast", "cool"),
    ("enhance the colours", "cool"),
)
CASTS = {"none": (1.0, 1.0, 1.0), "warm": (1.12, 1.0, 0.82), "cool": (0.85, 1.0, 1.12)}


def warmth(rgb: np.ndarray) -> float:
    """Mean b* (CIELAB, D65) of an sRGB image: yellow is positive, blue negative."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    z = lin @ np.array([0.0193, 0.1192, 0.9505], np.float32) / 1.08883

    def f(t: np.ndarray) -> np.ndarray:
        return np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)

    return float((200 * (f(y) - f(z))).mean())


def measure_warmth(restorer, files: list[Path], pack: str) -> None:
    from instructir_desktop.core.images import load_image

    rows = {}
    for text, cast in WARMTH_TEXTS:
        intent = restorer.intent(text)
        rows[(text, cast)] = {"task": intent.task, "confidence": round(intent.confidence, 3)}
        rows[(text, cast)]["d"] = []
    for path in files:
        own = load_image(path).pixels[..., :3]
        for (text, cast), row in rows.items():
            before = np.clip(own * np.array(CASTS[cast], np.float32), 0, 1)
            after = restorer.restore(before, text)
            shift = warmth(after) - warmth(before)
            cast_b = warmth(before) - warmth(own)
            row["d"].append((shift, -shift / cast_b if cast != "none" else 0.0))
    print(f"{len(files)} photos, pack {pack}")
    out = {"pack": pack, "photos": len(files), "instructions": []}
    for (text, cast), row in rows.items():
        d = np.array(row.pop("d"))
        row.update(
            text=text,
            cast=cast,
            warmth=round(float(d[:, 0].mean()), 2),
            warmer=int((d[:, 0] > 0).sum()),
        )
        if cast != "none":
            row["cast_removed"] = round(float(d[:, 1].mean()), 2)
        out["instructions"].append(row)
        removed = f", cast taken away {row['cast_removed']:+.0%}" if cast != "none" else ""
        print(
            f"{text!r} on a {cast} cast: {row['task']} {row['confidence']:.0%}; b* "
            f"{row['warmth']:+.2f} (warmer in {row['warmer']}){removed}"
        )
    print(json.dumps(out))


def photos(folder: Path | None, count: int) -> list[Path]:
    from instructir_desktop.core.resources import resource_path

    folder = folder or ROOT.parent / "shared" / "data" / "train" / "photos"
    found = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return found[200 : 200 + count] or found[:count] or [resource_path("sample", "sample.jpg")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--pack", default="instructir-lite")
    parser.add_argument("--warmth", action="store_true", help="measure warmth (white balance)")
    args = parser.parse_args()

    from instructir_desktop.core.images import load_image
    from instructir_desktop.core.restorer import Restorer
    from instructir_desktop.core.store import ModelStore

    restorer = Restorer(ModelStore().locate(args.pack), device="cpu")
    files = photos(args.photos, args.count)
    if args.warmth:
        measure_warmth(restorer, files, args.pack)
        return
    rows = {}
    for text in TEXTS:
        intent = restorer.intent(text)
        rows[text] = {"task": intent.task, "confidence": round(intent.confidence, 3), "d": []}
    for path in files:
        before = load_image(path).pixels
        for text in TEXTS:
            after = restorer.restore(before, text)
            rows[text]["d"].append(
                (
                    saturation(after) - saturation(before),
                    contrast(after) - contrast(before),
                    float(after.mean() - before.mean()),
                )
            )
    print(f"{len(files)} photos, pack {args.pack}")
    out = {"pack": args.pack, "photos": len(files), "instructions": {}}
    for text, row in rows.items():
        d = np.array(row.pop("d"))
        row.update(
            saturation=round(float(d[:, 0].mean()), 4),
            saturation_up=int((d[:, 0] > 0).sum()),
            contrast=round(float(d[:, 1].mean()), 4),
            contrast_up=int((d[:, 1] > 0).sum()),
            brightness=round(float(d[:, 2].mean()), 4),
        )
        out["instructions"][text] = row
        print(
            f"{text!r}: {row['task']} {row['confidence']:.0%}; saturation {row['saturation']:+.3f}"
            f" (up in {row['saturation_up']}), contrast {row['contrast']:+.3f}"
            f" (up in {row['contrast_up']}), mean {row['brightness']:+.3f}"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
