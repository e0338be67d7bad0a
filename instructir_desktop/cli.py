"""The `instructir` command line: its parser and `restore`, `intent`, `models` and `demo`.
`serve` and `gimp` are in bridge_cli.py, `assess` in assess_cli.py, the batches and `recipe`
in batch_cli.py, and the output every command shares in cli_output.py. Uses core/ only.

Exit codes: 0 success, 1 a job failed, 2 bad usage or bad input, 130 cancelled (Ctrl+C).
Errors are one line on stderr; --json prints one JSON object per line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from . import __version__
from .bridge_cli import cmd_gimp, cmd_serve, serve_forever
from .cli_output import EXIT_CANCELLED, EXIT_FAILED, EXIT_USAGE, Output, discard_stdout, fail
from .core.errors import EmptyInstructionError, InstructIRError, UnclearInstructionError
from .core.packs import DEFAULT_MIN_CONFIDENCE

__all__ = ["main", "serve_forever"]

MIN_TILE = 64


class UsageError(Exception):
    """A bad argument found after parsing (one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``instructir: error: ...``, exit 2)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"instructir: error: {message} (see {self.prog} --help)\n")


def _int_in(low: int, high: int, what: str):
    """An argparse type: an integer between low and high."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be a whole number, not {raw!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}")
        return value

    return parse


def _env_float(name: str, default: float) -> float:
    """A number from the environment, for an option's default; a clear error if it is not."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        print(f"instructir: error: ${name} must be a number, not {raw!r}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _pack_id(args) -> str:
    from .core.packs import LITE_ID, OFFICIAL_ID
    from .core.store import ModelStore

    if args.model:
        return args.model
    return OFFICIAL_ID if ModelStore().is_installed(OFFICIAL_ID) else LITE_ID


def _open_queue(args):
    """The job pipeline with the chosen pack loaded (restores run in this thread)."""
    from .core.jobs import JobKind, JobQueue, LoadRequest, ModelHost
    from .core.store import ModelStore

    pack_id = _pack_id(args)
    queue = JobQueue(ModelHost(device=args.device, backend=args.backend, default_pack=pack_id))
    request = LoadRequest(ModelStore().locate(pack_id), pack_id, args.device, args.backend)
    # A first run on this computer converts the model and times the backends: tell the person
    # at the terminal (scripts read the one-line errors and the JSON, not notes).
    note = threading.Timer(SLOW_LOAD_NOTE_S, _say_preparing)
    note.daemon = True
    if sys.stderr.isatty():
        note.start()
    try:
        queue.run(JobKind.LOAD, request)
    finally:
        note.cancel()
    return queue


SLOW_LOAD_NOTE_S = 4.0  # a warm load takes a second or two


def _say_preparing() -> None:
    print(
        "instructir: note: preparing the model for this computer (the first run converts it "
        "and picks the fastest backend, up to a minute; later runs start in seconds)…",
        file=sys.stderr,
        flush=True,
    )


