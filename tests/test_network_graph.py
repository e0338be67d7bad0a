"""The network's graph form (what OpenVINO compiles) computes what the network computes."""

from __future__ import annotations

import pytest
import torch
from conftest import seeded_network

from instructir_desktop.core import backends
from instructir_desktop.core.descriptor import PaddedNet
from instructir_desktop.core.network import LITE, OFFICIAL_7D, LayerNorm2d, NAFBlock
from instructir_desktop.core.network_graph import (
    APART_CHANNELS,
    CONV_STATS_CHANNELS,
    GRAPH_VERSION,
    OpenVINONorm,
    SplitGateBlock,
    graph_form,
    openvino_form_version,
    openvino_fuses_depthwise,
)

FORMS = {"torch": {}, "openvino": {"openvino": True}}
FORMS["openvino-dw-apart"] = {"openvino": True, "depthwise_apart": True}


@pytest.mark.parametrize("form_args", FORMS.values(), ids=FORMS.keys())
@pytest.mark.parametrize("config", [LITE, OFFICIAL_7D], ids=["lite", "official-7d"])
def test_graph_form_is_the_same_network(config, form_args):
    net = seeded_network(config)
    form = graph_form(net, **form_args)
    assert not any(isinstance(m, NAFBlock) for m in form.modules())
    blocks = sum(isinstance(m, NAFBlock) for m in net.modules())
    assert sum(isinstance(m, SplitGateBlock) for m in form.modules()) == blocks
    torch.manual_seed(1)
    x = torch.rand(1, 3, 64, 96)
    e = torch.nn.functional.normalize(torch.randn(1, config.textdim), dim=1)
    with torch.no_grad():
        want = net(x, e)
        got = form(x, e)
        # The network itself is untouched (the form holds copies of its weights).
        again = net(x, e)
    assert torch.equal(want, again)
    assert (want - got).abs().max().item() < 1e-4
    assert not torch.equal(want, x)  # the blocks did something


@pytest.mark.parametrize("channels", [8, CONV_STATS_CHANNELS, 64])
def test_openvino_norm_is_the_layer_norm(channels):
    torch.manual_seed(channels)
    norm = LayerNorm2d(channels)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.3)
        norm.bias.normal_(0.0, 0.3)
    ov_norm = OpenVINONorm(norm)
    assert ov_norm.conv_stats == (channels <= CONV_STATS_CHANNELS)
    # Features far from zero mean, as a residual stream's are: the variance is still exact.
    x = torch.randn(2, channels, 9, 13) * 3 + 5
    with torch.no_grad():
        assert (ov_norm(x) - norm(x)).abs().max().item() < 1e-4


