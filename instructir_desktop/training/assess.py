"""Train and evaluate the photo assessor (``core/assess.py``): which of the seven fixes a photo
needs, from the classical estimators in ``core/assess_features.py``.

    python -m instructir_desktop.training.assess train      # writes resources/assess/assessor.json
    python -m instructir_desktop.training.assess evaluate   # held-out figures for the model card

Training photos: the training split of ``training/data.py`` (held-out photos and LOL pairs are
never seen), each clean, clean but naturally dark / soft / misty (labelled clean, so a night
scene or a shallow depth of field is not "a problem"), degraded by one task at random severities
(``training/degrade.py``) and by combinations of two; plus the real LOL low-light pairs (low:
lowlight, high: clean). The classifier is a small MLP with one sigmoid per task (several fixes
can apply at once), trained with torch and exported as plain numbers for numpy inference.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.assess import APPLY_ORDER, SUGGEST_AT, Assessor, default_weights_path
from ..core.assess_features import FEATURE_NAMES, measure
from ..core.atomic import atomic_write_text
from ..core.packs import TASKS
from .data import default_data_root, load_dataset, to_tensor
from .degrade import (
    DEGRADERS,
    add_gaussian_noise,
    add_haze,
    defocus_blur,
    downscale,
    motion_blur,
    plausible_depth,
)

__all__ = ["main", "training_samples", "evaluation_cases", "train_classifier"]

# Physical order in which a second degradation is added: the scene (haze, rain), the optics
# and motion, the sampling, the exposure, the processing, the sensor.
DEGRADE_ORDER = ("dehaze", "derain", "deblur", "superres", "lowlight", "enhance", "denoise")
HIDDEN = 32
# Loss weights, chosen on a validation split of the training photos (every 5th photo): clean
# weight 1/3/5/8 with natural weight 1-3 gave 24/13/9/7 % false suggestions on clean photos
# for 94.4/94.6/93.5/94.4 % top-1 on single degradations; 5 and 3 balance the two.
CLEAN_WEIGHT = 5.0
NATURAL_WEIGHT = 3.0


def _np(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy().astype(np.float32, copy=False)


def naturally_dark(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A night or low-key scene: deep shadows, but highlights still reach full brightness and
    the sensor was not starved (no gain cut, little noise)."""
    out = img.clamp(0, 1) ** float(rng.uniform(1.6, 2.8))
    return (out + torch.randn(img.shape) * float(rng.uniform(0, 2)) / 255).clamp(0, 1)