def cmd_restore(args) -> int:
    from .assess_cli import auto_steps, is_auto
    from .batch_cli import restore_with_recipe, run_photos
    from .core.degree import GENTLE_STRENGTH, gentle
    from .core.edit_commands import CHATTER, edit_command
    from .core.images import check_fits
    from .core.jobs import IntentRequest, JobKind, RestoreRequest, Step
    from .core.masks import read_mask
    from .core.outputs import collect_inputs, plan_outputs
    from .core.phrasing import asks_to_darken, clean_instruction

    out = Output(args.json)
    if args.recipe and args.mask:
        return fail("--mask applies to -i; a recipe carries its own masks")
    if args.recipe:
        return restore_with_recipe(args, out, _open_queue)
    if not args.instruction:
        return fail("give what to fix with -i TEXT, or a --recipe FILE")
    strength_given = args.strength is not None  # else each step's words decide (core.degree)
    args.strength = 1.0 if args.strength is None else args.strength
    if args.min_confidence is None:
        args.min_confidence = _env_float("INSTRUCTIR_MIN_CONFIDENCE", DEFAULT_MIN_CONFIDENCE)
    auto = is_auto(args.instruction)  # -i auto: each photo's own suggestions
    for text in [] if auto else args.instruction:
        clean_instruction(text, words=True)
        command = edit_command(text)  # "undo", "a bit less": the app's chat does these
        if command is not None and command.action not in CHATTER:
            return fail(
                f"'{text}' is about an earlier edit, and the command line keeps none: each run "
                "reads INPUT as it is (never changing it) and writes a new file. Say what is "
                "wrong with the photo, e.g. -i 'remove the noise'; for a weaker fix, add "
                "--strength 0.5"
            )
    if not 0.0 <= args.strength <= 1.0:
        return fail("--strength must be between 0 and 1")
    if not 0.0 <= args.min_confidence <= 1.0:
        return fail("--min-confidence must be between 0 and 1")
    inputs = collect_inputs(args.inputs)
    plans = plan_outputs(inputs, args.output, args.format)
    for src in inputs:
        check_fits(src)  # a photo beyond the memory budget is refused before the model loads
    mask = read_mask(args.mask) if args.mask else None  # a bad mask fails before the model
    if mask is not None and not mask.any():
        print(
            f"instructir: warning: the mask '{args.mask}' is black everywhere: the results "
            "will equal the originals (white is where the fix applies)",
            file=sys.stderr,
        )
    _check_tile(args)
    queue = _open_queue(args)
    restorer = queue.host.restorer
    steps = []
    for text in [] if auto else args.instruction:
        whole = queue.run(JobKind.INTENT, IntentRequest(text, split=False))[0]
        plan = [whole] if args.no_split else queue.run(JobKind.INTENT, IntentRequest(text))
        out.event(event="plan", instruction=text, steps=[i.to_dict() for i in plan])
        if plan != [whole]:
            listed = ", then ".join(f"{i.task} ({i.text!r})" for i in plan)
            fixes = f"{len(plan)} fixes, applied in this order" if len(plan) > 1 else "applied as"
            out.info(f"{text!r}: {fixes}: {listed}")
        elif not asks_to_darken(whole.text):
            out.info(f"{text!r}: {whole.task} ({whole.confidence * 100:.0f}% sure)")
        # A request to darken is answered with an exposure adjustment (no task darkens).
        darken = [i for i in plan if asks_to_darken(i.text)]
        for intent in darken:
            out.info(f"{intent.text!r}: an exposure adjustment (no model), not {intent.task}")
        for i in plan:
            strength = args.strength
            words = "" if strength_given else gentle(i.text)
            if words:
                strength = GENTLE_STRENGTH
                out.info(
                    f"{i.text!r}: at {strength:.0%} strength, as {words!r} asks for part of the "
                    "fix (--strength 1 applies all of it)"
                )
            steps.append(Step(i.text, strength, exposure="auto" if i in darken else None))
        if len(darken) < len(plan):
            _check_confidence([i for i in plan if i not in darken], args.min_confidence)

    def process(src, photo, progress):
        photo_steps = steps
        if auto:
            photo_steps = auto_steps(photo, args.strength, src, out.event, out.info)
        if not photo_steps:
            return None
        request = RestoreRequest(photo.pixels, photo_steps, tile=args.tile)
        restored = queue.run(JobKind.RESTORE, request, listener=progress)
        return restored if mask is None else _masked(photo.pixels, restored, mask, src)

    return run_photos(plans, out, process, quality=args.quality, pack=restorer.pack_id)


def _masked(original, restored, mask, src):
    """The restore blended through ``--mask``, scaled to the photo with a warning if needed."""
    from .core.masks import apply_mask, fit_mask

    h, w = original.shape[:2]
    fitted, scaled = fit_mask(mask, (w, h))
    if scaled:
        print(
            f"instructir: warning: {src.name}: the mask ({mask.shape[1]} x {mask.shape[0]}) "
            f"was scaled to the photo ({w} x {h})",
            file=sys.stderr,
        )
    return apply_mask(original, restored, fitted)


def _check_tile(args) -> None:
    """A --tile that fits the memory budget of the pack's network (checked before loading)."""
    if args.tile is None:
        return
    import torch

    from .core.packs import MANIFEST_NAME, PackManifest
    from .core.restorer import default_memory_budget
    from .core.store import ModelStore
    from .core.tiling import tile_size_for_budget

    manifest = PackManifest.load(ModelStore().locate(_pack_id(args)) / MANIFEST_NAME)
    budget = default_memory_budget(torch.device("cpu"))
    largest = max(MIN_TILE, tile_size_for_budget(budget, manifest.network.width, multiple=16))
    if args.tile > largest:
        raise UsageError(
            f"--tile {args.tile} does not fit the memory budget ({budget / 2**30:.1f} GB): "
            f"at most {largest} for this model; leave --tile out to choose automatically"
        )


