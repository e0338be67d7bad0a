"""The instruction corpus (resources/prompts) and its fixed train / held-out split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..core.packs import TASKS
from ..core.resources import resource_path

__all__ = ["Prompt", "load_corpus", "split", "UNRELATED"]

UNRELATED = "unrelated"
HELD_OUT_PERCENT = 20


@dataclass(frozen=True)
class Prompt:
    text: str
    task: str  # one of TASKS, or UNRELATED

    @property
    def held_out(self) -> bool:
        # A hash of the text, not a random draw: the split never changes between runs.
        digest = hashlib.sha256(self.text.lower().encode("utf-8")).digest()
        return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def load_corpus() -> list[Prompt]:
    prompts: list[Prompt] = []
    for task in (*TASKS, UNRELATED):
        path = resource_path("prompts", f"{task}.txt")
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                prompts.append(Prompt(line, task))
    return prompts


def split(prompts: list[Prompt]) -> tuple[list[Prompt], list[Prompt]]:
    train = [p for p in prompts if not p.held_out]
    held = [p for p in prompts if p.held_out]
    return train, held
