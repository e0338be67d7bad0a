"""Checks that need a GPU, in one command with one JSON summary on stdout.

    scripts/gpu_check.sh            # or: python scripts/gpu_check.py [--quick]

On CUDA, in under five minutes: the official 7D configuration with seeded weights on CUDA
against the CPU (fp32 at least 50 dB; fp16 and bf16 at least 45 dB, or the precision policy
must fall back to fp32), restore times at 1, 4 and 24 megapixels with peak GPU memory, a
cancel in the middle of a job, the out-of-memory fallback (smaller tiles, then the CPU, with
a message), the app's ``--self-test --device cuda`` and the bundled pack on CUDA. Without
CUDA the CPU parts run (the 7D network's graph against eager; the rest on a toy network, as
they check this script's logic) and every CUDA part is reported as skipped. Apple's MPS is not
checked: no Mac with an Apple GPU is available to the project, so its code path is guarded
and untested. ``--quick`` is the CPU part at toy sizes, as the test suite runs it.

Progress goes to stderr; stdout holds only the summary. Exit status 0 when nothing failed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from instructir_desktop import __version__  # noqa: E402
from instructir_desktop.core.backends import MIN_PSNR_DB, choose_backend, resolve_precision  # noqa: E402
from instructir_desktop.core.descriptor import ModelDescriptor, psnr  # noqa: E402
from instructir_desktop.core.errors import CancelledError  # noqa: E402
from instructir_desktop.core.network import (  # noqa: E402
    OFFICIAL_7D,
    NetworkConfig,
    TextHead,
    network_from_config,
)
from instructir_desktop.core.restorer import Restorer  # noqa: E402

FP32_MIN_DB = 50.0
TINY = NetworkConfig(width=8, enc_blks=(1, 1), middle_blk_num=1, dec_blks=(1, 1), textdim=32)
MEGAPIXELS = {1: (1000, 1000), 4: (2000, 2000), 24: (4000, 6000)}
INSTRUCTION = "remove the noise"


def log(message: str) -> None:
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)


def seeded_network(config: NetworkConfig, seed: int = 7) -> torch.nn.Module:
    """The network with seeded random weights, beta/gamma included (no block an identity)."""
    torch.manual_seed(seed)
    net = network_from_config(config)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("beta", "gamma")) and p.dim() == 4:
                p.normal_(0.0, 0.1)
    return net.eval()


def write_seeded_pack(folder: Path, config: NetworkConfig) -> Path:
    """A pack with the given network shape, seeded weights and the MiniLM text encoder."""
    from instructir_desktop.core.packwriter import write_pack

    torch.manual_seed(8)
    head = TextHead(384, config.textdim, 7)
    write_pack(
        folder,
        pack_id="gpu-check",
        name="GPU check (seeded weights)",
        version="0",
        description="written by scripts/gpu_check.py",
        config=config,
        image_state=seeded_network(config).state_dict(),
        head_state=head.state_dict(),
        half=False,
    )
    return folder


def test_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w, yy / h, np.full((h, w), 0.4, np.float32)], axis=2)
    noise = rng.standard_normal((h, w, 3), dtype=np.float32) * 0.05
    return np.clip(base + noise, 0, 1)


def skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


class Check:
    """Shared state of one run: devices, sizes and the seeded pack."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.cuda = torch.cuda.is_available()
        self.tmp = Path(tempfile.mkdtemp(prefix="instructir-gpu-check-"))
        # Without CUDA the CPU parts only check the script's logic (benchmarks/engine.py times
        # the 7D network on CPUs): the toy network keeps them to seconds.
        self.config = OFFICIAL_7D if self.cuda and not quick else TINY
        self.pack = write_seeded_pack(self.tmp / "pack", self.config)
        self._restorers: dict[str, Restorer] = {}

    def restorer(self, device: str, **kw) -> Restorer:
        key = f"{device}{sorted(kw.items())}"
        if key not in self._restorers:
            self._restorers[key] = Restorer(self.pack, device=device, backend="torch", **kw)
        return self._restorers[key]

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