def shallow_focus(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Background out of focus, subject sharp: defocus blended in over part of the frame."""
    _, h, w = img.shape
    soft = defocus_blur(img, rng, radius=float(rng.uniform(2, 6)))
    ramp = torch.linspace(1.0, 0.0, h)[:, None].expand(h, w)
    if rng.random() < 0.5:
        ramp = torch.linspace(1.0, 0.0, w)[None, :].expand(h, w)
    if rng.random() < 0.5:
        ramp = 1 - ramp
    cut = float(rng.uniform(0.35, 0.65))
    mask = ((ramp - cut) * 8).clamp(0, 1)[None]
    return img * (1 - mask) + soft * mask


def misty(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A light morning mist: the scene keeps most of its contrast (transmission 0.75-0.95)."""
    return add_haze(img, rng, beta=float(rng.uniform(0.08, 0.35)))


def haze_at(img: torch.Tensor, rng: np.random.Generator, transmission: float) -> torch.Tensor:
    """Haze whose mean transmission over the frame is ``transmission``."""
    _, h, w = img.shape
    depth = plausible_depth(h, w, rng) + 0.15
    beta = -np.log(transmission) / float(depth.mean())
    t = torch.exp(-beta * depth)[None]
    a = float(rng.uniform(0.8, 1.0))
    return (img * t + a * (1 - t)).clamp(0, 1)


def clear_colour_damage(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Colour/tone damage at an unmistakable level: flat, lifted blacks, dull or cast."""
    gains = torch.from_numpy(rng.uniform(0.8, 1.2, 3).astype(np.float32))
    out = img * (gains / gains.mean())[:, None, None]
    grey = out.mean(0, keepdim=True)
    out = grey + (out - grey) * float(rng.uniform(0.3, 0.6))
    lo, hi = float(rng.uniform(0.08, 0.2)), float(rng.uniform(0.7, 0.88))
    out = lo + out.clamp(0, 1) * (hi - lo)
    return out.clamp(1e-6, 1) ** float(rng.uniform(0.75, 1.3))


NATURAL = {"dark": naturally_dark, "soft": shallow_focus, "misty": misty}


def _degrade(img: torch.Tensor, tasks: tuple[str, ...], rng: np.random.Generator) -> torch.Tensor:
    for task in sorted(tasks, key=DEGRADE_ORDER.index):
        img = DEGRADERS[task](img, rng)
    return img


def _photo_samples(args: tuple[int, np.ndarray, int]) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Feature vectors, multi-hot labels and "naturally dark/soft/misty" flags for one training
    photo's variants."""
    index, photo, seed = args
    torch.set_num_threads(1)  # one worker per core; torch's own threads would fight them
    rng = np.random.default_rng(seed * 100_003 + index)
    torch.manual_seed(seed * 100_003 + index)
    clean = to_tensor(photo.copy())
    if rng.random() < 0.5:
        clean = clean.flip(2)
    variants: list[tuple[torch.Tensor, tuple[str, ...]]] = [(clean, ())]
    name = list(NATURAL)[index % len(NATURAL)]
    variants.append((NATURAL[name](clean, rng), ()))  # always the second: see ``natural``
    for task in TASKS:
        variants.append((DEGRADERS[task](clean, rng), (task,)))
    for _ in range(3):
        pair = tuple(str(t) for t in rng.choice(TASKS, 2, replace=False))
        variants.append((_degrade(clean, pair, rng), pair))
    out = []
    for n, (img, tasks) in enumerate(variants):
        if tasks == ("enhance",) and float((img - clean).abs().mean()) < 0.03:
            tasks = ()  # the random colour change happened to be too slight to call damage
        label = np.array([t in tasks for t in TASKS], np.float32)
        out.append((measure(_np(img)).vector, label, n == 1))
    return out


def training_samples(data_root: Path, seed: int = 0, workers: int = 2):
    """(features [N, F], labels [N, 7], naturally dark/soft/misty [N]) from the training split
    only."""
    data = load_dataset(data_root, "train")
    jobs = [(i, p, seed) for i, p in enumerate(data.photos)]
    rows: list[tuple[np.ndarray, np.ndarray, bool]] = []
    with ProcessPoolExecutor(workers) as pool:
        for n, chunk in enumerate(pool.map(_photo_samples, jobs, chunksize=4)):
            rows.extend(chunk)
            if n % 40 == 0:
                print(f"  photo {n + 1}/{len(jobs)}", flush=True)
    low_label = np.array([t == "lowlight" for t in TASKS], np.float32)
    for lo, hi in zip(data.low, data.high):
        rows.append((measure(lo.astype(np.float32) / 255).vector, low_label, False))
        rows.append((measure(hi.astype(np.float32) / 255).vector, np.zeros(7, np.float32), False))
    x = np.stack([r[0] for r in rows])
    y = np.stack([r[1] for r in rows])
    return x, y, np.array([r[2] for r in rows])


def train_classifier(
    x: np.ndarray,
    y: np.ndarray,
    natural: np.ndarray,
    seed: int = 0,
    epochs: int = 3000,
    clean_weight: float = CLEAN_WEIGHT,
    natural_weight: float = NATURAL_WEIGHT,
) -> dict:
    """A 2-layer MLP with per-task sigmoids, full-batch Adam; returns the JSON-ready weights.

    Clean photos weigh ``clean_weight`` in the loss, the naturally dark/soft/misty ones that
    times ``natural_weight``: a false "fix this" costs the user more than a missed one."""
    torch.manual_seed(seed)
    weight = np.ones(len(y), np.float32)
    weight[y.sum(1) == 0] = clean_weight
    weight[natural] *= natural_weight
    wt = torch.from_numpy(weight)[:, None]
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std).float()
    yt = torch.from_numpy(y).float()
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, len(TASKS))
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    for epoch in range(epochs):
        opt.zero_grad()
        loss = (F.binary_cross_entropy_with_logits(net(xt), yt, reduction="none") * wt).mean()
        loss.backward()
        opt.step()
        if epoch % 500 == 0 or epoch == epochs - 1:
            print(f"  epoch {epoch:5d} loss {loss.item():.4f}", flush=True)
    layers = [net[0], net[2]]
    return {
        "format": "instructir-assessor",
        "version": 1,
        "tasks": list(TASKS),
        "features": list(FEATURE_NAMES),
        "mean": mean.round(6).tolist(),
        "std": std.round(6).tolist(),
        "activation": "tanh",
        "layers": [
            {
                "weight": layer.weight.detach().numpy().round(6).tolist(),
                "bias": layer.bias.detach().numpy().round(6).tolist(),
            }
            for layer in layers
        ],
    }


