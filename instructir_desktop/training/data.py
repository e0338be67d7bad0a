"""Training data: real photos and LOL low-light pairs from ../shared/data, fixed val split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..core.packs import TASKS
from .degrade import DEGRADERS
from .prompts import UNRELATED, Prompt

__all__ = ["default_data_root", "Dataset", "load_dataset", "random_crop"]


def default_data_root() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "train"


def _load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


@dataclass
class Dataset:
    photos: list[np.ndarray]
    low: list[np.ndarray]
    high: list[np.ndarray]
    names: list[str]


def load_dataset(root: Path, part: str) -> Dataset:
    """part 'train' or 'val'. Every 12th photo and every 10th low-light pair (sorted by name)
    form the validation split, which training never sees."""
    root = Path(root)
    photo_paths = sorted((root / "photos").glob("*.jpg"))
    pair_names = sorted(p.name for p in (root / "lowlight" / "low").glob("*.png"))
    if not photo_paths:
        raise FileNotFoundError(f"No training photos under {root / 'photos'}")
    want_val = part == "val"
    photos = [p for i, p in enumerate(photo_paths) if (i % 12 == 0) == want_val]
    pairs = [n for i, n in enumerate(pair_names) if (i % 10 == 0) == want_val]
    return Dataset(
        photos=[_load_rgb(p) for p in photos],
        low=[_load_rgb(root / "lowlight" / "low" / n) for n in pairs],
        high=[_load_rgb(root / "lowlight" / "high" / n) for n in pairs],
        names=[p.name for p in photos],
    )


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1).float() / 255.0


def random_crop(arrays: list[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = arrays[0].shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    out = [a[y : y + size, x : x + size] for a in arrays]
    k = int(rng.integers(4))
    flip = rng.random() < 0.5
    out = [np.rot90(a, k) for a in out]
    if flip:
        out = [a[:, ::-1] for a in out]
    return [np.ascontiguousarray(a) for a in out]


class BatchSampler:
    """Draws (degraded, clean, raw text feature, task index) batches as the paper does:
    a task, then an instruction of that task, then a degradation of that task."""

    def __init__(
        self,
        data: Dataset,
        prompts: list[Prompt],
        features: torch.Tensor,
        crop: int,
        seed: int,
        unrelated_rate: float = 0.04,
        real_lowlight_rate: float = 0.6,
        task_weights: dict[str, float] | None = None,
    ) -> None:
        self.data = data
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        self.unrelated_rate = unrelated_rate
        self.real_lowlight_rate = real_lowlight_rate
        self.by_task: dict[str, list[int]] = {}
        for i, p in enumerate(prompts):
            self.by_task.setdefault(p.task, []).append(i)
        self.features = features
        weights = dict.fromkeys(TASKS, 1.0)
        for name, w in (task_weights or {}).items():
            if name not in weights:
                known = ", ".join(TASKS)
                raise ValueError(f"unknown task {name!r} in task weights; tasks: {known}")
            if w < 0:
                raise ValueError(f"task weight for {name!r} must not be negative")
            weights[name] = float(w)
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("at least one task weight must be positive")
        self.task_p = np.array([weights[t] / total for t in TASKS])

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self.rng
        inputs, targets, feats, labels = [], [], [], []
        for _ in range(batch):
            if UNRELATED in self.by_task and rng.random() < self.unrelated_rate:
                task = UNRELATED
            else:
                task = TASKS[int(rng.choice(len(TASKS), p=self.task_p))]
            prompt_idx = int(rng.choice(self.by_task[task]))
            if task == "lowlight" and self.data.low and rng.random() < self.real_lowlight_rate:
                i = int(rng.integers(len(self.data.low)))
                lo, hi = random_crop([self.data.low[i], self.data.high[i]], self.crop, rng)
                x, y = to_tensor(lo), to_tensor(hi)
            else:
                photo = self.data.photos[int(rng.integers(len(self.data.photos)))]
                (clean,) = random_crop([photo], self.crop, rng)
                y = to_tensor(clean)
                x = y.clone() if task == UNRELATED else DEGRADERS[task](y, rng)
            inputs.append(x)
            targets.append(y)
            feats.append(self.features[prompt_idx])
            labels.append(-1 if task == UNRELATED else TASKS.index(task))
        return (
            torch.stack(inputs),
            torch.stack(targets),
            torch.stack(feats),
            torch.tensor(labels, dtype=torch.long),
        )
