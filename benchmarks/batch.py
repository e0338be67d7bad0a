"""Batch speed: photos per minute of `instructir restore` over a folder, on the bundled pack.

    python benchmarks/batch.py --count 50 --megapixels 12
    python benchmarks/batch.py --count 4 --megapixels 12 --sequential   # no overlap, to compare

Makes the photos in a temp folder (never in the repo): training photos upscaled and cropped to
4:3 at the size asked for, saved as JPEG quality 92. Runs the same pipeline as the command
line (one JobQueue, the model loaded once, ``core.batch.run_batch`` decoding the next photo
and encoding the previous one while the model works) with one instruction, and prints one
JSON line: photos per minute, wall time, and the seconds spent decoding, in the model and
encoding (summed over photos; with overlap their sum exceeds the wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHOTOS = ROOT.parent / "shared" / "data" / "train" / "photos"


def make_photos(folder: Path, count: int, megapixels: float, source: Path) -> list[Path]:
    """``count`` 4:3 JPEGs of about ``megapixels``, each from one source photo scaled up."""
    from PIL import Image

    h = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = h * 4 // 3
    sources = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    paths = []
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as im:
            im = im.convert("RGB")
            scale = max(w / im.width, h / im.height)
            big = im.resize((round(im.width * scale) + 1, round(im.height * scale) + 1))
            x0, y0 = (big.width - w) // 2, (big.height - h) // 2
            path = folder / f"photo{i:03d}.jpg"
            big.crop((x0, y0, x0 + w, y0 + h)).save(path, quality=92)
            paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--instruction", default="remove the noise")
    ap.add_argument("--source", type=Path, default=PHOTOS)
    ap.add_argument("--sequential", action="store_true", help="no overlap (for comparison)")
    args = ap.parse_args()

    from instructir_desktop.core.batch import run_batch
    from instructir_desktop.core.images import load_image, save_image
    from instructir_desktop.core.jobs import (
        JobKind,
        JobQueue,
        LoadRequest,
        ModelHost,
        RestoreRequest,
        Step,
    )
    from instructir_desktop.core.packs import LITE_ID
    from instructir_desktop.core.store import ModelStore

    with tempfile.TemporaryDirectory(prefix="instructir-batch-") as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        t0 = time.perf_counter()
        inputs = make_photos(folder / "in", args.count, args.megapixels, args.source)
        made_s = time.perf_counter() - t0
        plans = [(p, folder / "out" / p.name) for p in inputs]
        (folder / "out").mkdir()
        queue = JobQueue(ModelHost(device="cpu"))
        t0 = time.perf_counter()
        pack = ModelStore().locate(LITE_ID)
        queue.run(JobKind.LOAD, LoadRequest(pack, LITE_ID, "cpu"))
        load_s = time.perf_counter() - t0
        step = [Step(args.instruction)]

        def process(_i, _src, photo):
            return queue.run(JobKind.RESTORE, RestoreRequest(photo.pixels, step))

        def save(photo, pixels, dst):
            return save_image(photo.with_pixels(pixels), dst, quality=95)

        t0 = time.perf_counter()
        if args.sequential:
            results = []
            for src, dst in plans:
                results += run_batch([(src, dst)], process, save)
        else:
            results = run_batch(plans, process, save)
        wall = time.perf_counter() - t0
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        w, h = load_image(inputs[0]).width, load_image(inputs[0]).height
    summary = {
        "benchmark": "batch",
        "date": time.strftime("%Y-%m-%d"),
        "pack": LITE_ID,
        "backend": queue.host.describe().get("backend"),
        "photos": len(results),
        "size": f"{w}x{h}",
        "megapixels": round(w * h / 1e6, 1),
        "overlap": not args.sequential,
        "photos_per_minute": round(len(results) / wall * 60, 2),
        "wall_s": round(wall, 1),
        "decode_s": round(sum(r.decode_s for r in results), 1),
        "model_s": round(sum(r.model_s for r in results), 1),
        "encode_s": round(sum(r.encode_s for r in results), 1),
        "model_load_s": round(load_s, 1),
        "make_photos_s": round(made_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
