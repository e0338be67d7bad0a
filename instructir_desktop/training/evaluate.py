"""Evaluate a pack on the held-out data: PSNR/SSIM per task vs the degraded input and a
classical baseline, plus intent accuracy on the held-out instructions.

    python -m instructir_desktop.training.evaluate --pack resources/packs/instructir-lite

Fixed seeds: the same degraded inputs every run. Denoise is measured at sigma=25, low light on
the real LOL validation pairs (and on synthetic darkening, reported separately).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

from ..core.descriptor import psnr
from ..core.packs import TASKS
from ..core.restorer import Restorer
from .baselines import BASELINE_NAMES, BASELINES
from .data import default_data_root, load_dataset, to_tensor
from .degrade import DEGRADERS, add_gaussian_noise
from .prompts import UNRELATED, load_corpus, split

__all__ = ["main", "evaluate_images", "evaluate_intents"]


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0))


def _cases(data, task: str, limit: int):
    """(clean, degraded) float32 HxWx3 pairs for one task, deterministic."""
    if task == "lowlight_real":
        for lo, hi in list(zip(data.low, data.high))[:limit]:
            yield hi.astype(np.float32) / 255, lo.astype(np.float32) / 255
        return
    for i, photo in enumerate(data.photos[:limit]):
        clean = to_tensor(photo)
        rng = np.random.default_rng(1000 * i + TASKS.index(task.split("_")[0]))
        if task == "denoise":
            bad = add_gaussian_noise(clean, 25.0, seed=i)
        else:
            bad = DEGRADERS[task.split("_")[0]](clean, rng)
        yield (clean.permute(1, 2, 0).numpy().copy(), bad.permute(1, 2, 0).numpy().copy())


def evaluate_images(restorer: Restorer, data, limit: int, held_out: dict[str, list[str]]):
    rows = []
    for task in (*TASKS, "lowlight_real"):
        base_task = task.split("_")[0]
        prompts = held_out[base_task]
        acc = {
            k: []
            for k in ("in_psnr", "in_ssim", "base_psnr", "base_ssim", "model_psnr", "model_ssim")
        }
        t0 = time.perf_counter()
        for n, (clean, bad) in enumerate(_cases(data, task, limit)):
            out = restorer.restore(bad, prompts[n % len(prompts)])
            base = BASELINES[base_task](bad)
            for key, img in (("in", bad), ("base", base), ("model", out)):
                acc[f"{key}_psnr"].append(psnr(img, clean))
                acc[f"{key}_ssim"].append(_ssim(img, clean))
        row = {
            "task": task,
            "n": len(acc["in_psnr"]),
            "baseline": BASELINE_NAMES[base_task],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        row.update({k: round(float(np.mean(v)), 3) for k, v in acc.items()})
        rows.append(row)
        print(_format_row(row), flush=True)
    return rows


def evaluate_intents(restorer: Restorer, held) -> dict:
    correct, total, unrelated_conf = 0, 0, []
    confusions: dict[str, int] = {}
    for p in held:
        intent = restorer.intent(p.text)
        if p.task == UNRELATED:
            unrelated_conf.append(intent.confidence)
            continue
        total += 1
        if intent.task == p.task:
            correct += 1
        else:
            key = f"{p.task}->{intent.task}"
            confusions[key] = confusions.get(key, 0) + 1
    return {
        "accuracy": round(correct / max(total, 1), 4),
        "n": total,
        "unrelated_mean_confidence": round(float(np.mean(unrelated_conf or [0])), 3),
        "confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])),
    }


def _format_row(r: dict) -> str:
    return (
        f"{r['task']:<14} n={r['n']:<3} input {r['in_psnr']:6.2f} dB/{r['in_ssim']:.3f}  "
        f"{r['baseline']:<24} {r['base_psnr']:6.2f} dB/{r['base_ssim']:.3f}  "
        f"model {r['model_psnr']:6.2f} dB/{r['model_ssim']:.3f}  "
        f"(model-baseline {r['model_psnr'] - r['base_psnr']:+.2f} dB)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pack", type=Path, default=Path("resources/packs/instructir-lite"))
    ap.add_argument("--data", type=Path, default=default_data_root())
    ap.add_argument("--limit", type=int, default=36, help="images per task")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--examples", type=int, default=10, help="held-out prompts to show")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    restorer = Restorer(args.pack, device="cpu", backend="torch")
    _, held = split(load_corpus())
    intents = evaluate_intents(restorer, held)
    print(
        f"intent accuracy on {intents['n']} held-out instructions: "
        f"{intents['accuracy'] * 100:.1f}%  (unrelated prompts: mean confidence "
        f"{intents['unrelated_mean_confidence'] * 100:.0f}%)"
    )
    rng = np.random.default_rng(3)
    examples = [held[i] for i in rng.choice(len(held), args.examples, replace=False)]
    for p in examples:
        it = restorer.intent(p.text)
        print(f"  {p.text!r:<60} -> {it.task} ({it.confidence * 100:.0f}%) [true: {p.task}]")
    by_task = {t: [p.text for p in held if p.task == t] for t in TASKS}
    data = load_dataset(args.data, "val")
    rows = evaluate_images(restorer, data, args.limit, by_task)
    result = {
        "pack": restorer.manifest.id,
        "version": restorer.manifest.version,
        "intents": intents,
        "tasks": rows,
        "examples": [
            {"text": p.text, "true": p.task, "predicted": restorer.intent(p.text).task}
            for p in examples
        ],
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
