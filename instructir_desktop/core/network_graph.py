"""The image network in the form graph compilers (OpenVINO) run fastest: the same function.

Two things in the network as written cost a CPU graph compiler much more than their
arithmetic, measured on OpenVINO's CPU plugin (official 7D network, one 512² tile, bf16):

- the channels-last LayerNorm (a permute to NHWC, ``F.layer_norm``, a permute back) becomes
  two Transposes per norm that OpenVINO runs with its reference kernel: 37 % of the time. The
  graph is therefore traced in NCHW, where the norm is a mean and a variance over channels.
- SimpleGate's ``chunk`` becomes a VariadicSplit that OpenVINO also runs with a reference
  kernel (14 %). Here each gate's two halves come from two convolutions (the halves of the
  1x1 weights, and of the depthwise 3x3 weights before the first gate), so nothing is split.

Both together take a 512² tile from 1.05 s to 0.50 s. The result is the same network: the
weights are sliced, not changed, and fp32 outputs match to rounding (tested).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .network import InstructIRNet, NAFBlock

__all__ = ["GRAPH_VERSION", "SplitGateBlock", "graph_form"]

# Part of the names of converted models cached on disk: a new form is converted again.
GRAPH_VERSION = "g2"


def _halves(t: torch.Tensor) -> tuple[nn.Parameter, nn.Parameter]:
    half = t.shape[0] // 2
    return (
        nn.Parameter(t[:half].detach().clone(), requires_grad=False),
        nn.Parameter(t[half:].detach().clone(), requires_grad=False),
    )


class SplitGateBlock(nn.Module):
    """A NAFBlock whose gates multiply the outputs of two convolutions instead of two halves
    of one: conv1 and conv2 (before the first gate) and conv4 (before the second) are split
    in two by output channel. conv2 is depthwise, so its halves see only their own halves."""

    def __init__(self, block: NAFBlock) -> None:
        super().__init__()
        self.norm1 = copy.deepcopy(block.norm1)  # NCHW input: its mean-and-variance form
        self.norm2 = copy.deepcopy(block.norm2)
        self.w1a, self.w1b = _halves(block.conv1.weight)
        self.b1a, self.b1b = _halves(block.conv1.bias)
        self.w2a, self.w2b = _halves(block.conv2.weight)
        self.b2a, self.b2b = _halves(block.conv2.bias)
        self.w4a, self.w4b = _halves(block.conv4.weight)
        self.b4a, self.b4b = _halves(block.conv4.bias)
        self.half = block.conv2.out_channels // 2
        self.sca = copy.deepcopy(block.sca)
        self.conv3 = copy.deepcopy(block.conv3)
        self.conv5 = copy.deepcopy(block.conv5)
        self.beta = nn.Parameter(block.beta.detach().clone())
        self.gamma = nn.Parameter(block.gamma.detach().clone())

    def _dw(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, b, padding=1, groups=self.half)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.norm1(inp)
        a = self._dw(F.conv2d(x, self.w1a, self.b1a), self.w2a, self.b2a)
        b = self._dw(F.conv2d(x, self.w1b, self.b1b), self.w2b, self.b2b)
        x = a * b
        x = x * self.sca(x)
        y = inp + self.conv3(x) * self.beta
        z = self.norm2(y)
        x = F.conv2d(z, self.w4a, self.b4a) * F.conv2d(z, self.w4b, self.b4b)
        return y + self.conv5(x) * self.gamma


def _swap_blocks(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, NAFBlock):
            setattr(module, name, SplitGateBlock(child))
        else:
            _swap_blocks(child)


def graph_form(net: InstructIRNet) -> InstructIRNet:
    """A copy of ``net`` with every NAFBlock as a SplitGateBlock, for tracing in NCHW."""
    # NCHW weights too: a channels-last weight (the descriptor's layout for torch) makes its
    # convolution's output channels-last, and the norms after it take their NHWC form.
    form = copy.deepcopy(net).float().eval().to(memory_format=torch.contiguous_format)
    _swap_blocks(form)
    for p in form.parameters():
        p.requires_grad_(False)
    return form
