"""The command line's batches: `instructir restore` over many photos (decoding and encoding
overlap the model, ``core.batch``), `restore --recipe FILE` and `instructir recipe show`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .core import errors
from .core.images import Photo

__all__ = ["run_photos", "restore_with_recipe", "add_parser"]

EXIT_USAGE = 2

# process(src, photo, progress) -> pixels or None (nothing to apply to this photo)
PhotoFn = Callable[[Path, Photo, Callable[[Any], None]], "np.ndarray | None"]


def _note(text: str) -> None:
    print(f"instructir: note: {text}", file=sys.stderr)


def run_photos(plans: list, out: Any, process: PhotoFn, *, quality: int, pack: str) -> int:
    """Restore each (input, output) pair with ``process`` on this thread while the next photo
    is decoded and the previous one written; events and lines as `restore` prints them.
    Returns the exit status: 0; 1 when a photo failed (or could not be read while others
    were restored); 2 when no photo was restored because none could be read."""
    from .core.batch import run_batch
    from .core.images import format_for_path, save_image
    from .core.jobs import Progress

    status = [0]
    restored = [0]

    def work(_i: int, src: Path, photo: Photo) -> np.ndarray | None:
        if photo.frames > 1:
            _note(f"{src.name} has {photo.frames} frames or pages; only the first is restored")

        def progress(ev: Any) -> None:
            if isinstance(ev, Progress):
                out.progress(
                    src.name,
                    ev.fraction,
                    input=str(src),
                    step=ev.step,
                    steps=ev.steps,
                    tile=ev.tile,
                    tiles=ev.tiles,
                )

        return process(src, photo, progress)

    def save(photo: Photo, pixels: np.ndarray, dst: Path) -> Path:
        kind = format_for_path(dst)
        if photo.alpha is not None and kind in ("JPEG", "BMP"):
            _note(f"{dst.name}: {kind} has no transparency; the photo's is dropped "
                  "(--format png, tiff or webp keeps it)")  # fmt: skip
        return save_image(photo.with_pixels(pixels), dst, quality=quality)

    def report(result) -> None:
        if result.skipped:  # nothing to apply (-i auto on a clean photo): no file written
            out.event(event="result", input=str(result.source), ok=True, skipped=True)
            return
        if not result.ok:
            cls = getattr(errors, result.error_type, None)
            bad_input = isinstance(cls, type) and issubclass(cls, errors.UnsupportedImageError)
            # A file we cannot read is bad input (2); anything else is a failed job (1).
            status[0] = max(status[0], EXIT_USAGE if bad_input else 1)
            out.event(event="result", input=str(result.source), ok=False, error=result.error)
            print(f"instructir: error: {result.source}: {result.error}", file=sys.stderr)
            return
        out.event(
            event="result",
            input=str(result.source),
            output=str(result.output),
            ok=True,
            seconds=round(result.seconds, 3),
            pack=pack,
        )
        restored[0] += 1
        out.info(f"{result.source} -> {result.output} ({result.seconds:.1f} s)")

    run_batch(plans, work, save, report)
    if status[0] == EXIT_USAGE and restored[0]:
        return 1  # some photos were restored: a partial failure, not a refused command
    return status[0]


def _recipe_pack(args: argparse.Namespace, recipe) -> str | None:
    """--model, else the pack the recipe was made with when it is installed, else None
    (the default pack), with a note that the pixels may differ from the recipe's."""
    from .core.store import ModelStore

    if args.model or not recipe.pack:
        return args.model
    if ModelStore().is_installed(recipe.pack):
        return recipe.pack
    _note(
        f"the recipe was made with the model '{recipe.pack}', which is not installed; "
        "using the default model (results will differ from the app's)"
    )
    return None


