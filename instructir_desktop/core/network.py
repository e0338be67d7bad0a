"""InstructIR image network (NAFNet U-Net + instruction condition blocks) and text head.

Parameter names and shapes follow the public release (marcosv/InstructIR) so that
`im_instructir-7d.pt` and `lm_instructir-7d.pt` load with strict=True.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .network_config import LITE, OFFICIAL_7D, NetworkConfig

__all__ = [
    "NetworkConfig",
    "OFFICIAL_7D",
    "LITE",
    "LayerNorm2d",
    "NAFBlock",
    "ICB",
    "InstructIRNet",
    "TextHead",
    "build_network",
    "network_from_config",
    "count_parameters",
]


class LayerNorm2d(nn.Module):
    """Layer norm over channels of an NCHW tensor (eps 1e-6), written as plain ops.

    The public release uses a custom autograd function; plain ops give the same values and
    can be exported to ONNX. For channels-last tensors the fused ``F.layer_norm`` is used on a
    free NHWC view, which is much faster on CPUs.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
            return y.permute(0, 3, 1, 2)
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class NAFBlock(nn.Module):
    """NAFNet block: LayerNorm → 1x1 → 3x3 depthwise → SimpleGate → SCA → 1x1, then an FFN."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        dw = c * dw_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        ffn = c * ffn_expand
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.norm1(inp))
        x = self.sg(self.conv2(x))
        x = x * self.sca(x)
        x = self.conv3(x)
        y = inp + x * self.beta
        x = self.sg(self.conv4(self.norm2(y)))
        x = self.conv5(x)
        return y + x * self.gamma


class ICB(nn.Module):
    """Instruction condition block: text-gated affine modulation followed by a NAFBlock."""

    def __init__(self, feature_dim: int, text_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, feature_dim)
        self.block = NAFBlock(feature_dim)
        self.beta = nn.Parameter(torch.zeros((1, feature_dim, 1, 1)))
        self.gamma = nn.Parameter(torch.ones((1, feature_dim, 1, 1)))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc(e))[:, :, None, None]
        f = (x * self.gamma + self.beta) * gate
        return self.block(f) + x


class InstructIRNet(nn.Module):
    """The InstructIR U-Net. ``forward(image[N,3,H,W] in [0,1], e[N,textdim])`` → image.

    Pads right/bottom with zeros to a multiple of 2**levels, adds the input back (global
    residual) and crops; like the public release it does not clamp (the descriptor does).
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        if len(config.enc_blks) != len(config.dec_blks):
            raise ValueError("encoder and decoder need the same number of levels")
        self.config = config
        width, textdim = config.width, config.textdim
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.ending = nn.Conv2d(width, 3, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.enc_cond = nn.ModuleList()
        self.dec_cond = nn.ModuleList()
        chan = width
        for num in config.enc_blks:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.enc_cond.append(ICB(chan, textdim))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(config.middle_blk_num)])
        for num in config.dec_blks:
            self.ups.append(
                nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2))
            )
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.dec_cond.append(ICB(chan, textdim))
        self.size_multiple = config.size_multiple

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.size_multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        return x

    def forward(self, inp: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h, w = inp.shape[-2:]
        return self.forward_padded(self.pad(inp), e)[:, :, :h, :w]

    def forward_padded(self, inp: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Forward for inputs already padded to the size multiple (shape-agnostic, exportable)."""
        x = self.intro(inp)
        skips = []
        for encoder, cond, down in zip(self.encoders, self.enc_cond, self.downs):
            x = cond(encoder(x), e)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip, cond in zip(self.decoders, self.ups, reversed(skips), self.dec_cond):
            x = up(x) + skip
            x = cond(decoder(x), e)
        return self.ending(x) + inp


class TextHead(nn.Module):
    """Projection + intent classifier on top of a frozen sentence encoder.

    ``forward(raw[N,in_dim])`` → ``(e[N,embed_dim] L2-normalised, logits[N,n_classes])``.
    """

    def __init__(self, in_dim: int = 384, embed_dim: int = 256, n_classes: int = 7) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, embed_dim)
        self.fc2 = nn.Linear(embed_dim, n_classes)

    def forward(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = F.normalize(self.fc1(raw), dim=1)
        return e, self.fc2(e)


def build_network(
    width: int = 32,
    enc_blks: list[int] | tuple[int, ...] = (2, 2, 4, 8),
    middle_blk_num: int = 4,
    dec_blks: list[int] | tuple[int, ...] = (2, 2, 2, 2),
    textdim: int = 256,
) -> InstructIRNet:
    """Build the image network; defaults are the official 7D configuration."""
    return network_from_config(
        NetworkConfig(width, tuple(enc_blks), middle_blk_num, tuple(dec_blks), textdim)
    )


def network_from_config(config: NetworkConfig) -> InstructIRNet:
    return InstructIRNet(config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
