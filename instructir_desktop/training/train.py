"""Resumable training of the instructir-lite pack.

    python -m instructir_desktop.training.train --run runs/lite --minutes 120

Checkpoints (model, EMA, head, optimiser, step, elapsed time, RNG) go to RUN/ckpt.pt every few
minutes; running the same command again resumes. Logs are JSON lines in RUN/log.jsonl. The
learning rate follows a cosine over the time budget, so a resumed run ends where a straight
run would. Uses CUDA when available.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.atomic import atomic_file
from ..core.network import LITE, NetworkConfig, TextHead, network_from_config
from ..core.packs import TASKS
from .data import BatchSampler, default_data_root, load_dataset
from .prompts import UNRELATED, load_corpus, split

__all__ = ["main", "encode_prompts"]

MAX_STEP_SECONDS = 5.0


def encode_prompts(texts: list[str], batch: int = 256) -> torch.Tensor:
    """Raw 384-d features of the frozen offline encoder (all-MiniLM-L6-v2), as the app sees them."""
    from ..core.packwriter import MINILM_PACKAGE
    from ..core.text import load_sentence_encoder

    return load_sentence_encoder(MINILM_PACKAGE, None).encode(texts, batch_size=batch)


def intent_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for task prompts; unrelated prompts (label -1) are pushed to uniform."""
    logp = F.log_softmax(logits, dim=1)
    known = labels >= 0
    loss = torch.zeros((), device=logits.device)
    if known.any():
        loss = loss + F.nll_loss(logp[known], labels[known], reduction="sum")
    if (~known).any():
        loss = loss - logp[~known].mean(dim=1).sum()
    return loss / len(labels)