def _clear_case(task: str, clean: torch.Tensor, rng: np.random.Generator, i: int):
    """One held-out photo degraded by ``task`` at a clear level."""
    if task == "clean":
        return clean
    if task == "denoise":
        return add_gaussian_noise(clean, 25.0, seed=i)
    if task == "deblur":
        return motion_blur(clean, rng, length=int(rng.integers(9, 16)))
    if task == "derain":
        return DEGRADERS["derain"](clean, rng)
    if task == "dehaze":
        return haze_at(clean, rng, float(rng.uniform(0.15, 0.5)))
    if task == "superres":
        return downscale(clean, rng, factor=2.0)
    return clear_colour_damage(clean, rng)


EVAL_SYNTHETIC = ("clean", "denoise", "deblur", "derain", "dehaze", "superres", "enhance")


def evaluation_cases(data, seed: int = 7) -> Iterator[tuple[str, str, np.ndarray]]:
    """(true task or 'clean', case name, image) on held-out photos at clear levels; low light
    is the held-out real LOL low-light shots."""
    for i, photo in enumerate(data.photos):
        rng = np.random.default_rng(seed * 1000 + i)
        clean = to_tensor(photo)
        for task in EVAL_SYNTHETIC:
            yield task, data.names[i], _np(_clear_case(task, clean, rng, i))
    for n, lo in enumerate(data.low):
        yield "lowlight", f"LOL low {n}", lo.astype(np.float32) / 255


def evaluate(assessor: Assessor, data_root: Path) -> dict:
    """Confusion matrix, top-1 accuracy per task, false suggestions on clean photos, timing."""
    data = load_dataset(data_root, "val")
    labels = (*TASKS, "clean")
    confusion = {t: dict.fromkeys(labels, 0) for t in labels}
    clean_false, clean_n, seconds = 0, 0, []
    real_low: dict[str, int] = {}
    for truth, _, image in evaluation_cases(data):
        t0 = time.perf_counter()
        result = assessor.assess(image)
        seconds.append(time.perf_counter() - t0)
        top = result.findings[0]
        predicted = top.task if top.score >= SUGGEST_AT else "clean"
        if truth == "clean":
            clean_n += 1
            clean_false += bool(result.suggested)
        else:
            predicted = top.task  # top-1 for a degraded photo, whatever its score
        confusion[truth][predicted] += 1
        if truth == "lowlight":
            key = " then ".join(result.suggested) or "nothing"
            real_low[key] = real_low.get(key, 0) + 1
    clean_lol = [bool(assessor.assess(h.astype(np.float32) / 255).suggested) for h in data.high]
    natural: dict[str, list[bool]] = {name: [] for name in NATURAL}
    for i, photo in enumerate(data.photos):
        rng = np.random.default_rng(99_000 + i)
        for name, make in NATURAL.items():
            image = _np(make(to_tensor(photo), rng))
            natural[name].append(bool(assessor.assess(image).suggested))
    accuracy = {t: confusion[t][t] / max(1, sum(confusion[t].values())) for t in TASKS}
    return {
        "confusion": confusion,
        "accuracy": {t: round(a, 3) for t, a in accuracy.items()},
        "mean_accuracy": round(float(np.mean(list(accuracy.values()))), 3),
        "clean_false_suggestions": round(clean_false / max(1, clean_n), 3),
        "clean_n": clean_n,
        "lol_reference_false_suggestions": round(float(np.mean(clean_lol)), 3),
        "natural_false_suggestions": {k: round(float(np.mean(v)), 3) for k, v in natural.items()},
        "real_lowlight_suggested": real_low,
        "seconds_per_photo_median": round(float(np.median(seconds)), 4),
    }