def check_parity(c: Check) -> dict:
    """The official 7D network on one tile (--quick: the toy network): the CPU's frozen
    graph against eager fp32; CUDA fp32/fp16/bf16 against the CPU, and the precision policy."""
    side = 32 if c.quick else 256
    config = TINY if c.quick else OFFICIAL_7D
    net = seeded_network(config)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(test_photo(side, side)).permute(2, 0, 1)[None].contiguous()
    e = torch.from_numpy(rng.standard_normal((1, config.textdim))).float()
    e = torch.nn.functional.normalize(e)
    with torch.inference_mode():
        reference = net(x, e).clamp(0, 1)
    cpu = ModelDescriptor.wrap(copy.deepcopy(net), "cpu")
    result: dict = {"tile": side, "cpu_graph_vs_eager_db": round(psnr(cpu(x, e), reference), 2)}
    result["network"] = "official-7d" if config == OFFICIAL_7D else "tiny"
    ok = result["cpu_graph_vs_eager_db"] >= FP32_MIN_DB
    if not c.cuda:
        result.update(status="pass" if ok else "fail", cuda="skipped: no CUDA device")
        return result
    gpu = ModelDescriptor.wrap(copy.deepcopy(net), "cuda")
    result["auto_precision_on_cuda"] = resolve_precision("auto", "cuda")
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16),
                        ("bf16", torch.bfloat16)):  # fmt: skip
        db = psnr(gpu(x, e, dtype=dtype).cpu(), reference)
        entry: dict = {"psnr_db": round(db, 2)}
        if name == "fp32":
            entry["ok"] = db >= FP32_MIN_DB
        else:
            backend, _ = choose_backend(gpu, "torch", name)
            entry["policy_runs"] = backend.precision
            # Reduced precision is fine where it is close enough; elsewhere the policy must
            # have fallen back to fp32.
            entry["ok"] = db >= MIN_PSNR_DB or backend.precision == "fp32"
        ok = ok and entry["ok"]
        result[name] = entry
    result["status"] = "pass" if ok else "fail"
    return result


def check_restore_times(c: Check) -> dict:
    """Seconds and peak GPU memory per size, after a warm-up restore."""
    result: dict = {}
    if c.quick or not c.cuda:
        h, w = (96, 128) if c.quick else (512, 512)
        r = c.restorer("cpu")
        r.restore(test_photo(64, 64), INSTRUCTION)
        t0 = time.perf_counter()
        r.restore(test_photo(h, w), INSTRUCTION)
        result["cpu"] = {"megapixels": round(h * w / 1e6, 3),
                         "seconds": round(time.perf_counter() - t0, 2),
                         "tile": r.tile_size()}  # fmt: skip
    if not c.cuda:
        result.update(status="pass", cuda="skipped: no CUDA device")
        return result
    r = c.restorer("cuda")
    r.restore(test_photo(256, 256), INSTRUCTION)
    result.update(precision=r.backend.precision, tile=r.tile_size())
    for mp, (h, w) in MEGAPIXELS.items():
        photo = test_photo(h, w)
        c.sync()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = r.restore(photo, INSTRUCTION)
        c.sync()
        result[f"{mp}mp"] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "finite": bool(np.isfinite(out).all()),
        }
        log(f"{mp} MP: {result[f'{mp}mp']}")
    result["status"] = "pass" if all(result[f"{m}mp"]["finite"] for m in MEGAPIXELS) else "fail"
    return result


def check_cancel(c: Check) -> dict:
    """Cancel once two tiles are done: the job stops within a tile, nothing is returned."""
    device = "cuda" if c.cuda else "cpu"
    r = c.restorer(device)
    h, w, tile = (256, 256, 64) if (c.quick or not c.cuda) else (4000, 6000, 512)
    flag = threading.Event()
    asked: list[float] = []

    def progress(fraction: float, message: str) -> None:
        if message.startswith("tile 2/") and not asked:
            asked.append(time.perf_counter())
            flag.set()

    try:
        r.restore(test_photo(h, w), INSTRUCTION, tile=tile, progress=progress,
                  cancel=flag.is_set)  # fmt: skip
    except CancelledError:
        latency = time.perf_counter() - asked[0]
        return {"status": "pass", "device": device, "seconds_to_stop": round(latency, 3)}
    return {"status": "fail", "device": device, "error": "the restore was not cancelled"}