def test_graph_form_follows_the_weights_it_was_made_from():
    a, b = seeded_network(LITE, seed=0), seeded_network(LITE, seed=1)
    x = torch.rand(1, 3, 32, 32)
    e = torch.nn.functional.normalize(torch.randn(1, LITE.textdim), dim=1)
    with torch.no_grad():
        assert (graph_form(a)(x, e) - graph_form(b)(x, e)).abs().max().item() > 1e-3


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
def test_the_compiled_graph_has_no_transposes_or_channel_splits():
    """The two op kinds OpenVINO's CPU plugin runs with reference kernels (half the time of
    a tile when they were there) are not in what it compiles from the graph form."""
    import openvino as ov

    # Channels-last weights, as the descriptor keeps them for torch.
    net = seeded_network(LITE).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 64, 64)
    e = torch.nn.functional.normalize(torch.randn(1, LITE.textdim), dim=1)

    def runtime_layers(module, example) -> set[str]:
        with torch.no_grad():
            model = ov.convert_model(
                module.eval(), example_input=(example, e), input=[example.shape, e.shape]
            )
        compiled = ov.Core().compile_model(model, "CPU")
        ops = compiled.get_runtime_model().get_ordered_ops()
        return {op.get_rt_info()["layerType"].astype(str) for op in ops}

    for openvino in (False, True):
        form = runtime_layers(PaddedNet(graph_form(net, openvino=openvino)), x)
        assert "Convolution" in form
        assert not form & {"Transpose", "Split"}, form
    # What the network as written, traced channels-last, gives OpenVINO.
    plain = runtime_layers(PaddedNet(net), x.contiguous(memory_format=torch.channels_last))
    assert {"Transpose", "Split"} <= plain


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
@pytest.mark.parametrize("precision", ["f32", "bf16"])
def test_openvino_form_makes_fewer_full_resolution_passes(precision):
    """What OpenVINO compiles from the openvino form: no norm writes ``x - mu`` out beside
    its square (a fused node with two outputs), and no norm at the full resolution (few
    channels) takes its statistics with a reduction, while the torch form does both."""
    import openvino as ov

    if precision == "bf16" and not backends.openvino_runs("bf16"):
        pytest.skip("OpenVINO does not run bf16 on this CPU")
    net = seeded_network(LITE)
    x = torch.rand(1, 3, 64, 64)
    e = torch.nn.functional.normalize(torch.randn(1, LITE.textdim), dim=1)

    def full_resolution_norm_ops(openvino: bool) -> tuple[int, int]:
        with torch.no_grad():
            model = ov.convert_model(
                PaddedNet(graph_form(net, openvino=openvino)).eval(),
                example_input=(x, e),
                input=[x.shape, e.shape],
            )
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
        two_outputs = reductions = 0
        for op in compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            names = info["originalLayersNames"].astype(str)
            shape = op.get_output_partial_shape(0) if op.get_output_size() else None
            if shape is None or len(shape) != 4 or shape[2].get_length() != 64:
                continue
            kind = info["layerType"].astype(str)
            if kind == "Subgraph" and op.get_output_size() == 2 and "Subtract" in names:
                two_outputs += 1
            if kind == "Reduce" and shape[1].get_length() == 1:
                reductions += 1
        return two_outputs, reductions

    assert full_resolution_norm_ops(openvino=True) == (0, 0)
    two_outputs, reductions = full_resolution_norm_ops(openvino=False)
    assert two_outputs > 0 and reductions > 0


def test_the_depthwise_apart_form_marks_the_wide_blocks_only():
    form = graph_form(seeded_network(LITE), openvino=True, depthwise_apart=True)
    blocks = [m for m in form.modules() if isinstance(m, SplitGateBlock)]
    assert {b.apart for b in blocks} == {True, False}  # lite: 8 to 64 channels per half
    assert all(b.apart == (b.half >= APART_CHANNELS) for b in blocks)
    plain = graph_form(seeded_network(LITE), openvino=True)
    assert not any(b.apart for b in plain.modules() if isinstance(b, SplitGateBlock))


def test_the_form_version_names_the_variant_this_cpu_compiles(monkeypatch):
    for capability, version in (("AVX2", GRAPH_VERSION + "-dw"), ("AVX512", GRAPH_VERSION)):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert openvino_fuses_depthwise() == (capability == "AVX2")
        assert openvino_form_version() == version


@pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")
def test_depthwise_convolutions_stay_apart_in_what_openvino_compiles():
    """The form for CPUs where OpenVINO fuses a depthwise convolution into the 1x1 before it
    (its older fused kernel, plus two layout changes per block) compiles with none fused; on
    such a CPU (AVX2 without AVX-512: this project's CI machine) the plain form has them fused,
    at a feature map larger than half the L3 cache (32 channels x 1024² here: 128 MB)."""
    import openvino as ov

    config = OFFICIAL_7D.__class__(width=32, enc_blks=(1,), middle_blk_num=1, dec_blks=(1,))
    net = seeded_network(config)
    x = torch.rand(1, 3, 1024, 1024)
    e = torch.nn.functional.normalize(torch.randn(1, config.textdim), dim=1)

    def kernels(apart: bool) -> list[str]:
        form = PaddedNet(graph_form(net, openvino=True, depthwise_apart=apart)).eval()
        with torch.no_grad():
            model = ov.convert_model(form, example_input=(x[..., :64, :64], e))
        model.reshape({0: list(x.shape), 1: list(e.shape)})
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        ops = compiled.get_runtime_model().get_ordered_ops()
        return [op.get_rt_info()["primitiveType"].astype(str) for op in ops]

    apart = kernels(apart=True)
    assert not [k for k in apart if "dw_1x1" in k]
    if openvino_fuses_depthwise():
        assert sum("_dw_" in k for k in apart) >= 2  # the depthwise convolutions, on their own
        assert [k for k in kernels(apart=False) if "dw_1x1" in k]