def time_large(assessor: Assessor, megapixels: float = 12.0, repeats: int = 5) -> dict:
    """Wall and CPU seconds for one assessment of a photo of ``megapixels`` (4:3)."""
    h = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = int(h * 4 / 3)
    rng = np.random.default_rng(0)
    image = np.clip(
        np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
        + rng.normal(0, 0.05, (h, w, 3)).astype(np.float32),
        0,
        1,
    )
    assessor.assess(image)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        assessor.assess(image)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "megapixels": round(h * w / 1e6, 1),
        "wall_s": round(min(wall), 3),
        "cpu_s": round(min(cpu), 3),
    }


def _print_report(r: dict) -> None:
    labels = (*TASKS, "clean")
    print("confusion (rows: truth, columns: top-1; 'clean' = nothing scored >= 0.5)")
    print(" " * 10 + "".join(f"{c[:8]:>9}" for c in labels))
    for t in labels:
        print(f"{t:<10}" + "".join(f"{r['confusion'][t][c]:>9}" for c in labels))
    for t in TASKS:
        print(f"  {t:<9} top-1 {r['accuracy'][t] * 100:5.1f}%")
    print(f"mean top-1 accuracy {r['mean_accuracy'] * 100:.1f}%")
    print(
        f"false suggestions on {r['clean_n']} clean photos: "
        f"{r['clean_false_suggestions'] * 100:.1f}%; on the LOL normal-light references: "
        f"{r['lol_reference_false_suggestions'] * 100:.1f}%"
    )
    natural = ", ".join(f"{k} {v * 100:.0f} %" for k, v in r["natural_false_suggestions"].items())
    print(f"false suggestions on clean photos made naturally dark / soft / misty: {natural}")
    print(f"real LOL low-light photos, suggested: {r['real_lowlight_suggested']}")
    print(f"median time per held-out photo: {r['seconds_per_photo_median'] * 1000:.0f} ms")
    if "large" in r:
        big = r["large"]
        print(f"{big['megapixels']} MP photo: {big['wall_s']} s wall, {big['cpu_s']} s CPU")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("action", choices=["train", "evaluate"])
    ap.add_argument("--data", type=Path, default=default_data_root())
    ap.add_argument("--weights", type=Path, default=default_weights_path())
    ap.add_argument("--features", type=Path, default=None, help="cache of training features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="evaluate: also write results here")
    args = ap.parse_args(argv)
    if args.action == "train":
        if args.features and args.features.exists():
            cached = np.load(args.features)
            x, y, natural = cached["x"], cached["y"], cached["natural"]
        else:
            x, y, natural = training_samples(args.data, args.seed, args.workers)
            if args.features:
                np.savez_compressed(args.features, x=x, y=y, natural=natural)
        print(f"{len(x)} samples, {x.shape[1]} features")
        weights = train_classifier(x, y, natural, args.seed)
        weights["trained"] = {
            "date": datetime.date.today().isoformat(),
            "samples": len(x),
            "seed": args.seed,
            "clean_weight": CLEAN_WEIGHT,
            "natural_weight": NATURAL_WEIGHT,
            "apply_order": list(APPLY_ORDER),
        }
        args.weights.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.weights, json.dumps(weights, separators=(",", ":")) + "\n")
        print(f"wrote {args.weights} ({args.weights.stat().st_size / 1e3:.0f} kB)")
        return 0
    assessor = Assessor(args.weights)
    report = evaluate(assessor, args.data)
    report["large"] = time_large(assessor)
    _print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
