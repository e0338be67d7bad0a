"""The training pipeline end to end on a tiny generated dataset: degradations, task-weighted
sampling, resumable training, fine-tuning from another run, export to a pack, evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY_CONFIG
from PIL import Image

from instructir_desktop.core.packs import TASKS
from instructir_desktop.training import train as train_mod
from instructir_desktop.training.data import BatchSampler, load_dataset
from instructir_desktop.training.degrade import DEGRADERS
from instructir_desktop.training.prompts import UNRELATED, load_corpus, split


def _photo(rng: np.random.Generator, h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth gradients, a few flat shapes and some texture: enough structure for every degrader."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([xx, yy, 1 - xx * yy], axis=2) * rng.uniform(0.4, 1.0, 3)
    for _ in range(3):
        y0, x0 = rng.integers(0, h - 10), rng.integers(0, w - 10)
        img[y0 : y0 + 10, x0 : x0 + 14] = rng.uniform(0, 1, 3)
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("traindata")
    rng = np.random.default_rng(5)
    (root / "photos").mkdir()
    for i in range(13):
        Image.fromarray(_photo(rng)).save(root / "photos" / f"p{i:02d}.jpg", quality=95)
    for sub in ("low", "high"):
        (root / "lowlight" / sub).mkdir(parents=True)
    for i in range(10):
        high = _photo(rng)
        low = (high.astype(np.float32) * 0.1).astype(np.uint8)
        Image.fromarray(high).save(root / "lowlight" / "high" / f"{i}.png")
        Image.fromarray(low).save(root / "lowlight" / "low" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def cached_features():
    """The real frozen encoder, run once for the whole module (it is the slow part)."""
    memo: dict[tuple[str, ...], torch.Tensor] = {}
    real = train_mod.encode_prompts

    def encode(texts, batch=256):
        key = tuple(texts)
        if key not in memo:
            memo[key] = real(texts, batch)
        return memo[key]

    return encode


def test_corpus_has_150_prompts_per_task_and_a_disjoint_held_out_split():
    corpus = load_corpus()
    for task in TASKS:
        assert len({p.text for p in corpus if p.task == task}) >= 150, task
    assert any(p.task == UNRELATED for p in corpus)
    train, held = split(corpus)
    assert {p.text.lower() for p in train}.isdisjoint({p.text.lower() for p in held})
    assert 0.1 < len(held) / len(corpus) < 0.3


@pytest.mark.parametrize("task", TASKS)
def test_each_degradation_keeps_size_and_range_and_changes_the_image(task):
    rng = np.random.default_rng(0)
    clean = torch.from_numpy(_photo(rng, 64, 64)).permute(2, 0, 1).float() / 255
    bad = DEGRADERS[task](clean, np.random.default_rng(1))
    assert bad.shape == clean.shape
    assert float(bad.min()) >= 0.0 and float(bad.max()) <= 1.0
    assert float((bad - clean).abs().mean()) > 1e-3
    again = DEGRADERS[task](clean, np.random.default_rng(1))
    assert torch.equal(bad, again), "degradations must be reproducible from the seed"


def test_split_of_the_data_keeps_validation_photos_out_of_training(data_root):
    train = load_dataset(data_root, "train")
    val = load_dataset(data_root, "val")
    assert len(train.photos) == 11 and len(val.photos) == 2
    assert set(train.names).isdisjoint(val.names)
    assert len(train.low) == 9 and len(val.low) == 1


def test_task_weights_steer_the_sampler(data_root):
    data = load_dataset(data_root, "train")
    corpus = load_corpus()
    feats = torch.zeros(len(corpus), 4)
    weights = {t: 0.0 for t in TASKS} | {"dehaze": 3.0, "denoise": 1.0}
    sampler = BatchSampler(data, corpus, feats, 32, seed=0, task_weights=weights, unrelated_rate=0)
    labels = torch.cat([sampler.sample(16)[3] for _ in range(8)])
    names = [TASKS[i] for i in labels.tolist()]
    assert set(names) == {"dehaze", "denoise"}
    assert names.count("dehaze") > 2 * names.count("denoise")
    with pytest.raises(ValueError, match="unknown task 'sharpen'"):
        BatchSampler(data, corpus, feats, 32, seed=0, task_weights={"sharpen": 1.0})


def test_task_weights_argument_is_parsed_and_checked():
    assert train_mod.parse_task_weights("denoise=2, dehaze=1.5") == {
        "denoise": 2.0,
        "dehaze": 1.5,
    }
    with pytest.raises(Exception, match="TASK=WEIGHT"):
        train_mod.parse_task_weights("sharpen=2")
    with pytest.raises(Exception, match="not a number"):
        train_mod.parse_task_weights("denoise=lots")


def test_relative_loss_weighs_subtle_degradations_as_much_as_strong_ones():
    y = torch.zeros(2, 3, 4, 4)
    x = y.clone()
    x[0] += 0.5  # very dark / hazy: large input error
    x[1] += 0.02  # slightly soft: small input error
    out = y.clone()
    out[0] += 0.25  # both outputs halve their input's error
    out[1] += 0.01
    plain = train_mod.image_loss(out, x, y, "l1")
    assert plain == pytest.approx(0.13)  # dominated by the first sample
    rel = train_mod.image_loss(out, x, y, "relative")
    w = torch.tensor([1 / 0.52, 1 / 0.04])
    assert rel == pytest.approx(float((w * torch.tensor([0.25, 0.01])).sum() / w.sum()))
    # The subtle sample's share of the gradient grows from 1/2 to about 93 %.
    out.requires_grad_(True)
    train_mod.image_loss(out, x, y, "relative").backward()
    g = out.grad.abs().flatten(1).sum(dim=1)
    assert g[1] / g.sum() > 0.9
    # Identical inputs give identical losses either way.
    same = torch.full_like(x, 0.3)
    out = out.detach()
    assert float(train_mod.image_loss(out, same, y, "relative")) == pytest.approx(
        float(train_mod.image_loss(out, same, y, "l1"))
    )


def _train(run, data_root, minutes, *extra):
    return train_mod.main(
        [
            "--run", str(run),
            "--data", str(data_root),
            "--minutes", str(minutes),
            "--batch", "2",
            "--crop", "32",
            "--threads", "1",
            "--config", json.dumps(TINY_CONFIG),
            *extra,
        ]
    )  # fmt: skip


def test_training_checkpoints_resumes_fine_tunes_exports_and_evaluates(
    data_root, tmp_path, monkeypatch, capsys, cached_features
):
    monkeypatch.setattr(train_mod, "encode_prompts", cached_features)
    run = tmp_path / "run"
    assert _train(run, data_root, 0.03) == 0
    first = torch.load(run / "ckpt.pt", weights_only=True)
    assert first["step"] > 0 and first["elapsed"] >= 0.03 * 60
    assert json.loads(first["config"]) == TINY_CONFIG

    # Same command with a larger budget resumes where it stopped.
    assert _train(run, data_root, 0.06) == 0
    out = capsys.readouterr().out
    assert f"resumed at step {first['step']}" in out
    second = torch.load(run / "ckpt.pt", weights_only=True)
    assert second["step"] > first["step"]
    # A finished run does not train further.
    assert _train(run, data_root, 0.06) == 0
    assert torch.load(run / "ckpt.pt", weights_only=True)["step"] == second["step"]

    # Fine-tuning starts from the other run's EMA weights with a fresh schedule.
    tuned = tmp_path / "tuned"
    tune = ["--init", str(run), "--task-weights", "denoise=2", "--loss", "relative"]
    assert _train(tuned, data_root, 0, *tune) == 0
    start = torch.load(tuned / "ckpt.pt", weights_only=True)
    assert start["step"] == 0
    for k, v in second["ema"].items():
        assert torch.equal(start["net"][k], v), k
    for k, v in second["head"].items():
        assert torch.equal(start["head"][k], v), k

    # Export to a pack the app can load, then evaluate it on the validation split.
    from instructir_desktop.training import evaluate, export

    pack = export.export(run, tmp_path / "pack", "0.0.9")
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["version"] == "0.0.9"
    assert manifest["extra"]["training_steps"] == second["step"]

    report = tmp_path / "eval.json"
    args = ["--pack", str(pack), "--data", str(data_root), "--limit", "1", "--examples", "3"]
    assert evaluate.main([*args, "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert [r["task"] for r in result["tasks"]] == [*TASKS, "lowlight_real"]
    for row in result["tasks"]:
        assert row["n"] == 1
        for key in ("in_psnr", "base_psnr", "model_psnr"):
            assert 5 < row[key] < 100, (row["task"], key, row[key])
    assert 0 <= result["intents"]["accuracy"] <= 1
    assert len(result["examples"]) == 3
