"""Export a training checkpoint (EMA weights + head) as the bundled instructir-lite pack.

python -m instructir_desktop.training.export --run runs/lite --out resources/packs/instructir-lite
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..core.network import NetworkConfig
from ..core.packs import LITE_ID
from ..core.packwriter import write_pack

__all__ = ["main", "export"]


def export(
    run: Path, out: Path, version: str, extra: dict | None = None, weights: str = "ema"
) -> Path:
    ck = torch.load(run / "ckpt.pt", map_location="cpu", weights_only=True)
    config = NetworkConfig.from_dict(json.loads(ck["config"]))
    write_pack(
        out,
        pack_id=LITE_ID,
        name="InstructIR Lite (bundled)",
        version=version,
        description=(
            "Comes with the app and works offline. A small model trained for this app: it "
            "brightens dark photos and removes grain, rain and haze; for blur and upscaling the "
            "official model does much better."
        ),
        config=config,
        image_state=ck[weights],
        head_state=ck["head"],
        licence="MIT (InstructIR Desktop); trained on BSDS500 and LOL (research use)",
        extra={
            "training_steps": int(ck["step"]),
            "training_minutes": round(float(ck["elapsed"]) / 60, 1),
            **(extra or {}),
        },
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", type=Path, default=Path("runs/lite"))
    ap.add_argument("--out", type=Path, default=Path("resources/packs") / LITE_ID)
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument(
        "--weights",
        choices=["ema", "net"],
        default="ema",
        help="the EMA of the weights (default) or the last weights",
    )
    args = ap.parse_args(argv)
    print(export(args.run, args.out, args.version, weights=args.weights))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