def restore_with_recipe(args: argparse.Namespace, out: Any, open_queue: Callable) -> int:
    """`instructir restore INPUT... --recipe FILE -o OUT`."""
    from .core.jobs import JobKind
    from .core.outputs import collect_inputs, plan_outputs
    from .core.recipe import apply_recipe, load_recipe

    if args.instruction:
        print(
            "instructir: error: give either -i instructions or --recipe, not both",
            file=sys.stderr,
        )
        return EXIT_USAGE
    options = {"--strength": args.strength, "--min-confidence": args.min_confidence}
    given = [flag for flag, value in options.items() if value is not None]
    if given or args.no_split:
        flag = (given + ["--no-split"])[0]
        print(
            f"instructir: error: {flag} applies to -i; a recipe carries its own steps and "
            "strengths (change them in the app and save the recipe again)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    recipe = load_recipe(args.recipe)
    if not recipe.active_steps:
        print(
            f"instructir: error: the recipe '{recipe.name}' has no enabled step to apply",
            file=sys.stderr,
        )
        return EXIT_USAGE
    inputs = collect_inputs(args.inputs)
    plans = plan_outputs(inputs, args.output, args.format)
    for text in _held_steps(recipe):
        out.event(event="warning", message=text)
        _note(text)
    args.model = _recipe_pack(args, recipe)
    queue = open_queue(args)
    pack = queue.host.restorer.pack_id

    def run(request, listener):
        return queue.run(JobKind.RESTORE, request, listener=listener)

    def process(src: Path, photo: Photo, progress) -> np.ndarray:
        def warn(text: str) -> None:
            out.event(event="warning", input=str(src), message=text)
            _note(f"{src.name}: {text}")

        return apply_recipe(
            photo.pixels,
            recipe,
            run,
            tile=args.tile,
            progress=lambda _f, ev: ev is not None and progress(_scaled(ev, _f)),
            warn=warn,
        )

    return run_photos(plans, out, process, quality=args.quality, pack=pack)


def _held_steps(recipe) -> list[str]:
    """A sentence for each enabled step that `restore -i` would hold ("blur the background",
    "it's too bright"): a recipe's steps are applied as written (the app saves the ones the
    user applied anyway), so they are applied, and said."""
    from .core.phrasing import (
        NOTHING_ASKED_NOTE,
        TOO_BRIGHT_NOTE,
        UNSAID_NOTE,
        asks_for_nothing,
        asks_to_darken,
        says_nothing_wrong,
    )
    from .core.scope import scope_note

    held = []
    for i, step in enumerate(recipe.steps, 1):
        if not step.enabled or step.adjust is not None:
            continue
        text = step.instruction
        note = TOO_BRIGHT_NOTE if asks_to_darken(text) else scope_note(text)
        if not note and asks_for_nothing(text):
            note = NOTHING_ASKED_NOTE
        if not note and says_nothing_wrong(text):
            note = UNSAID_NOTE
        if note:
            held.append(f"step {i} “{text}”: {note} Applied as written, as the recipe says.")
    return held


def _scaled(ev, fraction: float):
    """The job's Progress event with its fraction of the whole recipe."""
    import dataclasses

    return dataclasses.replace(ev, fraction=fraction)


def cmd_recipe(args: argparse.Namespace) -> int:
    """`instructir recipe show FILE [--json]`."""
    from .core.recipe import describe_recipe, load_recipe

    recipe = load_recipe(args.file)
    if args.json:
        print(json.dumps({"name": recipe.name, **recipe.to_dict()}))
        return 0
    pack = f" (model {recipe.pack})" if recipe.pack else ""
    n = len(recipe.steps)
    steps = f"{n} steps, applied in this order" if n != 1 else "1 step"
    print(f"Recipe '{recipe.name}'{pack}: {steps}")
    for line in describe_recipe(recipe):
        print(f"  {line}")
    return 0


def add_parser(sub: Any) -> None:
    """Add `recipe show FILE` to the command's subparsers."""
    p = sub.add_parser("recipe", help="show a recipe (a saved layer stack)")
    p.add_argument("action", choices=["show"])
    p.add_argument("file", help="a recipe JSON file or an .instructir project")
    p.add_argument("--json", action="store_true", help="the recipe as one JSON object")
    p.set_defaults(func=cmd_recipe)