def warm_up_head(
    head: TextHead, features: torch.Tensor, labels: torch.Tensor, steps: int, seed: int
):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(len(features), (256,), generator=gen)
        raw = features[idx] + 0.01 * torch.randn(256, features.shape[1], generator=gen)
        _, logits = head(raw)
        loss = intent_loss(logits, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def image_loss(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """L1 between output and target. ``l1``: the batch mean, as the paper trains. ``relative``:
    each sample weighted by 1 / (its input's own L1 error + 0.02), so that a slightly blurred or
    ×2-downscaled crop counts as much as a very dark one; with the plain mean the large errors
    of low light and haze dominate the gradient and the network learns to leave subtle
    degradations (blur, super-resolution) almost untouched."""
    if kind == "l1":
        return F.l1_loss(out, y)
    per = (out - y).abs().flatten(1).mean(dim=1)
    weight = 1.0 / ((x - y).abs().flatten(1).mean(dim=1) + 0.02)
    return (per * weight).sum() / weight.sum()


def lr_at(fraction: float, base: float, warmup: float = 0.02) -> float:
    if fraction < warmup:
        return base * max(fraction / warmup, 0.02)
    f = min(1.0, (fraction - warmup) / (1 - warmup))
    return 1e-5 + 0.5 * (base - 1e-5) * (1 + math.cos(math.pi * f))


def parse_task_weights(text: str) -> dict[str, float]:
    """``denoise=2,dehaze=1.5`` → {"denoise": 2.0, "dehaze": 1.5}."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in TASKS:
            raise argparse.ArgumentTypeError(
                f"expected TASK=WEIGHT with TASK one of {', '.join(TASKS)}, got {item!r}"
            )
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"weight for {name!r} is not a number: {value!r}"
            ) from None
    return weights


def _save(path: Path, obj: dict) -> None:
    with atomic_file(path) as fh:
        torch.save(obj, fh)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", type=Path, default=Path("runs/lite"))
    ap.add_argument("--data", type=Path, default=default_data_root())
    ap.add_argument("--minutes", type=float, default=120.0, help="training time budget")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ce-weight", type=float, default=0.05)
    ap.add_argument(
        "--loss",
        choices=("l1", "relative"),
        default="l1",
        help="image loss: the batch's mean L1, or each sample's L1 relative to its input's "
        "(evens out tasks whose errors differ tenfold)",
    )
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--config", type=str, default="", help="network config JSON (default: LITE)")
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start a new run from another run's EMA weights and head (fine-tuning; "
        "fresh optimiser and schedule)",
    )
    ap.add_argument(
        "--task-weights",
        type=parse_task_weights,
        default=None,
        help="relative sampling weights, e.g. denoise=2,dehaze=2 (others stay 1)",
    )
    return ap


class _Run:
    """The network, its EMA copy, the text head, the optimiser and the progress of one run,
    started fresh, resumed from its checkpoint or initialised from another run."""

    def __init__(
        self,
        args: argparse.Namespace,
        config: NetworkConfig,
        features: torch.Tensor,
        labels: torch.Tensor,
        device: torch.device,
    ) -> None:
        self.config = config
        self.ckpt_path = args.run / "ckpt.pt"
        torch.manual_seed(args.seed)
        # channels-last is about 1.4x faster on CPUs for this network (depthwise convs, norms).
        self.net = network_from_config(config).to(device, memory_format=torch.channels_last)
        self.head = TextHead(features.shape[1], config.textdim, len(TASKS)).to(device)
        self.params = list(self.net.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=args.lr, betas=(0.9, 0.9), weight_decay=1e-4)
        self.step = 0
        self.elapsed = 0.0
        if self.ckpt_path.exists():
            ck = torch.load(self.ckpt_path, map_location=device, weights_only=True)
            self.net.load_state_dict(ck["net"])
            self.head.load_state_dict(ck["head"])
            self.opt.load_state_dict(ck["opt"])
            self.ema = network_from_config(config).to(device)
            self.ema.load_state_dict(ck["ema"])
            self.step, self.elapsed = int(ck["step"]), float(ck["elapsed"])
            print(f"resumed at step {self.step} ({self.elapsed / 60:.1f} min)", flush=True)
        elif args.init is not None:
            src = args.init / "ckpt.pt" if args.init.is_dir() else args.init
            ck = torch.load(src, map_location=device, weights_only=True)
            self.net.load_state_dict(ck["ema"])
            self.head.load_state_dict(ck["head"])
            self.ema = copy.deepcopy(self.net)
            print(f"started from the EMA weights of {src} (step {int(ck['step'])})", flush=True)
        else:
            f, y = features.to(device), labels.to(device)
            head_loss = warm_up_head(self.head, f, y, 400, args.seed)
            print(f"head warm-up loss {head_loss:.3f}", flush=True)
            self.ema = copy.deepcopy(self.net)
        self.ema.eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def train_step(
        self, batch: tuple[torch.Tensor, ...], lr: float, args: argparse.Namespace
    ) -> tuple[float, float]:
        """One optimiser step and EMA update; returns the image loss and the intent loss."""
        x, y, raw, lab = batch
        x = x.contiguous(memory_format=torch.channels_last)
        y = y.contiguous(memory_format=torch.channels_last)
        for g in self.opt.param_groups:
            g["lr"] = lr
        e, logits = self.head(raw + 0.01 * torch.randn_like(raw))
        out = self.net(x, e)
        l1 = image_loss(out, x, y, args.loss)
        ce = intent_loss(logits, lab)
        loss = l1 + args.ce_weight * ce
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 0.5)
        self.opt.step()
        decay = min(0.999, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for pe, pn in zip(self.ema.parameters(), self.net.parameters()):
                pe.lerp_(pn, 1 - decay)
        self.step += 1
        return float(l1.detach()), float(ce.detach())

    def checkpoint(self) -> None:
        _save(
            self.ckpt_path,
            {
                "net": self.net.state_dict(),
                "ema": self.ema.state_dict(),
                "head": self.head.state_dict(),
                "opt": self.opt.state_dict(),
                "step": self.step,
                "elapsed": self.elapsed,
                "config": json.dumps(self.config.to_dict()),
            },
        )


def main(argv: list[str] | None = None) -> int:
    """Train (or resume) until the time budget is spent; checkpoints on the way and at the end."""
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # Tiny gradients turn into denormal floats, which are 10-100x slower on x86 CPUs.
    torch.set_flush_denormal(True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = NetworkConfig.from_dict(json.loads(args.config)) if args.config else LITE
    args.run.mkdir(parents=True, exist_ok=True)

    train_prompts, _ = split(load_corpus())
    features = encode_prompts([p.text for p in train_prompts])
    labels = torch.tensor(
        [-1 if p.task == UNRELATED else TASKS.index(p.task) for p in train_prompts]
    )
    run = _Run(args, config, features, labels, device)
    # Seed the sampler from the step so a resumed run draws new batches, reproducibly.
    sampler = BatchSampler(
        load_dataset(args.data, "train"),
        train_prompts,
        features,
        args.crop,
        args.seed + run.step,
        task_weights=args.task_weights,
    )
    budget = args.minutes * 60.0
    last_ckpt = t_prev = time.monotonic()
    window: list[float] = []
    run.net.train()
    with (args.run / "log.jsonl").open("a", encoding="utf-8") as log:
        while run.elapsed < budget:
            lr = lr_at(run.elapsed / budget, args.lr)
            batch = tuple(t.to(device) for t in sampler.sample(args.batch))
            l1, ce = run.train_step(batch, lr, args)
            now = time.monotonic()
            # A step that took very long was paused (SIGSTOP while the CPU is needed
            # elsewhere, a suspended laptop): count a typical step instead so the schedule
            # is not cut short.
            run.elapsed += min(now - t_prev, MAX_STEP_SECONDS)
            t_prev = now
            window.append(l1)
            if run.step % 50 == 0:
                rec = {
                    "step": run.step,
                    "minutes": round(run.elapsed / 60, 2),
                    "lr": lr,
                    "l1": round(float(np.mean(window)), 5),
                    "ce": round(ce, 4),
                }
                window.clear()
                log.write(json.dumps(rec) + "\n")
                log.flush()
                print(json.dumps(rec), flush=True)
            if now - last_ckpt > args.checkpoint_minutes * 60:
                run.checkpoint()
                last_ckpt = now
    run.checkpoint()
    print(f"done: {run.step} steps in {run.elapsed / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
