"""``instructir assess`` and ``instructir restore -i auto``: what the photo itself says to fix.

Exit codes as ``restore``: 0 success, 2 bad usage or a photo that cannot be read (missing,
corrupt), 1 anything else that failed. ``-i auto`` applies the suggested fixes in order with
each task's standard instruction; a photo with nothing to fix is reported and no file is
written for it (exit 0).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from .core.errors import InstructIRError, UnclearInstructionError, UnsupportedImageError

__all__ = ["AUTO", "cmd_assess", "is_auto", "auto_steps"]

AUTO = "auto"


def is_auto(instructions: list[str]) -> bool:
    """Whether ``-i auto`` was given; it cannot be mixed with other instructions."""
    if AUTO not in (i.strip().lower() for i in instructions):
        return False
    if len(instructions) > 1:
        raise UnclearInstructionError(
            "-i auto applies what the photo suggests; give it alone, without other -i"
        )
    return True


def auto_steps(photo, strength: float, src: Path, event: Callable[..., None], info) -> list:
    """The restore steps the photo suggests (empty: nothing to fix), announced like a split."""
    from .core.assess import default_assessor
    from .core.jobs import Step
    from .core.packs import TASK_PROMPTS

    result = default_assessor().assess(photo.pixels)
    plan = [
        {"task": t, "text": TASK_PROMPTS[t], **result.finding(t).to_dict()}
        for t in result.suggested
    ]
    event(event="plan", input=str(src), instruction=AUTO, steps=plan)
    if not plan:
        info(f"{src}: nothing obvious to fix; no file written")
        return []
    listed = ", then ".join(f"{p['task']} ({p['evidence']})" for p in plan)
    fixes = f"{len(plan)} fixes, applied in this order" if len(plan) > 1 else "1 fix"
    info(f"{src}: the photo suggests {fixes}: {listed}")
    return [Step(TASK_PROMPTS[t], strength) for t in result.suggested]


def _line(path: Path, result) -> str:
    if not result.suggested:
        return f"{path}: {result.summary()}"
    return f"{path}: {result.summary()} Fix: {', then '.join(result.suggested)}."


_NO_MEMORY = "not enough memory to open this photo; close other programs and try again"


def cmd_assess(args) -> int:
    """Assess each photo; one JSON object or one readable line per photo on stdout."""
    from .core.assess import default_assessor
    from .core.images import check_fits, load_image
    from .core.outputs import collect_inputs

    inputs = collect_inputs(args.inputs)
    assessor = default_assessor()
    status = assessed = 0
    for src in inputs:
        try:
            check_fits(src)  # the memory budget, from the header, before decoding
            result = assessor.assess(load_image(src).pixels)
        except (InstructIRError, MemoryError) as exc:
            # A file we cannot read is bad input (2), as for restore; anything else failed (1).
            status = max(status, 2 if isinstance(exc, UnsupportedImageError) else 1)
            error = str(exc) if isinstance(exc, InstructIRError) else _NO_MEMORY
            if args.json:
                print(json.dumps({"path": str(src), "error": error}), flush=True)
            print(f"instructir: error: {src}: {error}", file=sys.stderr)
            continue
        assessed += 1
        if args.json:
            print(json.dumps(result.to_dict(str(src)), ensure_ascii=False), flush=True)
        else:
            print(_line(src, result), flush=True)
    return 1 if status == 2 and assessed else status  # some were assessed: a partial failure


def add_parser(sub) -> None:
    """The ``assess`` sub-command."""
    p = sub.add_parser("assess", help="say what each photo needs fixing (no model needed)")
    p.add_argument("inputs", nargs="+", metavar="PHOTO", help="image files or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per photo and line")
    p.set_defaults(func=cmd_assess)
