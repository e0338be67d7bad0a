"""The image network in the form graph compilers (OpenVINO) run fastest: the same function.

Two things in the network as written cost a CPU graph compiler much more than their
arithmetic, measured on OpenVINO's CPU plugin (official 7D network, one 512² tile, bf16):

- the channels-last LayerNorm (a permute to NHWC, ``F.layer_norm``, a permute back) becomes
  two Transposes per norm that OpenVINO runs with its reference kernel: 37 % of the time. The
  graph is therefore traced in NCHW, where the norm is a mean and a variance over channels.
- SimpleGate's ``chunk`` becomes a VariadicSplit that OpenVINO also runs with a reference
  kernel (14 %). Here each gate's two halves come from two convolutions (the halves of the
  1x1 weights, and of the depthwise 3x3 weights before the first gate), so nothing is split.

Both together take a 512² tile from 1.05 s to 0.50 s. For OpenVINO (``openvino=True``) the
full-resolution passes over memory are fewer still, 8 % of a 1 MP tile (see ``OpenVINONorm``
and ``SplitGateBlock``). On CPUs where OpenVINO fuses each depthwise convolution into the 1x1
convolution before it (``openvino_fuses_depthwise``), the form for them keeps the two apart
(``depthwise_apart``): 10 % of a tile of the official network. The result is the same
network: the weights are sliced or rearranged, not changed, and fp32 outputs match to
rounding (tested).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .network import InstructIRNet, NAFBlock

__all__ = [
    "GRAPH_VERSION",
    "OpenVINONorm",
    "SplitGateBlock",
    "graph_form",
    "openvino_form_version",
    "openvino_fuses_depthwise",
]

# Part of the names of converted models cached on disk: a new form is converted again.
GRAPH_VERSION = "g3"

# Blocks with at least this many channels per gate half keep their depthwise convolutions
# apart where OpenVINO would fuse them (see ``openvino_fuses_depthwise``).
APART_CHANNELS = 32


def openvino_fuses_depthwise() -> bool:
    """Whether OpenVINO's CPU plugin fuses each depthwise 3x3 convolution into the 1x1
    convolution that feeds it: its graph optimizer does on x86 CPUs with AVX2 and without
    AVX-512 (for feature maps larger than half the L3 cache, which a photo's are). The fused
    kernel is an older one that wants a blocked layout, so each block also gets two layout
    changes; on an AVX2-only CPU (2-core AMD EPYC, official network, OpenVINO fp32, same-process
    A/B) the two apart run a 1 MP tile 10 % faster and four 1280² tiles, two in flight, 11 %
    faster; the bundled lite network (8 channels per half at the full resolution) runs
    faster fused in tiles in flight. torch's CPU capability follows the same instruction set
    (and the same caps in benchmarks: ``ATEN_CPU_CAPABILITY`` beside ``ONEDNN_MAX_CPU_ISA``)."""
    return torch.backends.cpu.get_cpu_capability() == "AVX2"


def openvino_form_version() -> str:
    """GRAPH_VERSION and the variant of the form for OpenVINO this CPU compiles."""
    return GRAPH_VERSION + ("-dw" if openvino_fuses_depthwise() else "")


def _zero_reading(t: torch.Tensor) -> torch.Tensor:
    """0 times one element of ``t``: a second reader of a 1x1 convolution's output, so that
    OpenVINO does not fuse the depthwise convolution after it (it fuses only a convolution
    with one reader). Added to the channel attention's weights: exact."""
    return t[:, :1, :1, :1] * 0.0


def _halves(t: torch.Tensor) -> tuple[nn.Parameter, nn.Parameter]:
    half = t.shape[0] // 2
    return (
        nn.Parameter(t[:half].detach().clone(), requires_grad=False),
        nn.Parameter(t[half:].detach().clone(), requires_grad=False),
    )


# Up to this many channels OpenVINONorm takes its mean and variance with 1x1 convolutions.
CONV_STATS_CHANNELS = 32


class OpenVINONorm(nn.Module):
    """LayerNorm2d (NCHW, over channels) written for OpenVINO's CPU plugin, where every step
    of a norm is a pass over memory and the full-resolution ones dominate a block's time:

    - the variance is taken of ``(mu - x)²``, a different node than the ``x - mu`` that is
      normalised: with one shared node, the plugin writes ``x - mu`` out as well, for the
      divide to read back (an extra write and read of the whole tensor per norm);
    - over few channels (the full-resolution level), the mean and the variance are 1x1
      convolutions with one output channel (eps is the second one's bias): the plugin's
      reductions over channels run there at about half the speed of memory.
    """

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        c = norm.weight.shape[0]
        self.conv_stats = c <= CONV_STATS_CHANNELS
        self.register_buffer("mean_weight", torch.full((1, c, 1, 1), 1.0 / c))
        self.register_buffer("eps", torch.tensor([float(norm.eps)]))
        self.weight = nn.Parameter(norm.weight.detach().clone().view(1, -1, 1, 1))
        self.bias = nn.Parameter(norm.bias.detach().clone().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_stats:
            mu = F.conv2d(x, self.mean_weight)
            var = F.conv2d((mu - x) * (mu - x), self.mean_weight, self.eps)
        else:
            mu = x.mean(1, keepdim=True)
            var = ((mu - x) * (mu - x)).mean(1, keepdim=True) + self.eps
        return (x - mu) * var.rsqrt() * self.weight + self.bias


class SplitGateBlock(nn.Module):
    """A NAFBlock whose gates multiply the outputs of two convolutions instead of two halves
    of one: conv1 and conv2 (before the first gate) and conv4 (before the second) are split
    in two by output channel. conv2 is depthwise, so its halves see only their own halves.

    With ``openvino``, the norms are OpenVINONorms and the channel attention scales conv3's
    weights (input channel by input channel) instead of the whole gated tensor before it: one
    pass over the tensor fewer. That needs a batch of one, which is what OpenVINO runs. With
    ``depthwise_apart`` too, a block of APART_CHANNELS or more per half keeps each depthwise
    convolution apart from the 1x1 convolution before it (see ``openvino_fuses_depthwise``).
    """

    def __init__(
        self, block: NAFBlock, openvino: bool = False, depthwise_apart: bool = False
    ) -> None:
        super().__init__()
        # NCHW input: LayerNorm2d takes its mean-and-variance form.
        norm = OpenVINONorm if openvino else copy.deepcopy
        self.norm1 = norm(block.norm1)
        self.norm2 = norm(block.norm2)
        self.scale_weights = openvino
        self.w1a, self.w1b = _halves(block.conv1.weight)
        self.b1a, self.b1b = _halves(block.conv1.bias)
        self.w2a, self.w2b = _halves(block.conv2.weight)
        self.b2a, self.b2b = _halves(block.conv2.bias)
        self.w4a, self.w4b = _halves(block.conv4.weight)
        self.b4a, self.b4b = _halves(block.conv4.bias)
        self.half = block.conv2.out_channels // 2
        self.apart = openvino and depthwise_apart and self.half >= APART_CHANNELS
        self.sca = copy.deepcopy(block.sca)
        self.conv3 = copy.deepcopy(block.conv3)
        self.conv5 = copy.deepcopy(block.conv5)
        self.beta = nn.Parameter(block.beta.detach().clone())
        self.gamma = nn.Parameter(block.gamma.detach().clone())

    def _half(self, x: torch.Tensor, w1, b1, w2, b2, zeros: list) -> torch.Tensor:
        """One gate half: conv1's half, then conv2's (depthwise 3x3)."""
        y = F.conv2d(x, w1, b1)
        if self.apart:
            zeros.append(_zero_reading(y))
        return F.conv2d(y, w2, b2, padding=1, groups=self.half)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.norm1(inp)
        zeros: list[torch.Tensor] = []
        a = self._half(x, self.w1a, self.b1a, self.w2a, self.b2a, zeros)
        x = a * self._half(x, self.w1b, self.b1b, self.w2b, self.b2b, zeros)
        if self.scale_weights:
            attention = self.sca(x)
            for zero in zeros:
                attention = attention + zero
            w = self.conv3.weight * attention.view(1, -1, 1, 1)
            y = inp + F.conv2d(x, w, self.conv3.bias) * self.beta
        else:
            x = x * self.sca(x)
            y = inp + self.conv3(x) * self.beta
        z = self.norm2(y)
        x = F.conv2d(z, self.w4a, self.b4a) * F.conv2d(z, self.w4b, self.b4b)
        return y + self.conv5(x) * self.gamma


def _swap_blocks(module: nn.Module, openvino: bool, apart: bool) -> None:
    for name, child in module.named_children():
        if isinstance(child, NAFBlock):
            setattr(module, name, SplitGateBlock(child, openvino, apart))
        else:
            _swap_blocks(child, openvino, apart)


def graph_form(
    net: InstructIRNet, *, openvino: bool = False, depthwise_apart: bool = False
) -> InstructIRNet:
    """A copy of ``net`` with every NAFBlock as a SplitGateBlock, for tracing in NCHW;
    ``openvino``: the form for OpenVINO (batch of one), see SplitGateBlock;
    ``depthwise_apart`` (with ``openvino``): for a CPU where ``openvino_fuses_depthwise``."""
    # NCHW weights too: a channels-last weight (the descriptor's layout for torch) makes its
    # convolution's output channels-last, and the norms after it take their NHWC form.
    form = copy.deepcopy(net).float().eval().to(memory_format=torch.contiguous_format)
    _swap_blocks(form, openvino, depthwise_apart)
    for p in form.parameters():
        p.requires_grad_(False)
    return form
