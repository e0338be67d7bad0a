"""The lower levels of the network at fp32 under OpenVINO's bf16 hint.

Where a CPU multiplies fp32 as fast as bf16 or faster (AVX512-BF16 without AMX: one bf16 dot
product per cycle against two fp32 FMAs), the lower levels (a quarter of the resolution and
below, 128 channels and more), where 1x1 convolutions do most of the work, run faster at fp32;
the full and the half resolution, runs of passes over the largest feature maps, stay faster
at bf16, which moves half the bytes (the half resolution at fp32: 3 % slower per photo). The
backend keeps whichever form it measures faster (``backends.choose_backend``); the mixed form
is closer to fp32 than all-bf16.

OpenVINO's CPU plugin keeps a node at its original precision when the node carries the
``precise`` runtime attribute (``ov::disable_fp16_compression``). Python can set only string
attributes, which the plugin does not read, so the attribute is written into the IR's XML
and the plugin's IR reader makes the real one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .atomic import atomic_write_bytes

# The IR name of ov::DisableFP16Compression (OPENVINO_RTTI("precise", "0")).
PRECISE = {"name": "precise", "version": "0"}
# Part of the marked IR's name and of the cached verdicts' keys: other marks, other names.
LEVELS_VERSION = "l3"
# Node kinds that hold no work of their own.
_SKIP = {"Parameter", "Result", "Const", "Constant"}


def lower_level_names(model, textdim: int, multiple: int) -> set[str]:
    """The friendly names of ``model``'s nodes in the lower levels: their output is a feature
    map at most a quarter as wide as the input and wider than one pixel, or comes from one
    through the channel attention (the pooled vector, its convolution, the weights it scales).
    The channel attention of the upper levels stays at bf16 with the rest of its level."""
    probe = model.clone()
    side = 8 * multiple  # four levels below it, the smallest still wider than one pixel
    probe.reshape({0: [1, 3, side, side], 1: [1, textdim]})
    names = set()
    for op in probe.get_ordered_ops():  # inputs before the nodes that read them
        if op.get_type_name() in _SKIP or op.get_output_size() < 1:
            continue
        shape = op.get_output_partial_shape(0)
        if not shape.is_static or shape.rank.get_length() != 4:
            continue
        width = shape[3].get_length()
        lower = 1 < width <= side // 4
        # At bf16 a lower level's pooling would have its whole fp32 input converted to bf16
        # first (8 % of a 1 MP tile on a CPU without AMX).
        attention = width == 1 and any(
            v.get_node().get_friendly_name() in names for v in op.input_values()
        )
        if lower or attention:
            names.add(op.get_friendly_name())
    return names


def write_lower_levels_fp32(xml: Path, out: Path, names: set[str]) -> int:
    """Copy the IR ``xml`` to ``out`` (weights stay in ``xml``'s .bin) with the ``precise``
    attribute on the layers named ``names``; returns how many layers it marked."""
    tree = ET.parse(xml)
    marked = 0
    for layer in tree.getroot().iter("layer"):
        if layer.get("name") not in names:
            continue
        rt_info = layer.find("rt_info")
        if rt_info is None:
            rt_info = ET.SubElement(layer, "rt_info")
        if not any(a.attrib == PRECISE for a in rt_info.iter("attribute")):
            ET.SubElement(rt_info, "attribute", PRECISE)
        marked += 1
    atomic_write_bytes(out, ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True))
    return marked
