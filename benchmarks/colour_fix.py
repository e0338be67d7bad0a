"""What the colour fix (enhance) does to saturation, contrast and brightness, whatever the
instruction asks: the measurement behind core.scope's note for "too saturated" / "reduce the
contrast".

    python benchmarks/colour_fix.py [--photos DIR] [--count 12] [--pack instructir-lite]

Restores each photo with instructions that ask to tone colour or contrast down and, for
comparison, one that asks to boost them; prints per instruction the head's task, the mean change
of saturation ((max - min) / max per pixel), of contrast (the standard deviation of luma) and
of mean brightness, with how many photos went up; then one JSON line. Photos: ``--photos``
(JPEG/PNG files), by default the project's training photos (../shared/data/train/photos) or,
without them, the bundled sample.
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
    args = parser.parse_args()

    from instructir_desktop.core.images import load_image
    from instructir_desktop.core.restorer import Restorer
    from instructir_desktop.core.store import ModelStore

    restorer = Restorer(ModelStore().locate(args.pack), device="cpu")
    files = photos(args.photos, args.count)
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
