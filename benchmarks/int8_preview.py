"""Would an int8 image network (OpenVINO + NNCF post-training quantization) do for previews?

    pip install nncf openvino
    python benchmarks/int8_preview.py                   # the bundled (trained) lite pack
    python benchmarks/int8_preview.py --pack-7d         # official 7D config, seeded weights
    python benchmarks/int8_preview.py --pack PATH       # any pack folder
    python benchmarks/int8_preview.py --scope convolutions   # quantize the convolutions only

Calibrates on a few training photos (``../shared/data/train/photos``, read in place, never
copied) with synthetic degradations and the seven tasks' instructions, then compares int8
with OpenVINO fp32 on other photos of that folder (held out: never seen in calibration):
PSNR per photo (the worst and the mean), and the speed of one 512 x 512 tile at each
precision. Previews may use int8 only where the worst held-out PSNR is at least 32 dB.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PHOTOS = ROOT.parent / "shared" / "data" / "train" / "photos"
LITE = ROOT / "resources" / "packs" / "instructir-lite"
INSTRUCTIONS = [
    "remove the noise",
    "make it sharper",
    "remove the rain",
    "remove the haze",
    "it is too dark",
    "make it higher resolution",
    "enhance the colours",
]
PREVIEW_MIN_DB = 32.0
# Left in floating point by ``--scope convolutions``: NNCF also quantizes the inputs of the
# element-wise work (the norms' subtract, square root and divide, the gates' multiplies), and
# so the norms' statistics; these types and layers stay as they are.
ELEMENTWISE = ["Add", "Subtract", "Multiply", "Divide", "ReduceMean", "Sqrt", "Power", "Sigmoid"]


def float_layers(model) -> list[str]:
    """Layers ``--scope convolutions`` keeps in floating point: the norms' statistics (1x1
    convolutions with one output channel in the graph form for OpenVINO), the instruction's
    projections (MatMul), and the first and last convolutions (the photo in, the photo out)."""
    names = []
    for op in model.get_ops():
        kind, name = op.get_type_name(), op.get_friendly_name()
        statistic = kind == "Convolution" and op.input(1).get_partial_shape()[0].get_length() == 1
        ends = kind == "Convolution" and (".intro/" in name or ".ending/" in name)
        if statistic or ends or kind == "MatMul":
            names.append(name)
    return names


def degrade(rgb: np.ndarray, kind: int, rng: np.random.Generator) -> np.ndarray:
    """One of a few degradations the app is asked to fix: noise, darkness, haze."""
    if kind == 0:
        out = rgb + rng.normal(0, 0.08, rgb.shape)
    elif kind == 1:
        out = 0.25 * rgb**1.5
    else:
        out = 0.6 * rgb + 0.35
    return np.clip(out, 0, 1).astype(np.float32)


def photo_inputs(names: list[Path], multiple: int, seed: int) -> list[np.ndarray]:
    """1 x 3 x H x W float tiles: each photo cropped to the size multiple and degraded."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    tiles = []
    for n, path in enumerate(names):
        rgb = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
        h, w = rgb.shape[0] // multiple * multiple, rgb.shape[1] // multiple * multiple
        x = degrade(rgb[:h, :w], n % 3, rng)
        tiles.append(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
    return tiles


def convert(pack: Path, work: Path):
    """The pack's image network as an OpenVINO model (the app's converted IR) and its encoder."""
    import openvino as ov

    from instructir_desktop.core.backends import OpenVINOBackend
    from instructir_desktop.core.descriptor import ModelDescriptor
    from instructir_desktop.core.packs import MANIFEST_NAME, PackManifest
    from instructir_desktop.core.text import InstructionEncoder
    from instructir_desktop.core.weights import load_state_dict

    manifest = PackManifest.load(pack / MANIFEST_NAME)
    state = load_state_dict(pack / manifest.file("image").path)
    descriptor = ModelDescriptor.from_state_dict(manifest.network, state, "cpu")
    backend = OpenVINOBackend(descriptor, work / "ov")
    encoder = InstructionEncoder(manifest, pack)
    model = ov.Core().read_model(str(backend._xml))
    return model, encoder, descriptor.size_multiple


def compile_at(core, model, shape: tuple[int, int], textdim: int, precision: str):
    model = model.clone()
    model.reshape({0: [1, 3, *shape], 1: [1, textdim]})
    config = {"PERFORMANCE_HINT": "LATENCY", "CPU_DENORMALS_OPTIMIZATION": "YES"}
    if precision == "fp32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return core.compile_model(model, "CPU", config)


def run(compiled, x: np.ndarray, e: np.ndarray) -> np.ndarray:
    out = compiled([x, e])[compiled.output(0)]
    return np.clip(out, 0, 1)


def seconds_per_tile(compiled, x: np.ndarray, e: np.ndarray, rounds: int) -> float:
    run(compiled, x, e)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        run(compiled, x, e)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pack", type=Path)
    ap.add_argument("--pack-7d", action="store_true")
    ap.add_argument("--calibration", type=int, default=12, help="photos to calibrate on")
    ap.add_argument("--held-out", type=int, default=12, help="photos to evaluate on")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--preset",
        choices=["performance", "mixed"],
        default="performance",
        help="NNCF preset: symmetric activations, or asymmetric (mixed)",
    )
    ap.add_argument(
        "--scope",
        choices=["all", "convolutions"],
        default="all",
        help="what NNCF quantizes: all it can (its default), or the convolutions only "
        "(element-wise work, the norms' statistics, the instruction's projections and the "
        "first and last convolutions stay in floating point)",
    )
    args = ap.parse_args()
    import nncf
    import openvino as ov

    from instructir_desktop.core.descriptor import psnr

    work = Path(tempfile.mkdtemp(prefix="instructir-int8-"))
    if args.pack_7d:
        from engine import make_pack

        pack = make_pack(work / "pack")
    else:
        pack = args.pack or LITE
    model, encoder, multiple = convert(pack, work)
    textdim = model.inputs[1].get_partial_shape()[1].get_length()
    names = sorted(PHOTOS.glob("*.jpg"))
    calib_names = names[: args.calibration]
    held_names = names[len(names) // 2 : len(names) // 2 + args.held_out]
    assert not set(calib_names) & set(held_names)
    embeddings = [encoder.embedding(t).numpy()[None].astype(np.float32) for t in INSTRUCTIONS]

    calib = photo_inputs(calib_names, multiple, 0)
    items = [(x, embeddings[n % len(embeddings)]) for n, x in enumerate(calib)]
    scope = None
    if args.scope == "convolutions":
        scope = nncf.IgnoredScope(names=float_layers(model), types=ELEMENTWISE, validate=False)
    t0 = time.perf_counter()
    quantized = nncf.quantize(
        model,
        nncf.Dataset(items, lambda item: [item[0], item[1]]),
        subset_size=len(items),
        fast_bias_correction=True,
        preset=getattr(nncf.QuantizationPreset, args.preset.upper()),
        ignored_scope=scope,
    )
    quantize_s = time.perf_counter() - t0

    core = ov.Core()
    held = photo_inputs(held_names, multiple, 1)
    scores = []
    compiled: dict[tuple, object] = {}
    for n, x in enumerate(held):
        e = embeddings[n % len(embeddings)]
        shape = x.shape[2:]
        for name, m in (("fp32", model), ("int8", quantized)):
            if (name, shape) not in compiled:
                compiled[(name, shape)] = compile_at(core, m, shape, textdim, "fp32")
        ref = run(compiled[("fp32", shape)], x, e)
        scores.append(psnr(run(compiled[("int8", shape)], x, e), ref))

    rng = np.random.default_rng(2)
    tile = rng.random((1, 3, 512, 512), dtype=np.float32)
    e = embeddings[0]
    fp32_c = compile_at(core, model, (512, 512), textdim, "fp32")
    int8_c = compile_at(core, quantized, (512, 512), textdim, "fp32")
    fp32_s = seconds_per_tile(fp32_c, tile, e, args.rounds)
    int8_s = seconds_per_tile(int8_c, tile, e, args.rounds)
    worst = min(scores)
    print(
        json.dumps(
            {
                "pack": "official-7d-seeded" if args.pack_7d else str(pack.name),
                "nncf": nncf.__version__,
                "openvino": ov.__version__,
                "calibration_photos": len(calib),
                "held_out_photos": len(held),
                "preset": args.preset,
                "scope": args.scope,
                "psnr_int8_vs_fp32_db": {
                    "worst": round(worst, 2),
                    "mean": round(float(np.mean(scores)), 2),
                    # held-out photo n has degradation n % 3: noise, dark, haze
                    "by_degradation": [round(float(np.mean(scores[k::3])), 2) for k in range(3)],
                },
                "tile_512_s": {"fp32": round(fp32_s, 3), "int8": round(int8_s, 3)},
                "speedup": round(fp32_s / int8_s, 2),
                "quantize_s": round(quantize_s, 1),
                "good_for_previews": bool(worst >= PREVIEW_MIN_DB and int8_s < fp32_s),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
