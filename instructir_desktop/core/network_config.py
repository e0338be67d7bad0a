"""The shape of an InstructIR network (``NetworkConfig``) and the two shapes the packs use.

Importable without torch: the UI reads pack manifests before torch loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["NetworkConfig", "OFFICIAL_7D", "LITE"]


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
        return cls(
            width=int(d["width"]),
            enc_blks=tuple(int(v) for v in d["enc_blks"]),
            middle_blk_num=int(d["middle_blk_num"]),
            dec_blks=tuple(int(v) for v in d["dec_blks"]),
            textdim=int(d.get("textdim", 256)),
        )


# The official 7-task release, and the lite pack bundled with the app.
OFFICIAL_7D = NetworkConfig()
LITE = NetworkConfig(width=8, enc_blks=(1, 1, 1, 2), middle_blk_num=2, dec_blks=(1, 1, 1, 1))
