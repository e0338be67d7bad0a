"""The network's graph form (what OpenVINO compiles) computes what the network computes."""

from __future__ import annotations

import pytest
import torch
from conftest import seeded_network

from instructir_desktop.core import backends
from instructir_desktop.core.descriptor import PaddedNet
from instructir_desktop.core.network import LITE, OFFICIAL_7D, NAFBlock
from instructir_desktop.core.network_graph import SplitGateBlock, graph_form


@pytest.mark.parametrize("config", [LITE, OFFICIAL_7D], ids=["lite", "official-7d"])
def test_graph_form_is_the_same_network(config):
    net = seeded_network(config)
    form = graph_form(net)
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

    form = runtime_layers(PaddedNet(graph_form(net)), x)
    assert "Convolution" in form
    assert not form & {"Transpose", "Split"}, form
    # What the network as written, traced channels-last, gives OpenVINO.
    plain = runtime_layers(PaddedNet(net), x.contiguous(memory_format=torch.channels_last))
    assert {"Transpose", "Split"} <= plain
