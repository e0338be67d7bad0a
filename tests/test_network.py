"""The image network and text head: official layout, strict loading, known answers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import seeded_network

from instructir_desktop.core.descriptor import ModelDescriptor, PaddedNet
from instructir_desktop.core.network import (
    OFFICIAL_7D,
    NetworkConfig,
    TextHead,
    build_network,
    count_parameters,
    network_from_config,
)


@pytest.fixture(scope="module")
def official():
    return build_network()


def test_official_config_matches_the_public_release(official):
    n = count_parameters(official)
    assert 15.7e6 < n < 15.9e6
    shapes = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    expected = {
        "intro.weight": (32, 3, 3, 3),
        "ending.weight": (3, 32, 3, 3),
        "encoders.0.0.conv1.weight": (64, 32, 1, 1),
        "encoders.0.0.conv2.weight": (64, 1, 3, 3),
        "encoders.0.0.sca.1.weight": (32, 32, 1, 1),
        "encoders.0.0.norm1.weight": (32,),
        "encoders.0.0.beta": (1, 32, 1, 1),
        "encoders.3.7.conv5.weight": (256, 256, 1, 1),
        "enc_cond.0.fc.weight": (32, 256),
        "enc_cond.0.gamma": (1, 32, 1, 1),
        "enc_cond.3.block.conv4.weight": (512, 256, 1, 1),
        "downs.3.weight": (512, 256, 2, 2),
        "middle_blks.3.gamma": (1, 512, 1, 1),
        "ups.0.0.weight": (1024, 512, 1, 1),
        "decoders.3.1.norm2.bias": (32,),
        "dec_cond.3.fc.bias": (32,),
    }
    for key, shape in expected.items():
        assert shapes[key] == shape, key
    assert "ups.0.0.bias" not in shapes
    assert len(official.encoders) == 4 and [len(e) for e in official.encoders] == [2, 2, 4, 8]
    assert len(official.middle_blks) == 4
    assert [len(d) for d in official.decoders] == [2, 2, 2, 2]


def test_state_dict_round_trips_with_strict_loading(official, tmp_path):
    torch.manual_seed(1)
    state = {k: torch.randn_like(v) for k, v in official.state_dict().items()}
    torch.save(state, tmp_path / "im.pt")
    net = build_network(32, [2, 2, 4, 8], 4, [2, 2, 2, 2], 256)
    loaded = torch.load(tmp_path / "im.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(loaded, strict=True)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])
    with pytest.raises(RuntimeError):
        build_network(16).load_state_dict(loaded, strict=True)


def test_text_head_loads_release_layout(tmp_path):
    head = TextHead()
    keys = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert keys == {
        "fc1.weight": (256, 384),
        "fc1.bias": (256,),
        "fc2.weight": (7, 256),
        "fc2.bias": (7,),
    }
    torch.save(head.state_dict(), tmp_path / "lm.pt")
    other = TextHead(in_dim=384, embed_dim=256, n_classes=7)
    other.load_state_dict(torch.load(tmp_path / "lm.pt", weights_only=True), strict=True)
    e, logits = other(torch.randn(5, 384))
    assert e.shape == (5, 256) and logits.shape == (5, 7)
    assert torch.allclose(e.norm(dim=1), torch.ones(5), atol=1e-5)


def _known_answer_net() -> torch.nn.Module:
    """All weights zero except: intro copies RGB into channels 0..2, ICB gates are 0.5 (so each
    ICB scales by 1.5), and the ending reads the right-hand neighbour of channels 0..2."""
    cfg = NetworkConfig(
        width=4, enc_blks=(1, 1, 1, 1), middle_blk_num=1, dec_blks=(1, 1, 1, 1), textdim=8
    )
    net = network_from_config(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.zero_()
            if name.endswith("norm1.weight") or name.endswith("norm2.weight"):
                p.fill_(1.0)
            if (
                (name.startswith("enc_cond") or name.startswith("dec_cond"))
                and name.endswith("gamma")
                and ".block." not in name
            ):
                p.fill_(1.0)
        for c in range(3):
            net.intro.weight[c, c, 1, 1] = 1.0
            net.ending.weight[c, c, 1, 2] = 1.0
        net.ending.bias.fill_(0.1)
    return net


def test_known_answer_padding_residual_crop_clamp():
    net = _known_answer_net()
    h, w = 21, 37  # neither a multiple of 16: the network must pad with zeros
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, h, w)).astype(np.float32) * 0.6
    e = torch.zeros(1, 8)
    raw = net(torch.from_numpy(x), e).detach().numpy()
    right = np.zeros_like(x)
    right[..., :-1] = x[..., 1:]  # the last column's neighbour is zero padding
    expected = x + 2.25 * right + 0.1  # residual + (1.5 * 1.5) * neighbour + bias
    assert raw.shape == (1, 3, h, w)
    np.testing.assert_allclose(raw, expected, atol=1e-5)
    assert raw.max() > 1.0  # the raw network does not clamp, like the release
    d = ModelDescriptor.wrap(net, "cpu")
    clamped = d(torch.from_numpy(x), e).numpy()
    np.testing.assert_allclose(clamped, np.clip(expected, 0, 1), atol=1e-5)


def _busy_net():
    """A small network whose blocks all change their input (the release initialises the block
    scales beta and gamma to zero, which makes every block an identity)."""
    return seeded_network(NetworkConfig(8, (1, 1), 1, (1, 1), 16))


def test_channels_last_layernorm_matches_plain_formulation():
    net = _busy_net()
    x = torch.rand(1, 3, 40, 56)
    e = torch.nn.functional.normalize(torch.randn(1, 16), dim=1)
    with torch.inference_mode():
        a = net(x, e)
        b = net.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last), e
        )
    assert torch.allclose(a, b, atol=1e-5)


def test_official_default_is_seven_d():
    assert OFFICIAL_7D.width == 32 and OFFICIAL_7D.size_multiple == 16


def test_frozen_graph_matches_the_eager_network_on_any_shape():
    """On the CPU in fp32 the descriptor runs a TorchScript graph traced on the first input."""
    net = _busy_net()
    frozen = ModelDescriptor.wrap(copy.deepcopy(net), "cpu")
    eager = ModelDescriptor.wrap(net, "cpu", frozen=False)
    assert frozen.frozen and not eager.frozen
    e = torch.nn.functional.normalize(torch.randn(1, 16), dim=1)
    for h, w in [(40, 56), (64, 64), (33, 100), (128, 96)]:
        x = torch.rand(1, 3, h, w)
        a, b = frozen(x, e), eager(x, e)
        assert a.shape == (1, 3, h, w)
        assert (a - b).abs().max().item() < 1e-5, (h, w)
        assert (a - x).abs().mean().item() > 1e-3  # the blocks really do something
    graph = frozen._graph
    assert isinstance(graph, torch.jit.ScriptModule)
    # Traced from the graph form: each block's gates come from two convolutions, not one.
    plain = torch.jit.freeze(torch.jit.trace(PaddedNet(net).eval(), (x, e), check_trace=False))
    convs = [str(g.graph).count("aten::_convolution(") for g in (graph, plain)]
    assert convs[0] > convs[1] > 0, convs
    frozen(torch.rand(1, 3, 20, 20), e)
    assert frozen._graph is graph  # traced once, reused for every size
    # bf16 runs the eager network under autocast, not the fp32 graph.
    out = frozen(torch.rand(1, 3, 32, 32), e, dtype=torch.bfloat16)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 32, 32)


def test_frozen_graph_falls_back_to_the_eager_network_if_tracing_fails(monkeypatch, caplog):
    torch.manual_seed(0)
    net = network_from_config(NetworkConfig(8, (1, 1), 1, (1, 1), 16)).eval()
    eager = ModelDescriptor.wrap(copy.deepcopy(net), "cpu", frozen=False)
    d = ModelDescriptor.wrap(net, "cpu")

    def broken(*args, **kwargs):
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "trace", broken)
    x, e = torch.rand(1, 3, 40, 56), torch.nn.functional.normalize(torch.randn(1, 16), dim=1)
    out = d(x, e)
    assert not d.frozen and d._graph is None
    assert torch.equal(out, eager(x, e))
    assert "TorchScript tracing failed" in caplog.text
