"""Engine benchmark: naive full-frame fp32 (how the paper's demo runs) vs our Restorer.

    python benchmarks/engine.py            # 1 MP naive vs ours, then ours at 4 MP and 24 MP
    python benchmarks/engine.py --quick    # smaller sizes, for a smoke run
    python benchmarks/engine.py --avx2     # as an AVX2-only CPU runs it (fp32, AVX2 kernels)
    python benchmarks/engine.py --tile 512 # ours with a fixed tile size
    python benchmarks/engine.py --rounds 3 # 1 MP: naive and ours take turns, three times each
    python benchmarks/engine.py --mirrored-border  # ours as packs other than the official run

Official 7D network configuration with random (but non-trivial) weights; speed does not
depend on the weight values. Ours computes as the official pack does: the photo as it is,
zeros right and bottom up to a multiple of 16 (none at 1 MP), as the naive run sees it;
``--mirrored-border`` gives it the 8 px of mirrored context every other pack gets (3 % more
pixels at 1 MP). Every measurement runs in its own process so peak RSS is that
measurement's alone. With ``--rounds N`` the 1 MP naive and ours runs take turns N times (a
burst of load from another program hits both alike) and the speed-up is best over best; every
round's seconds are printed too. Ours runs with its tile shapes compiled (and its single-tile
shapes run once) beforehand, as the app does while the user types (that time is printed
beside it). Prints seconds per megapixel, peak RSS, the speed-up and the PSNR of ours vs naive
at 1 MP, the arithmetic rate (GFLOP/s: 2 x the network's multiply-adds per pixel x the photo's
pixels / seconds; ``net_gflops`` counts the pixels the tiles compute, overlaps and mirrored
border included) against a practical peak (a large matrix product at the precision ours runs
and at fp32, the higher of the two), then one JSON line with everything.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"1mp": (864, 1152), "4mp": (1728, 2304), "24mp": (4000, 6000)}
QUICK = {"1mp": (384, 512), "4mp": (768, 1024), "24mp": (1536, 2048)}


def make_pack(folder: Path) -> Path:
    """The official 7D config with seeded random weights, written as a pack folder."""
    import torch

    from instructir_desktop.core.network import OFFICIAL_7D, TextHead, network_from_config
    from instructir_desktop.core.packwriter import write_pack

    torch.manual_seed(0)
    net = network_from_config(OFFICIAL_7D)
    with torch.no_grad():
        for name, p in net.named_parameters():
            # Trained NAFNets have small residual scales; zeros would make blocks identities.
            if name.endswith(("beta", "gamma")) and p.dim() == 4:
                p.normal_(0.0, 0.05)
    write_pack(
        folder,
        pack_id="bench-7d",
        name="benchmark 7D",
        version="0",
        description="",
        config=OFFICIAL_7D,
        image_state=net.state_dict(),
        head_state=TextHead().state_dict(),
        half=False,
    )
    return folder


def test_image(h: int, w: int) -> np.ndarray:
    from PIL import Image

    sample = ROOT / "resources" / "sample" / "sample.jpg"
    im = Image.open(sample).convert("RGB").resize((w, h), Image.BICUBIC)
    rng = np.random.default_rng(0)
    a = np.asarray(im, dtype=np.float32) / 255
    return np.clip(a + rng.normal(0, 0.04, a.shape), 0, 1).astype(np.float32)


def macs_per_pixel(config) -> float:
    """Multiply-adds per input pixel of the network, counted on a 64 x 64 forward pass (the
    network is convolutional; its channel-attention pooling and text modulation are noise)."""
    import torch

    from instructir_desktop.core.network import network_from_config

    net = network_from_config(config).eval()
    total = [0]

    def count(module, inputs, output) -> None:
        if isinstance(module, torch.nn.ConvTranspose2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total[0] += inputs[0].numel() * module.out_channels * k // module.groups
        elif isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total[0] += output.numel() * module.in_channels // module.groups * k
        elif isinstance(module, torch.nn.Linear):
            total[0] += output.numel() * module.in_features

    for module in net.modules():
        module.register_forward_hook(count)
    x = torch.rand(1, 3, 64, 64)
    e = torch.nn.functional.normalize(torch.randn(1, config.textdim), dim=1)
    with torch.no_grad():
        net(x, e)
    return total[0] / (64 * 64)


def tiled_pixels(size: tuple[int, int], tile: int, multiple: int, margin: int) -> int:
    """Pixels the Restorer's tiles cover for a photo of ``size`` (overlaps counted twice)."""
    from instructir_desktop.core.tiling import DEFAULT_OVERLAP, plan_tiles

    h, w = (n + 2 * margin for n in size)
    tile = max(multiple * 2, tile - tile % multiple)
    tiles = plan_tiles(h, w, tile, min(DEFAULT_OVERLAP, tile // 4), multiple=multiple)
    return sum(
        -(-t.shape[0] // multiple) * multiple * -(-t.shape[1] // multiple) * multiple for t in tiles
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part_naive(pack: Path, size: tuple[int, int], out: Path) -> dict:
    import torch

    from instructir_desktop.core.network import network_from_config
    from instructir_desktop.core.packs import MANIFEST_NAME, PackManifest
    from instructir_desktop.core.text import InstructionEncoder
    from instructir_desktop.core.weights import load_state_dict

    manifest = PackManifest.load(pack / MANIFEST_NAME)
    enc = InstructionEncoder(manifest, pack)
    e = enc.embedding("remove the noise")[None]
    net = network_from_config(manifest.network).eval()
    net.load_state_dict(load_state_dict(pack / "image.safetensors"))
    img = test_image(*size)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    t0 = time.perf_counter()
    with torch.no_grad():
        y = net(x, e).clamp(0, 1)
    seconds = time.perf_counter() - t0
    np.save(out, y[0].permute(1, 2, 0).numpy())
    return {"seconds": seconds}


def part_ours(
    pack: Path, size: tuple[int, int], out: Path | None, tile: int | None, border: bool
) -> dict:
    import threading

    from instructir_desktop.core.restorer import Restorer

    r = Restorer(pack, device="cpu", cache_folder=pack / "cache", tile=tile)
    if not border:  # as the official pack computes (restorer.py: border_margin)
        r.border_margin = 0
    img = test_image(*size)
    # As the app does while the user types: compile the photo's tile shapes in the background
    # and run the single-tile ones once (OpenVINO; torch has nothing to compile), then restore.
    t0 = time.perf_counter()
    r.prepare([size])
    for helper in [t for t in threading.enumerate() if t.name == "instructir-compile"]:
        helper.join()
    prepare = time.perf_counter() - t0
    t0 = time.perf_counter()
    y = r.restore(img, "remove the noise")
    seconds = time.perf_counter() - t0
    if out is not None:
        np.save(out, y)
    computed = tiled_pixels(size, r.tile_size(), r.descriptor.size_multiple, r.border_margin)
    return {
        "seconds": seconds,
        "prepare_s": round(prepare, 2),
        "tiled_pixels": computed,
        "border": r.border_margin,
        **r.describe(),
    }


def part_peak(precision: str) -> dict:
    """A practical peak: a large matrix product (oneDNN, every core) at the precision the
    engine runs and at fp32, the kind of work a CPU does fastest; the higher of the two (the
    engine at bf16 can run its lower levels at fp32, where a CPU multiplies fp32 faster)."""
    import torch

    rates = {}
    for name in dict.fromkeys((precision, "fp32")):
        dtype = torch.bfloat16 if name == "bf16" else torch.float32
        a = torch.rand(2048, 2048).to(dtype)
        b = torch.rand(2048, 2048).to(dtype)
        for _ in range(3):
            a @ b
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(4):
                a @ b
            best = min(best, time.perf_counter() - t0)
        rates[name] = round(4 * 2 * 2048**3 / best / 1e9, 1)
    top = max(rates, key=rates.get)
    return {"gemm_gflops": rates[top], "precision": top, "by_precision": rates}


def child(args) -> None:
    if args.part == "peak":
        print(json.dumps(part_peak(args.precision)), flush=True)
        return
    size = (QUICK if args.quick else SIZES)[args.size]
    out = Path(args.out) if args.out else None
    if args.part == "naive":
        result = part_naive(Path(args.pack), size, out)
    else:
        result = part_ours(Path(args.pack), size, out, args.tile, args.mirrored_border)
    mp = size[0] * size[1] / 1e6
    from instructir_desktop.core.network import OFFICIAL_7D

    flop = 2 * macs_per_pixel(OFFICIAL_7D)
    result["gflops"] = round(flop * size[0] * size[1] / result["seconds"] / 1e9, 1)
    net_px = result.pop("tiled_pixels", size[0] * size[1])
    result["net_gflops"] = round(flop * net_px / result["seconds"] / 1e9, 1)
    result.update(
        {
            "part": args.part,
            "size": args.size,
            "megapixels": round(mp, 2),
            "s_per_mp": round(result["seconds"] / mp, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "seconds": round(result["seconds"], 2),
        }
    )
    print(json.dumps(result), flush=True)


# What an AVX2-only CPU runs (no AVX-512, no native bf16): oneDNN (torch and OpenVINO) and
# torch's own kernels limited to AVX2, and fp32, which is what `auto` picks there.
AVX2_ENV = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "INSTRUCTIR_PRECISION": "fp32",
}


def run_child(
    pack: Path,
    part: str,
    size: str,
    quick: bool,
    out: Path | None,
    env: dict | None = None,
    tile: int | None = None,
    border: bool = False,
) -> dict:
    cmd = [sys.executable, __file__, "--child", "--part", part, "--size", size, "--pack", str(pack)]
    if quick:
        cmd.append("--quick")
    if out is not None:
        cmd += ["--out", str(out)]
    if part == "peak":
        cmd += ["--precision", (env or {}).get("INSTRUCTIR_PRECISION") or "bf16"]
    if tile:
        cmd += ["--tile", str(tile)]
    if border:
        cmd.append("--mirrored-border")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        raise SystemExit(f"{part} {size} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--part", choices=["naive", "ours", "peak"])
    ap.add_argument("--precision", default="bf16", help=argparse.SUPPRESS)
    ap.add_argument(
        "--avx2",
        action="store_true",
        help="run ours as on an AVX2-only CPU (kernels limited to AVX2, fp32)",
    )
    ap.add_argument("--size", choices=list(SIZES))
    ap.add_argument("--pack")
    ap.add_argument("--out")
    ap.add_argument("--skip-24mp", action="store_true")
    ap.add_argument("--tile", type=int, help="ours with this tile size instead of its own choice")
    ap.add_argument(
        "--mirrored-border",
        action="store_true",
        help="ours with the 8 px mirrored border of packs other than the official one",
    )
    ap.add_argument(
        "--rounds", type=int, default=1, help="1 MP naive and ours take turns this many times"
    )
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    from instructir_desktop.core.descriptor import psnr

    work = Path(tempfile.mkdtemp(prefix="instructir-bench-"))
    pack = make_pack(work / "pack")
    env = AVX2_ENV if args.avx2 else None
    print(
        f"CPU threads: {os.cpu_count()}; official 7D config, random weights; "
        f"{'as an AVX2-only CPU (fp32); ' if args.avx2 else ''}work dir {work}"
    )
    rounds: dict[str, list[dict]] = {"naive": [], "ours": []}
    for _ in range(max(1, args.rounds)):
        for part in rounds:
            tile = args.tile if part == "ours" else None
            rounds[part].append(
                run_child(
                    pack,
                    part,
                    "1mp",
                    args.quick,
                    work / f"{part}.npy",
                    env,
                    tile,
                    args.mirrored_border,
                )
            )
    naive, ours = (min(runs, key=lambda r: r["seconds"]) for runs in rounds.values())
    for part, best in (("naive", naive), ("ours", ours)):
        best["rounds_s"] = [r["seconds"] for r in rounds[part]]
    rows = [naive, ours]
    quality = psnr(np.load(work / "ours.npy"), np.load(work / "naive.npy"))
    for size in ("4mp",) + (() if args.skip_24mp else ("24mp",)):
        rows.append(
            run_child(pack, "ours", size, args.quick, None, env, args.tile, args.mirrored_border)
        )
    peak = run_child(
        pack,
        "peak",
        "1mp",
        args.quick,
        None,
        {**(env or {}), "INSTRUCTIR_PRECISION": ours["precision"]},
    )
    for r in rows:
        extra = (
            f" backend={r.get('backend')}/{r.get('precision')}"
            f"{' (lower levels fp32)' if r.get('lower_levels_fp32') else ''} tile={r.get('tile')} "
            f"border={r.get('border')} px "
            f"(shapes compiled and warmed up beforehand in {r.get('prepare_s')} s)"
            if r["part"] == "ours"
            else ""
        )
        print(
            f"{r['part']:<5} {r['size']:<4} {r['megapixels']:6.2f} MP  {r['seconds']:8.2f} s  "
            f"{r['s_per_mp']:7.2f} s/MP  {r['gflops']:6.1f} GFLOP/s "
            f"({r['net_gflops']:.1f} in the network, "
            f"{100 * r['net_gflops'] / peak['gemm_gflops']:.0f}% of peak)  "
            f"peak RSS {r['peak_rss_mb'] / 1024:5.2f} GB{extra}"
        )
    speedup = naive["seconds"] / ours["seconds"]
    print(
        "practical peak (a 2048² matrix product): "
        + ", ".join(f"{p} {g:.1f}" for p, g in peak["by_precision"].items())
        + f" GFLOP/s; the {peak['precision']} figure is the peak above"
    )
    by_round = [round(a / b, 2) for a, b in zip(naive["rounds_s"], ours["rounds_s"])]
    if len(naive["rounds_s"]) > 1:
        print(f"1 MP rounds: naive {naive['rounds_s']} s, ours {ours['rounds_s']} s (best of each)")
        print(f"speed-up round by round: {by_round}")
    print(f"speed-up at 1 MP (naive / ours): {speedup:.2f}x")
    print(f"PSNR ours vs naive at 1 MP: {quality:.2f} dB")
    print(
        json.dumps(
            {
                "rows": rows,
                "peak": peak,
                "speedup_1mp": round(speedup, 2),
                "speedup_by_round": by_round,
                "psnr_vs_naive_1mp": round(quality, 2),
                "avx2": args.avx2,
                "mirrored_border": args.mirrored_border,
                "quick": args.quick,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
