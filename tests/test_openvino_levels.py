"""OpenVINO at bf16 with the lower levels (a quarter of the resolution and below) at fp32
(core/openvino_levels.py): the IR carries the marks, the CPU plugin runs those levels at fp32
and the full and the half resolution at bf16."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from instructir_desktop.core import backends
from instructir_desktop.core.backends import OpenVINOBackend, TorchBackend
from instructir_desktop.core.descriptor import psnr
from instructir_desktop.core.errors import InstructIRError
from instructir_desktop.core.openvino_levels import LEVELS_VERSION, PRECISE
from instructir_desktop.core.restorer import Restorer

needs_openvino_bf16 = pytest.mark.skipif(
    not (backends.openvino_available() and backends.openvino_runs("bf16")),
    reason="OpenVINO's CPU plugin does not run bf16 here (no AVX-512)",
)


def descriptor(pack):
    return Restorer(pack, device="cpu", backend="torch", precision="fp32").descriptor


def level(width: int, side: int) -> str:
    return "full" if width == side else "half" if width == side // 2 else "lower"


def by_level(backend: OpenVINOBackend, side: int, pick) -> dict[str, set[str]]:
    """What ``pick(op, info)`` returns, a (width, value) pair or None, for the compiled nodes
    of a side x side tile, by the level of that width: full resolution, half of it, below."""
    shape = backend._compiled_for(side, side)
    found: dict[str, set[str]] = {"full": set(), "half": set(), "lower": set()}
    for op in shape.model.get_runtime_model().get_ordered_ops():
        picked = pick(op, op.get_rt_info())
        if picked is not None:
            found[level(picked[0], side)].add(picked[1])
    return found


def conv_precisions(backend: OpenVINOBackend, side: int) -> dict[str, set[str]]:
    """The output precisions of the compiled convolutions (feature maps wider than a pixel)."""

    def pick(op, info):
        out = op.get_output_partial_shape(0) if op.get_output_size() else None
        if info["layerType"].astype(str) != "Convolution" or out.rank.get_length() != 4:
            return None
        width = out[3].get_length()
        return (width, info["outputPrecisions"].astype(str)) if width > 1 else None

    return by_level(backend, side, pick)


@needs_openvino_bf16
def test_the_lower_levels_run_at_fp32_and_the_full_resolution_at_bf16(tiny_pack, tmp_path):
    d = descriptor(tiny_pack)
    plain = OpenVINOBackend(d, tmp_path, "bf16")
    mixed = OpenVINOBackend(d, tmp_path, "bf16", lower_fp32=True)
    assert (plain.label, mixed.label) == ("openvino:bf16", "openvino:bf16+fp32-lower")
    found = conv_precisions(plain, 64)
    assert found["lower"] == found["half"] == {"bf16"}
    assert "bf16" in found["full"]  # the last one gives f32
    found = conv_precisions(mixed, 64)
    assert found["lower"] == {"f32"}
    assert found["half"] == {"bf16"} and "bf16" in found["full"]

    # Closer to fp32 than all-bf16, and not the same network run twice.
    reference = TorchBackend(d)
    rng = np.random.default_rng(3)
    tile = rng.random((1, 3, 64, 64), dtype=np.float32)
    e = rng.standard_normal((1, d.net.config.textdim)).astype(np.float32)
    e /= np.linalg.norm(e)
    want = reference.run(tile, e)
    got_plain, got_mixed = plain.run(tile, e), mixed.run(tile, e)
    assert not np.array_equal(got_plain, got_mixed)
    assert psnr(got_mixed, want) >= backends.MIN_PSNR_DB
    assert psnr(got_mixed, want) > psnr(got_plain, want)


def pooling_kernels(backend: OpenVINOBackend, side: int) -> dict[str, set[str]]:
    """The kernels of the channel attention's poolings (a reduction to one pixel), by the
    level they pool."""

    def pick(op, info):
        if info["layerType"].astype(str) != "Reduce" or op.get_output_partial_shape(0)[3] != 1:
            return None
        width = op.input(0).get_partial_shape()[3].get_length()
        return width, info["primitiveType"].astype(str)

    return by_level(backend, side, pick)


@needs_openvino_bf16
def test_the_lower_levels_channel_attention_pools_at_fp32(tiny_pack, tmp_path):
    # At bf16 it would convert its fp32 input, the whole feature map, to bf16 first.
    d = descriptor(tiny_pack)
    found = pooling_kernels(OpenVINOBackend(d, tmp_path, "bf16", lower_fp32=True), 64)
    assert found["lower"] and all(k.endswith("f32") for k in found["lower"])
    upper = found["full"] | found["half"]
    assert found["full"] and found["half"] and all(k.endswith("bf16") for k in upper)
    found = pooling_kernels(OpenVINOBackend(d, tmp_path, "bf16"), 64)
    assert all(k.endswith("bf16") for k in found["lower"] | found["full"] | found["half"])


@needs_openvino_bf16
def test_the_marked_ir_sits_beside_the_plain_one_and_shares_its_weights(tiny_pack, tmp_path):
    d = descriptor(tiny_pack)
    OpenVINOBackend(d, tmp_path, "bf16", lower_fp32=True)
    (plain,) = (p for p in tmp_path.glob("instructir-*.xml") if "lower" not in p.name)
    mixed = plain.with_name(f"{plain.stem}-lower-fp32-{LEVELS_VERSION}.xml")
    assert mixed.is_file() and not mixed.with_suffix(".bin").exists()
    marked = [
        layer.get("type")
        for layer in ET.parse(mixed).getroot().iter("layer")
        if any(a.attrib == PRECISE for a in layer.iter("attribute"))
    ]
    assert "Convolution" in marked and "Parameter" not in marked and "Result" not in marked
    assert not any(a.attrib == PRECISE for a in ET.parse(plain).getroot().iter("attribute"))
    # A second backend reads the marked IR from the cache.
    before = mixed.stat().st_mtime_ns
    again = OpenVINOBackend(d, tmp_path, "bf16", lower_fp32=True)
    assert mixed.stat().st_mtime_ns == before and again._xml == mixed


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
def test_the_lower_levels_at_fp32_need_a_reduced_precision(tiny_pack, tmp_path):
    with pytest.raises(InstructIRError, match="reduced precision"):
        OpenVINOBackend(descriptor(tiny_pack), tmp_path, "fp32", lower_fp32=True)


@needs_openvino_bf16
def test_auto_at_fp32_times_no_mixed_form(tiny_pack, tmp_path):
    r = Restorer(tiny_pack, device="cpu", cache_folder=tmp_path, precision="fp32")
    assert not any("lower" in label for label in r.backend_timings)
    assert r.describe()["lower_levels_fp32"] is False
