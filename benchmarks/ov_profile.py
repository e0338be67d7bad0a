"""Where OpenVINO spends a tile's time: the network as written vs its graph forms.

    python benchmarks/ov_profile.py                  # one 512² tile, bf16 where the CPU runs it
    python benchmarks/ov_profile.py --size 880x1168  # a 1 MP photo with its 8 px border
    python benchmarks/ov_profile.py --precision fp32
    python benchmarks/ov_profile.py --precision fp16 # where the CPU runs f16 (AVX512-FP16)

The official 7D configuration with seeded random weights (benchmarks/engine.py's pack) is
converted three times: as written, traced channels-last (the layout torch runs it in); in the
graph form torch's frozen graph is traced from; and in the graph form for OpenVINO, the one the
OpenVINO backend compiles (``core/network_graph.py``); at bf16 or fp16 also a fourth time, the
form for OpenVINO with its levels from a quarter of the resolution down at fp32
(``core/openvino_levels.py``, which the backend times against it); on CPUs where OpenVINO
fuses each depthwise convolution into the 1x1 convolution before it (AVX2 without AVX-512),
the form for OpenVINO keeps them apart, as the backend compiles it there, and one more form
lets OpenVINO fuse them. Each is compiled for one
tile shape with OpenVINO's per-layer counters on; they run in turn, three times each.
Prints the best wall time of each and, for each, the share of the counted time per kind of
layer (with the kernel OpenVINO chose); then, for the form for OpenVINO (and its mixed
variant), the counted time per level of the network (output width) and the rate of its 1x1
convolutions; then one JSON line.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


FORMS = {"as written": None, "graph form": False, "graph form for OpenVINO": True}
# At a reduced precision, a fourth: the form for OpenVINO with its levels from a quarter of
# the resolution down at fp32, which the backend also times (core/openvino_levels.py).
MIXED = "graph form for OpenVINO, lower levels fp32"
# On CPUs where OpenVINO fuses each depthwise convolution into the 1x1 before it (AVX2
# without AVX-512), the form for OpenVINO keeps them apart; this one lets it fuse them.
FUSED = "graph form for OpenVINO, depthwise fused"


def lower_levels_fp32(core, model, config, folder: Path):
    """``model`` with the levels from a quarter of the resolution down marked to stay at fp32
    (through the IR, as the backend does it)."""
    import openvino as ov

    from instructir_desktop.core.openvino_levels import lower_level_names, write_lower_levels_fp32

    plain, marked = folder / "profile.xml", folder / "profile-lower-fp32.xml"
    ov.save_model(model, str(plain), compress_to_fp16=False)
    names = lower_level_names(model, config.textdim, config.size_multiple)
    write_lower_levels_fp32(plain, marked, names)
    return core.read_model(str(marked), str(plain.with_suffix(".bin")))


def convert(net, openvino: bool | None, fused: bool = False):
    import openvino as ov
    import torch

    from instructir_desktop.core.descriptor import PaddedNet
    from instructir_desktop.core.network_graph import graph_form, openvino_fuses_depthwise

    x = torch.rand(1, 3, 64, 64)
    if openvino is not None:
        apart = bool(openvino) and not fused and openvino_fuses_depthwise()
        module = PaddedNet(graph_form(net, openvino=openvino, depthwise_apart=apart))
    else:
        module = PaddedNet(net.to(memory_format=torch.channels_last))
        x = x.contiguous(memory_format=torch.channels_last)
    e = torch.nn.functional.normalize(torch.randn(1, net.config.textdim), dim=1)
    shapes = [ov.PartialShape([1, 3, -1, -1]), ov.PartialShape([1, net.config.textdim])]
    with torch.no_grad():
        return ov.convert_model(module.eval(), example_input=(x, e), input=shapes)


def by_level(compiled) -> list[dict]:
    """The last run's counted time per output width (one level of the network's U), and the
    part of it in 1x1 convolutions with their arithmetic rate (2 x H x W x Cin x Cout / s;
    the norms' one-output statistics convolutions are counted with the rest)."""
    levels: dict[int, dict] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        us = info["execTimeMcs"].astype(str)
        shape = op.get_output_partial_shape(0)
        if not us.isdigit() or shape.rank.get_length() != 4:
            continue
        _n, cout, oh, ow = (d.get_length() for d in shape)
        level = levels.setdefault(ow, {"width": ow, "ms": 0.0, "conv1x1_ms": 0.0, "flop": 0})
        level["ms"] += int(us) / 1000
        if "1x1" in info["primitiveType"].astype(str) and cout > 1 and ow > 1:
            cin = op.input(0).get_partial_shape()[1].get_length()
            level["conv1x1_ms"] += int(us) / 1000
            level["flop"] += 2 * oh * ow * cin * cout
    rows = []
    for level in sorted(levels.values(), key=lambda lv: -lv["width"]):
        seconds = level["conv1x1_ms"] / 1000
        rows.append(
            {
                "width": level["width"],
                "ms": round(level["ms"], 1),
                "conv1x1_ms": round(level["conv1x1_ms"], 1),
                "conv1x1_gflops": round(level["flop"] / seconds / 1e9, 1) if seconds else None,
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="512x512", help="tile HEIGHTxWIDTH (multiples of 16)")
    ap.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"], default="auto")
    args = ap.parse_args()
    import openvino as ov
    from engine import make_pack

    from instructir_desktop.core.backends import openvino_runs
    from instructir_desktop.core.network import network_from_config
    from instructir_desktop.core.network_graph import openvino_fuses_depthwise
    from instructir_desktop.core.packs import MANIFEST_NAME, PackManifest
    from instructir_desktop.core.weights import load_state_dict

    h, w = (int(n) for n in args.size.lower().split("x"))
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if openvino_runs("bf16") else "fp32"
    pack = make_pack(Path(tempfile.mkdtemp(prefix="instructir-profile-")) / "pack")
    manifest = PackManifest.load(pack / MANIFEST_NAME)
    core = ov.Core()
    x = np.random.default_rng(0).random((1, 3, h, w)).astype(np.float32)
    e = np.zeros((1, manifest.network.textdim), np.float32)
    e[0, 0] = 1.0
    requests, compiled = {}, {}
    forms = dict(FORMS)
    if precision != "fp32":
        forms[MIXED] = True
    if openvino_fuses_depthwise():
        forms[FUSED] = True
    for name, openvino in forms.items():
        net = network_from_config(manifest.network).eval()
        net.load_state_dict(load_state_dict(pack / "image.safetensors"))
        model = convert(net, openvino, fused=name == FUSED)
        if name == MIXED:
            model = lower_levels_fp32(core, model, manifest.network, pack.parent)
        model.reshape({0: [1, 3, h, w], 1: [1, manifest.network.textdim]})
        config = {
            "INFERENCE_PRECISION_HINT": {"bf16": "bf16", "fp16": "f16"}.get(precision, "f32"),
            "PERFORMANCE_HINT": "LATENCY",
            "PERF_COUNT": "YES",
            "CPU_DENORMALS_OPTIMIZATION": "YES",
        }
        compiled[name] = core.compile_model(model, "CPU", config)
        request = compiled[name].create_infer_request()
        request.infer([x, e])  # first run: memory allocation
        requests[name] = request
    best = dict.fromkeys(requests, float("inf"))
    for _ in range(3):
        for name, request in requests.items():
            t0 = time.perf_counter()
            request.infer([x, e])
            best[name] = min(best[name], time.perf_counter() - t0)
    result = {"size": [h, w], "precision": precision, "forms": {}}
    for name, request in requests.items():
        layers: collections.Counter = collections.Counter()
        for info in request.profiling_info:
            layers[f"{info.node_type} ({info.exec_type})"] += info.real_time.total_seconds()
        total = sum(layers.values())
        print(f"{name}: {best[name]:.3f} s for {h}x{w} at {precision}")
        for layer, seconds in layers.most_common(8):
            print(f"  {100 * seconds / total:5.1f} %  {layer}")
        result["forms"][name] = {
            "seconds": round(best[name], 3),
            "shares": {k: round(v / total, 3) for k, v in layers.most_common(12)},
        }
    result["levels"] = {}
    for name in ("graph form for OpenVINO", MIXED):
        if name not in compiled:
            continue
        levels = by_level(compiled[name])
        print(f"{name} by level (output width: counted ms, of which 1x1 convolutions):")
        for level in levels:
            rate = level["conv1x1_gflops"]
            line = f"  {level['width']:5d} px wide: {level['ms']:7.1f} ms"
            line += f", 1x1 {level['conv1x1_ms']:6.1f} ms"
            print(line + (f" at {rate:.0f} GFLOP/s" if rate else ""))
        result["levels"][name] = levels
    result["speedup"] = round(best["as written"] / best["graph form for OpenVINO"], 2)
    result["speedup_vs_graph_form"] = round(best["graph form"] / best["graph form for OpenVINO"], 2)
    print(
        f"graph form for OpenVINO vs as written: {result['speedup']}x, "
        f"vs the graph form: {result['speedup_vs_graph_form']}x"
    )
    if FUSED in best:
        result["depthwise_apart_speedup"] = round(best[FUSED] / best["graph form for OpenVINO"], 2)
        print(f"depthwise convolutions apart: {result['depthwise_apart_speedup']}x fused")
    if MIXED in best:
        result["lower_fp32_speedup"] = round(best["graph form for OpenVINO"] / best[MIXED], 2)
        print(f"with the lower levels at fp32: {result['lower_fp32_speedup']}x its all-{precision}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
