"""The form for OpenVINO with its depthwise convolutions apart against fused, in one process.

    python benchmarks/depthwise_apart.py                        # official 7D, one 1 MP tile
    python benchmarks/depthwise_apart.py --in-flight --size 1280x1280   # four tiles, two in flight
    python benchmarks/depthwise_apart.py --lite                 # the bundled lite network's shape

On x86 CPUs with AVX2 and without AVX-512, OpenVINO's CPU plugin fuses each depthwise 3x3
convolution into the 1x1 convolution before it (``core/network_graph.py``,
``openvino_fuses_depthwise``); the backend compiles a form that keeps them apart there. Both
forms (seeded random weights: speed does not depend on their values) are compiled at fp32 for
one tile shape, in latency mode (one tile on every core, as the app's single-tile renders) or
with ``--in-flight`` in throughput mode (four tiles, as many in flight as OpenVINO runs, as a
photo of several tiles); they run in turn, alternating which goes first. Prints each round,
the best and the median of each, the kernels OpenVINO chose for the depthwise convolutions,
and one JSON line. On other CPUs both forms compile the same kernels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="880x1168", help="tile HEIGHTxWIDTH (multiples of 16)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--in-flight", action="store_true", help="four tiles in throughput mode")
    ap.add_argument("--lite", action="store_true", help="the lite configuration")
    args = ap.parse_args()
    import openvino as ov
    import torch
    from conftest import seeded_network

    from instructir_desktop.core.descriptor import PaddedNet
    from instructir_desktop.core.network import LITE, OFFICIAL_7D
    from instructir_desktop.core.network_graph import graph_form, openvino_fuses_depthwise

    h, w = (int(n) for n in args.size.lower().split("x"))
    config = LITE if args.lite else OFFICIAL_7D
    net = seeded_network(config)
    core = ov.Core()
    mode = "THROUGHPUT" if args.in_flight else "LATENCY"
    x = np.random.default_rng(0).random((1, 3, h, w)).astype(np.float32)
    e = np.zeros((1, config.textdim), np.float32)
    e[0, 0] = 1.0
    runs, outputs, kernels = {}, {}, {}
    for name, apart in (("fused", False), ("apart", True)):
        module = PaddedNet(graph_form(net, openvino=True, depthwise_apart=apart)).eval()
        example = (torch.rand(1, 3, 64, 64), torch.from_numpy(e))
        with torch.no_grad():
            model = ov.convert_model(module, example_input=example)
        model.reshape({0: [1, 3, h, w], 1: [1, config.textdim]})
        config_ov = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": mode,
            "CPU_DENORMALS_OPTIMIZATION": "YES",
        }
        compiled = core.compile_model(model, "CPU", config_ov)
        ops = compiled.get_runtime_model().get_ordered_ops()
        kinds = [op.get_rt_info()["primitiveType"].astype(str) for op in ops]
        kernels[name] = sorted({k for k in kinds if "_dw" in k})
        if args.in_flight:
            queue = ov.AsyncInferQueue(compiled)

            def run(queue=queue) -> None:
                for _ in range(4):
                    queue.start_async([x, e])
                queue.wait_all()

        else:
            request = compiled.create_infer_request()

            def run(request=request) -> None:
                request.infer([x, e])

        run()  # first run: memory paged in
        request = compiled.create_infer_request()
        request.infer([x, e])
        outputs[name] = request.get_output_tensor(0).data.copy()
        runs[name] = run
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(args.rounds):
        order = list(runs) if i % 2 == 0 else list(runs)[::-1]
        for name in order:
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
        print(f"round {i + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in runs), flush=True)
    diff = float(np.abs(outputs["fused"] - outputs["apart"]).max())
    result = {
        "config": "lite" if args.lite else "official-7d",
        "size": [h, w],
        "mode": mode,
        "openvino_fuses_depthwise": openvino_fuses_depthwise(),
        "max_abs_diff": diff,
        "kernels": kernels,
    }
    for name, ts in times.items():
        result[name] = {"best_s": round(min(ts), 3), "median_s": round(statistics.median(ts), 3)}
        result[name]["rounds_s"] = [round(t, 3) for t in ts]
        print(
            f"{name}: best {min(ts):.3f} s, median {statistics.median(ts):.3f} s; {kernels[name]}"
        )
    result["apart_speedup_median"] = round(
        result["fused"]["median_s"] / result["apart"]["median_s"], 3
    )
    result["apart_faster_rounds"] = sum(a < f for a, f in zip(times["apart"], times["fused"]))
    print(
        f"apart: {result['apart_speedup_median']}x fused (medians), faster in "
        f"{result['apart_faster_rounds']} of {args.rounds} rounds; outputs differ by {diff:.2e}"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