class _AlwaysOutOfMemory:
    """A backend that runs out of memory on every tile (the CPU part of the OOM check)."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.precision = inner, inner.name, inner.precision

    def run(self, tile, e):
        oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
        raise oom("CUDA out of memory (simulated)")

    def run_many(self, tiles, e):
        for tile in tiles:
            yield self.run(tile, e)


def check_oom_fallback(c: Check) -> dict:
    """Out of GPU memory: smaller tiles first, then the CPU, each said in a sentence."""
    if not c.cuda:
        r = Restorer(c.pack, device="cpu", backend="torch", precision="fp32")
        reference = r.restore(test_photo(96, 96), INSTRUCTION)
        r.backend, r.device = _AlwaysOutOfMemory(r.backend), torch.device("cuda")
        out = r.restore(test_photo(96, 96), INSTRUCTION, tile=512)
        ok = bool(r.notices) and "CPU" in r.notices[-1] and psnr(out, reference) >= 45.0
        return {"status": "pass" if ok else "fail", "simulated": True, "notices": r.notices,
                "cuda": "skipped: no CUDA device"}  # fmt: skip
    r = c.restorer("cuda", tile=2048)
    photo = test_photo(2000, 2000)
    result: dict = {"tile": 2048, "precision": r.backend.precision}
    total = torch.cuda.get_device_properties(0).total_memory
    # 600 MB over what is allocated: too little for 2048-pixel tiles of the 7D network, enough
    # for smaller ones. 1 MB: too little for any tile, so the photo goes to the CPU.
    for label, headroom, size in (("smaller_tiles", 600 << 20, 2000), ("cpu", 1 << 20, 512)):
        torch.cuda.empty_cache()
        cap = (torch.cuda.memory_allocated() + headroom) / total
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap))
        try:
            t0 = time.perf_counter()
            out = r.restore(photo[:size, :size], INSTRUCTION)
            seconds = time.perf_counter() - t0
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
            torch.cuda.empty_cache()
        notices = list(r.notices)
        result[label] = {"seconds": round(seconds, 2), "notices": notices}
        if label == "smaller_tiles" and notices:
            # The same tiles without the cap: the fallback must give the same photo.
            final = int(notices[-1].split("trying ")[-1].split("-pixel")[0])
            same = r.restore(photo[:size, :size], INSTRUCTION, tile=final)
            result[label].update(final_tile=final, psnr_vs_uncapped_db=round(psnr(out, same), 2))
    smaller = result["smaller_tiles"]
    ok = bool(smaller["notices"]) and smaller.get("psnr_vs_uncapped_db", 0) >= FP32_MIN_DB
    ok = ok and any("on the CPU" in n for n in result["cpu"]["notices"])
    result["status"] = "pass" if ok else "fail"
    return result


def check_self_test(c: Check) -> dict:
    """The app's own offscreen self-test, run as a user would run it."""
    if not c.cuda:
        return skipped("no CUDA device (the test suite runs the self-test on the CPU)")
    device = "cuda"
    cmd = [sys.executable, "-m", "instructir_desktop.ui.main", "--self-test", "--device", device]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    try:
        report = json.loads(done.stdout[done.stdout.index("{") :])
    except ValueError:
        return {"status": "fail", "rc": done.returncode, "stderr": done.stderr[-500:]}
    ran_on = (report.get("model") or {}).get("device")
    ok = done.returncode == 0 and report.get("ok") and ran_on == device
    return {"status": "pass" if ok else "fail", "device": ran_on,
            "seconds": report.get("seconds"), "error": report.get("error")}  # fmt: skip


def check_bundled_pack(c: Check) -> dict:
    """The pack shipped with the app, on CUDA at its automatic precision, against the CPU."""
    if not c.cuda:
        return skipped("no CUDA device (the test suite covers the bundled pack on the CPU)")
    from PIL import Image

    from instructir_desktop.core.packs import LITE_ID
    from instructir_desktop.core.resources import resource_path

    image = Image.open(resource_path("sample", "sample.jpg")).convert("RGB")
    image.thumbnail((768, 768))
    photo = np.asarray(image, np.float32) / 255
    pack = resource_path("packs", LITE_ID)
    cpu = Restorer(pack, device="cpu", backend="torch", precision="fp32")
    cpu = cpu.restore(photo, "it is too dark")
    gpu = Restorer(pack, device="cuda", backend="torch")
    gpu.restore(photo[:64, :64], "it is too dark")
    c.sync()
    t0 = time.perf_counter()
    out = gpu.restore(photo, "it is too dark")
    c.sync()
    db = psnr(out, cpu)
    return {"status": "pass" if db >= MIN_PSNR_DB else "fail", "precision":
            gpu.backend.precision, "size": list(photo.shape[:2]), "psnr_vs_cpu_db": round(db, 2),
            "seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip


SECTIONS = (
    ("parity", check_parity),
    ("restore_times", check_restore_times),
    ("cancel", check_cancel),
    ("oom_fallback", check_oom_fallback),
    ("self_test", check_self_test),
    ("bundled_pack", check_bundled_pack),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CPU part at toy sizes")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    c = Check(args.quick)
    summary: dict = {
        "check": "instructir-gpu-check",
        "version": __version__,
        "quick": args.quick,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": c.cuda,
        "device": torch.cuda.get_device_name(0) if c.cuda else platform.processor() or "cpu",
        "mps": "untested: no Apple GPU is available to the project; the code path is guarded",
        "config": "official-7d" if c.config == OFFICIAL_7D else "tiny",
        "sections": {},
    }
    for name, check in SECTIONS:
        log(f"{name}…")
        t0 = time.perf_counter()
        try:
            result = check(c)
        except Exception as exc:  # noqa: BLE001 - one failed part must not hide the others
            result = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"}
        result["check_seconds"] = round(time.perf_counter() - t0, 2)
        summary["sections"][name] = result
        log(f"{name}: {result['status']}")
    statuses = {n: s["status"] for n, s in summary["sections"].items()}
    summary["failed"] = [n for n, s in statuses.items() if s == "fail"]
    summary["skipped"] = [n for n, s in statuses.items() if s == "skipped"]
    if not c.cuda:
        summary["skipped"].append("every CUDA part (no CUDA device)")
    summary["ok"] = not summary["failed"]
    summary["seconds"] = round(time.perf_counter() - t_start, 1)
    print(json.dumps(summary, indent=2), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
