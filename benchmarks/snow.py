"""What the rain removal (and the readings of snow requests) does to snow over a photo: the
measurement behind core.scope's note that InstructIR takes rain away, not snow.

    python benchmarks/snow.py [--photos DIR] [--count 12] [--pack instructir-lite]

Each photo gets white flakes (round, about 3 px across), falling flakes (the same smeared
along a steep line) and, for comparison, the rain streaks of the training degradations;
each copy is restored with "remove the rain", "remove the snow", "snowflakes" and "remove
the noise". Printed per degradation and instruction: the head's task, PSNR to the clean photo
before and after (with how many photos gained) and the share of the brightness the flakes
added that is left where they are (100 % = untouched, 0 % = gone); then one JSON line. Photos:
as in benchmarks/colour_fix.py (the project's training photos, else the bundled sample).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colour_fix import ROOT, photos  # noqa: E402

sys.path.insert(0, str(ROOT))

TEXTS = ("remove the rain", "remove the snow", "snowflakes", "remove the noise")
KINDS = ("flakes", "falling", "rain")


def add_snow(img: np.ndarray, rng: np.random.Generator, falling: bool):
    """White flakes screened over ``img`` (H x W x 3 in [0, 1]) and where they are."""
    import torch

    from instructir_desktop.training.degrade import _conv_same, disk_kernel, motion_kernel

    h, w, _ = img.shape
    t = torch.from_numpy(img.transpose(2, 0, 1).copy())
    drops = (rng.random((h, w)) < 0.004) * rng.uniform(0.6, 1.0, (h, w))
    d = torch.from_numpy(drops.astype(np.float32))[None].expand(3, h, w).contiguous()
    flakes = _conv_same(d, disk_kernel(1.5)) * 8
    if falling:
        flakes = _conv_same(flakes, motion_kernel(7, 80.0)) * 2.5
    flakes = flakes.clamp(0, 1)
    out = (1 - (1 - t) * (1 - flakes * 0.95)).clamp(0, 1)
    return out.numpy().transpose(1, 2, 0), flakes[0].numpy() > 0.15


def add_rain(img: np.ndarray, rng: np.random.Generator):
    """The training degradations' rain streaks over ``img`` and where they are."""
    import torch

    from instructir_desktop.training.degrade import add_rain as rain

    out = rain(torch.from_numpy(img.transpose(2, 0, 1).copy()), rng).numpy().transpose(1, 2, 0)
    return out, (out - img).mean(2) > 0.06


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / max(float(((a - b) ** 2).mean()), 1e-10)))


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
    tasks = {t: restorer.intent(t) for t in TEXTS}
    rows: dict[tuple[str, str], list] = {(k, t): [] for k in KINDS for t in TEXTS}
    rng = np.random.default_rng(0)
    for path in files:
        clean = load_image(path).pixels[..., :3]
        for kind in KINDS:
            if kind == "rain":
                bad, where = add_rain(clean, rng)
            else:
                bad, where = add_snow(clean, rng, kind == "falling")
            added = float((bad - clean)[where].mean())
            for text in TEXTS:
                out = restorer.restore(bad, text)
                left = float((out - clean)[where].mean()) / added
                rows[(kind, text)].append((psnr(bad, clean), psnr(out, clean), left))
    print(f"{len(files)} photos, pack {args.pack}")
    result = {"pack": args.pack, "photos": len(files), "rows": []}
    for (kind, text), values in rows.items():
        v = np.array(values)
        row = {
            "degradation": kind,
            "text": text,
            "task": tasks[text].task,
            "psnr_before": round(float(v[:, 0].mean()), 2),
            "psnr_after": round(float(v[:, 1].mean()), 2),
            "gained": int((v[:, 1] > v[:, 0]).sum()),
            "left": round(float(v[:, 2].mean()), 3),
        }
        result["rows"].append(row)
        print(
            f"{kind:8} {text!r:20} ({row['task']}): PSNR {row['psnr_before']:.2f} -> "
            f"{row['psnr_after']:.2f} (up in {row['gained']}), left {row['left']:.0%}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