def _check_confidence(plan: list, min_confidence: float) -> None:
    """Refuse a step flagged with a note (a request to darken) or below the gate."""
    from .core.phrasing import UNSAID_NOTE

    flagged = next((i for i in plan if i.note), None)
    if flagged is not None and min_confidence > 0:
        if flagged.note == UNSAID_NOTE:  # "fix it": the photo can say what it needs
            hint = "Or use -i auto: it applies what the photo itself suggests (see assess)"
        else:
            hint = f"Add --min-confidence 0 to apply it anyway (as {flagged.task})"
        raise UnclearInstructionError(f"cannot apply {flagged.text!r}: {flagged.note} {hint}")
    intent = plan[0]
    if intent.confidence < min_confidence:
        raise UnclearInstructionError(
            f"unclear instruction {intent.text!r}: the model is only "
            f"{intent.confidence * 100:.0f}% sure it asks for {intent.task}. Say what is "
            "wrong with the photo, e.g. 'too dark', 'remove the noise', 'it is blurry'; "
            "or add --min-confidence 0 to apply it anyway"
        )


def cmd_intent(args) -> int:
    from .core.integrity import verify_pack_files
    from .core.packs import LITE_ID, MANIFEST_NAME, OFFICIAL_ID, PackManifest
    from .core.store import ModelStore
    from .core.text import InstructionEncoder

    store = ModelStore()
    pack_id = args.model or (OFFICIAL_ID if store.is_installed(OFFICIAL_ID) else LITE_ID)
    folder = store.locate(pack_id)
    manifest = PackManifest.load(folder / MANIFEST_NAME)
    verify_pack_files(manifest, folder)  # a damaged head would read instructions wrongly
    encoder = InstructionEncoder(manifest, folder)
    refused = 0
    for text in args.text:
        try:
            row = encoder.intent_row(text)
        except EmptyInstructionError as exc:  # one bad text does not hide the others' readings
            print(f"instructir: error: {exc}", file=sys.stderr, flush=True)
            refused += 1
            continue
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        steps = row.get("steps", ())  # what restore applies, when not the whole as one
        if steps:
            count = f"{len(steps)} step{'s' if len(steps) > 1 else ''}:"
            print(f"{count:<16}  {row['text']}")
        else:
            print(f"{row['task']:<9} {row['confidence'] * 100:5.1f}%  {row['text']}")
        for step in steps:
            print(f"  step: {step['task']:<9} {step['confidence'] * 100:5.1f}%  {step['text']}")
        notes = [r["note"] for r in (row, *steps) if r.get("note")]
        if notes:
            print(f"  note: {notes[0]}")
    return 2 if refused else 0


def cmd_models(args) -> int:
    from .core.store import ModelStore

    store = ModelStore()
    out = Output(args.json)
    if args.action == "list":
        for s in store.list():
            row = {
                "id": s.id,
                "name": s.name,
                "version": s.version,
                "installed": s.installed,
                "bundled": s.bundled,
                "size": s.size,
                "path": str(s.path) if s.path else None,
            }
            if args.json:
                print(json.dumps(row))
            else:
                state = "bundled" if s.bundled else ("installed" if s.installed else "available")
                print(f"{s.id:<18} {state:<10} {s.size / 1e6:7.1f} MB  {s.name}")
        return 0
    if args.action == "download":
        if not args.id:
            return fail("models download needs a pack id")

        def progress(done, total, name):
            out.progress(name, done / total if total else 0.0, done=done, total=total, file=name)

        path = store.download(args.id, progress=progress)
        out.event(event="result", id=args.id, path=str(path), ok=True)
        out.info(f"Installed {args.id} in {path}")
        return 0
    if args.action == "import":
        if not args.id or not args.paths:
            return fail("models import needs a pack id and the files")
        path = store.import_files(args.id, [Path(p) for p in args.paths])
        out.event(event="result", id=args.id, path=str(path), ok=True)
        out.info(f"Imported {args.id} into {path}")
        return 0
    if args.action == "verify":
        ids = [args.id] if args.id else [s.id for s in store.list() if s.installed or s.bundled]
        bad = 0
        for pack_id in ids:
            report = store.verify(pack_id)
            bad += not report.ok
            problems = [f"{c.path}: {c.status}" for c in report.problems]
            if args.json:
                print(json.dumps({"id": pack_id, "ok": report.ok, "problems": problems}))
            else:
                print(f"{pack_id}: {'ok' if report.ok else 'DAMAGED'}")
                for line in problems:
                    print(f"  {line}")
        return EXIT_FAILED if bad else 0
    return fail(f"unknown models action '{args.action}'")


