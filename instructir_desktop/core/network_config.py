"""The shape of an InstructIR network (``NetworkConfig``) and the two shapes the packs use.

Importable without torch: the UI reads pack manifests before torch loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["NetworkConfig", "OFFICIAL_7D", "LITE"]

# Bounds far above any released network (the official 7D: width 32, 4 levels, 8 blocks).
MAX_WIDTH = 256
MAX_LEVELS = 6
MAX_BLOCKS = 64
MAX_TEXTDIM = 4096


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of an image network; stored in every model pack manifest."""

    width: int = 32
    enc_blks: tuple[int, ...] = (2, 2, 4, 8)
    middle_blk_num: int = 4
    dec_blks: tuple[int, ...] = (2, 2, 2, 2)
    textdim: int = 256

    @property
    def size_multiple(self) -> int:
        return 2 ** len(self.enc_blks)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["enc_blks"] = list(self.enc_blks)
        d["dec_blks"] = list(self.dec_blks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NetworkConfig:
        """Read a manifest's network; a shape no real pack has (which could ask for
        hundreds of GB) is a ValueError."""
        config = cls(
            width=int(d["width"]),
            enc_blks=tuple(int(v) for v in d["enc_blks"]),
            middle_blk_num=int(d["middle_blk_num"]),
            dec_blks=tuple(int(v) for v in d["dec_blks"]),
            textdim=int(d.get("textdim", 256)),
        )
        config.check()
        return config

    def check(self) -> None:
        """Refuse shapes outside what InstructIR-style networks use."""
        problems = []
        if not 1 <= self.width <= MAX_WIDTH:
            problems.append(f"width {self.width} (1..{MAX_WIDTH})")
        if not 1 <= len(self.enc_blks) <= MAX_LEVELS or len(self.dec_blks) != len(self.enc_blks):
            problems.append(f"{len(self.enc_blks)}/{len(self.dec_blks)} encoder/decoder levels")
        blocks = (*self.enc_blks, *self.dec_blks, self.middle_blk_num)
        if any(not 0 <= b <= MAX_BLOCKS for b in blocks):
            problems.append(f"blocks per level outside 0..{MAX_BLOCKS}")
        if not 1 <= self.textdim <= MAX_TEXTDIM:
            problems.append(f"text embedding size {self.textdim} (1..{MAX_TEXTDIM})")
        if problems:
            raise ValueError("impossible network shape: " + ", ".join(problems))


# The official 7-task release, and the lite pack bundled with the app.
OFFICIAL_7D = NetworkConfig()
LITE = NetworkConfig(width=8, enc_blks=(1, 1, 1, 2), middle_blk_num=2, dec_blks=(1, 1, 1, 1))