def cmd_demo(args) -> int:
    from .demo import run_demo

    out = Output(args.json)
    summary = run_demo(
        Path(args.output), device=args.device, backend=args.backend, progress=out.progress
    )
    if args.json:
        out.event(event="result", **summary)
    else:
        print(summary["text"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="instructir",
        description="Restore photos from plain-language instructions, on your own computer.",
    )
    ap.add_argument("--version", action="version", version=f"instructir {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _add_restore_parser(sub)
    _add_other_parsers(sub)
    return ap


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--backend",
        default=os.environ.get("INSTRUCTIR_BACKEND") or "auto",
        choices=["auto", "torch", "openvino"],
        help="inference backend; auto times the usable ones once and keeps the faster "
        "(default: $INSTRUCTIR_BACKEND or auto)",
    )


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model pack id (default: best installed)")
    _engine_args(p)


def _add_restore_parser(sub) -> None:
    p = sub.add_parser("restore", help="restore one or more photos")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument(
        "-i",
        "--instruction",
        action="append",
        help="what is wrong with the photo; repeat to stack instructions; 'auto' applies "
        "what `instructir assess` suggests",
    )
    p.add_argument(
        "--recipe",
        metavar="FILE",
        help="apply a saved recipe (a recipe JSON or an .instructir project's layers) "
        "instead of -i",
    )
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    p.add_argument(
        "--mask",
        metavar="MASK.png",
        help="apply the fix through a mask: a PNG painted in black and white, or a selection "
        "exported with its transparency; white applies, black keeps the original (scaled to "
        "each photo)",
    )
    p.add_argument(
        "--strength",
        type=float,
        help="0..1, applies to every step (default 1; 0.5 for a step that asks for a little, "
        "as in 'brighten it a little')",
    )
    p.add_argument(
        "--tile",
        type=_int_in(MIN_TILE, 8192, "--tile"),
        default=None,
        help=f"tile size in pixels ({MIN_TILE} or more; default: chosen from memory)",
    )
    p.add_argument("--format", default=None, choices=["png", "jpeg", "tiff", "webp"])
    p.add_argument(
        "--quality",
        type=_int_in(1, 100, "--quality"),
        default=95,
        help="JPEG/WebP quality, 1..100",
    )
    p.add_argument("--json", action="store_true", help="JSON lines on stdout")
    p.add_argument(
        "--no-split",
        action="store_true",
        help="apply each instruction as one step, even one that asks for several fixes "
        "('too dark and grainy' is otherwise brightened, then denoised)",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        help="refuse an instruction the model is less sure of than this, 0..1 (default: "
        f"$INSTRUCTIR_MIN_CONFIDENCE or {DEFAULT_MIN_CONFIDENCE}); 0 applies anything",
    )
    _model_args(p)
    p.set_defaults(func=cmd_restore)


def _add_other_parsers(sub) -> None:
    from .assess_cli import add_parser as add_assess_parser

    add_assess_parser(sub)

    from .batch_cli import add_parser as add_recipe_parser

    add_recipe_parser(sub)

    p = sub.add_parser("intent", help="show which task an instruction asks for")
    p.add_argument("text", nargs="+")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_intent)

    p = sub.add_parser("models", help="list, download, import or verify model packs")
    p.add_argument("action", choices=["list", "download", "import", "verify"])
    p.add_argument("id", nargs="?")
    p.add_argument("paths", nargs="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("demo", help="degrade the sample photo, restore it, report the gain")
    p.add_argument("-o", "--output", default="instructir-demo", help="folder for the results")
    _engine_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="run the local bridge for the GIMP plug-in")
    p.add_argument(
        "--port",
        type=_int_in(0, 65535, "--port"),
        default=47841,
        help="port on 127.0.0.1 (default 47841, the one the plug-in expects)",
    )
    _model_args(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("gimp", help="install or remove the GIMP 3 plug-in")
    p.add_argument("action", choices=["install", "uninstall"])
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--new-token", action="store_true", help="replace the bridge token (install only)"
    )
    p.set_defaults(func=cmd_gimp)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("instructir: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # the reader of our output has gone: nothing to say to anyone
        discard_stdout()
        return 0
    except UsageError as exc:
        return fail(str(exc))
    except InstructIRError as exc:
        return fail(str(exc))
    except MemoryError:
        return fail(
            "not enough memory for this photo; close other programs or use a smaller --tile",
            EXIT_FAILED,
        )
    except OSError as exc:
        return fail(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "))
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, details in a log
        log = _log_traceback()
        detail = " ".join(str(exc).split())[:200]
        where = f"; details in {log}" if log else ""
        return fail(f"unexpected problem ({type(exc).__name__}: {detail}){where}", EXIT_FAILED)


def _log_traceback() -> Path | None:
    """Append the current exception's traceback to the CLI log; its path, or None."""
    import traceback

    from .core.paths import cache_dir

    try:
        path = cache_dir() / "logs" / "instructir-cli.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {sys.argv!r}\n")
            fh.write(traceback.format_exc())
        return path
    except OSError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
