"""Recipes: an edit (a layer stack) saved on its own, to apply to other photos.

A recipe file is JSON::

    {"format": "instructir-recipe", "version": 1, "pack": "<pack id>",
     "steps": [{"instruction": str, "strength": 0..1, "enabled": bool,
                "mask": null | "<PNG path relative to the recipe>"}, ...]}

Steps are in the order they are applied. A step may also carry ``"adjust"`` (an exposure
change in stops, computed without the model, like the app's adjustment layers). A mask is a
greyscale PNG beside the recipe: white applies the step, black keeps its input; it is scaled
to each photo. An ``.instructir`` project is a recipe too: its layer stack (read here from
the project's manifest, without the app).

Applying runs the model through the job pipeline (``core.jobs``): one ``RestoreRequest`` for
each run of steps without masks, one per masked step, whose result is blended through the
mask in the same space as strength: ``x + mask * strength * (y - x)``.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from .adjust import MAX_STOPS, exposure
from .atomic import atomic_write_bytes, atomic_write_text
from .errors import InstructIRError
from .jobtypes import JobEvent, Progress, RestoreRequest, Step

__all__ = [
    "RECIPE_FORMAT",
    "RECIPE_VERSION",
    "RECIPE_SUFFIX",
    "RecipeError",
    "RecipeMaskError",
    "RecipeStep",
    "Recipe",
    "parse_recipe",
    "load_recipe",
    "read_small_file",
    "save_recipe",
    "recipe_from_project",
    "load_mask",
    "mask_png",
    "apply_recipe",
    "describe_recipe",
]

RECIPE_FORMAT = "instructir-recipe"
RECIPE_VERSION = 1
RECIPE_SUFFIX = ".json"
PROJECT_FORMAT = "instructir-project"
MAX_RECIPE_BYTES = 4 << 20
MAX_STEPS = 1000
MAX_MASK_BYTES = 256 << 20
# Masks whose aspect differs from the photo's by more than this are stretched, with a warning.
ASPECT_TOLERANCE = 0.01

RunRestore = Callable[[RestoreRequest, Callable[[JobEvent], None] | None], np.ndarray]
ProgressFn = Callable[[float, Progress | None], None]


class RecipeError(InstructIRError):
    """A recipe file cannot be read or written; the message says why, for the user."""


class RecipeMaskError(RecipeError):
    """A recipe's mask is missing, unreadable, or points outside the recipe's folder."""


@dataclass(frozen=True)
class RecipeStep:
    """One layer of a recipe. ``adjust``: an exposure change in stops instead of a model fix."""

    instruction: str
    strength: float = 1.0
    enabled: bool = True
    mask: str | None = None
    adjust: float | None = None

    @property
    def active(self) -> bool:
        """Hidden and 0 % steps leave the photo as it is."""
        return self.enabled and self.strength > 0.0

    def to_dict(self) -> dict:
        d: dict = {
            "instruction": self.instruction,
            "strength": self.strength,
            "enabled": self.enabled,
            "mask": self.mask,
        }
        if self.adjust is not None:
            d["adjust"] = self.adjust
        return d


@dataclass
class Recipe:
    """Steps in the order applied; ``folder`` is where relative mask paths start;
    ``mask_data`` holds masks read from inside a project (by mask path)."""

    steps: list[RecipeStep]
    pack: str = ""
    name: str = ""
    folder: Path | None = None
    mask_data: dict[str, bytes] = field(default_factory=dict)

    @property
    def active_steps(self) -> list[RecipeStep]:
        return [s for s in self.steps if s.active]

    def to_dict(self) -> dict:
        return {
            "format": RECIPE_FORMAT,
            "version": RECIPE_VERSION,
            "pack": self.pack,
            "steps": [s.to_dict() for s in self.steps],
        }

    def mask_bytes(self, mask: str) -> bytes:
        """The PNG bytes of a step's mask (from the project, else from the recipe's folder)."""
        if mask in self.mask_data:
            return self.mask_data[mask]
        path = _mask_path(self.folder or Path("."), mask, self.name)
        try:
            if path.stat().st_size > MAX_MASK_BYTES:
                raise RecipeMaskError(
                    f"The mask '{mask}' of the recipe '{self.name}' is too large."
                )
            return path.read_bytes()
        except FileNotFoundError:
            raise RecipeMaskError(
                f"The recipe '{self.name}' needs the mask '{mask}', which is not beside it; "
                "copy the mask files along with the recipe."
            ) from None
        except OSError as exc:
            raise RecipeMaskError(
                f"The mask '{mask}' of the recipe '{self.name}' cannot be read: "
                f"{exc.strerror or exc}."
            ) from None


def _mask_path(folder: Path, mask: str, name: str) -> Path:
    """``mask`` inside ``folder``; a path that leaves it is refused (a recipe from someone
    else must not read arbitrary files)."""
    rel = PurePosixPath(mask.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or ":" in rel.parts[0]:
        raise RecipeMaskError(
            f"The recipe '{name}' names the mask '{mask}' outside its own folder; masks must "
            "lie beside the recipe."
        )
    base = folder.resolve()
    path = (base / Path(*rel.parts)).resolve()
    if not path.is_relative_to(base):
        raise RecipeMaskError(
            f"The recipe '{name}' names the mask '{mask}' outside its own folder (a link "
            "leads out of it)."
        )
    return path


_EXAMPLE = (
    'A recipe is a JSON object with a list of steps, e.g. {"steps": [{"instruction": '
    '"remove the noise", "strength": 0.7}]}; the app saves them with File → Save Recipe…'
)


def parse_recipe(data: object, *, name: str = "recipe", folder: Path | None = None) -> Recipe:
    """Check a decoded recipe document; raises RecipeError saying what is wrong."""
    bad = f"The recipe '{name}' is damaged"
    # A recipe written by hand may leave out "format" and "version": its steps say enough.
    hand_written = isinstance(data, dict) and "format" not in data and "steps" in data
    if not isinstance(data, dict) or (data.get("format") != RECIPE_FORMAT and not hand_written):
        raise RecipeError(f"'{name}' is not an InstructIR recipe. {_EXAMPLE}")
    version = data.get("version", 1 if hand_written else None)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecipeError(f"{bad} (its version is missing or malformed).")
    if version > RECIPE_VERSION:
        raise RecipeError(
            f"'{name}' was saved by a newer InstructIR (recipe version {version}); update "
            "the app to use it."
        )
    pack = data.get("pack", "")
    if pack is None:
        pack = ""
    if not isinstance(pack, str):
        raise RecipeError(f"{bad} (its pack is not text).")
    steps = data.get("steps")
    if not isinstance(steps, list) or len(steps) > MAX_STEPS:
        raise RecipeError(f"{bad} (its step list is missing or malformed).")
    parsed = [_step(d, i, bad) for i, d in enumerate(steps, 1)]
    recipe = Recipe(parsed, pack, name, folder)
    for step in parsed:
        if step.mask is not None and folder is not None:
            _mask_path(folder, step.mask, name)
    return recipe


def _step(d: object, i: int, bad: str) -> RecipeStep:
    if not isinstance(d, dict):
        raise RecipeError(f"{bad} (step {i} is not a step).")
    instruction = d.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise RecipeError(f"{bad} (step {i} has no instruction).")
    strength = d.get("strength", 1.0)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise RecipeError(f"{bad} (step {i}'s strength is not a number).")
    if not 0.0 <= strength <= 1.0:
        raise RecipeError(f"{bad} (step {i}'s strength {strength} is outside 0..1).")
    enabled = d.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RecipeError(f"{bad} (step {i}'s 'enabled' is not true or false).")
    mask = d.get("mask")
    if mask is not None and (not isinstance(mask, str) or not mask.strip()):
        raise RecipeError(f"{bad} (step {i}'s mask is not a file name).")
    adjust = d.get("adjust")
    if adjust is not None:
        if isinstance(adjust, bool) or not isinstance(adjust, (int, float)):
            raise RecipeError(f"{bad} (step {i}'s exposure adjustment is not a number).")
        if not math.isfinite(adjust) or abs(adjust) > MAX_STOPS:
            raise RecipeError(f"{bad} (step {i}'s exposure adjustment is out of range).")
        adjust = float(adjust)
    return RecipeStep(instruction.strip(), float(strength), enabled, mask, adjust)


def read_small_file(path: Path, limit: int, error: type[RecipeError], label: str) -> bytes:
    """The bytes of a file that must be small (a recipe, a mask); ``error`` with a one-line
    reason that starts with ``label`` ("The recipe 'x.json'") when it cannot be had."""
    kind = label.split("'", 1)[0].strip().lower().removeprefix("the ")
    try:
        if path.stat().st_size > limit:
            raise error(f"{label} is too large to be a {kind}.")
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{label} was not found.") from None
    except IsADirectoryError:
        raise error(f"{label} is a folder, not a {kind} file.") from None
    except OSError as exc:
        raise error(f"{label} cannot be read: {exc.strerror}.") from None


def load_recipe(path: str | Path) -> Recipe:
    """A recipe JSON file or an ``.instructir`` project's layer stack; masks are checked to
    exist (so a batch fails before the first photo, not halfway)."""
    path = Path(path)
    if path.suffix.lower() == ".instructir":
        return recipe_from_project(path)
    raw = read_small_file(path, MAX_RECIPE_BYTES, RecipeError, f"The recipe '{path.name}'")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RecipeError(
            f"'{path.name}' is not an InstructIR recipe (not JSON). {_EXAMPLE}"
        ) from None
    recipe = parse_recipe(data, name=path.stem, folder=path.parent)
    for step in recipe.steps:
        if step.mask is not None and not _mask_path(path.parent, step.mask, path.stem).is_file():
            raise RecipeMaskError(
                f"The recipe '{path.stem}' needs the mask '{step.mask}', which is not beside "
                "it; copy the mask files along with the recipe."
            )
    return recipe


def save_recipe(
    recipe: Recipe, path: str | Path, masks: dict[int, np.ndarray | bytes] | None = None
) -> Path:
    """Write the recipe (atomic) and its masks beside it as ``<name>-mask-<n>.png``.

    ``masks``: a mask per step index (float H x W in [0, 1], or PNG bytes); a step that
    already names a mask keeps it, copied from where the recipe was read.
    """
    target = Path(path).absolute()
    if target.suffix.lower() != RECIPE_SUFFIX:
        target = target.with_name(target.name + RECIPE_SUFFIX)
    masks = dict(masks or {})
    steps = []
    try:
        for i, step in enumerate(recipe.steps):
            data = masks.get(i)
            if data is None and step.mask is not None:
                data = recipe.mask_bytes(step.mask)
            if data is not None:
                name = f"{target.stem}-mask-{i + 1}.png"
                atomic_write_bytes(target.parent / name, mask_png(data))
                step = replace(step, mask=name)
            steps.append(step)
        text = json.dumps(replace(recipe, steps=steps).to_dict(), indent=2) + "\n"
        atomic_write_text(target, text)
    except OSError as exc:
        raise RecipeError(
            f"The recipe '{target.name}' could not be saved: {exc.strerror or exc}."
        ) from None
    return target


def mask_png(mask: np.ndarray | bytes) -> bytes:
    """A mask (float H x W in [0, 1], or uint16 samples) as 16-bit greyscale PNG bytes;
    bytes pass through."""
    if isinstance(mask, bytes):
        return mask
    plane = np.asarray(mask)
    if plane.ndim == 3:
        plane = plane[..., 0]
    out = io.BytesIO()
    if plane.dtype == np.uint16:  # an app layer's mask: already 16-bit samples
        samples = plane
    else:
        samples = np.rint(np.clip(plane.astype(np.float32), 0.0, 1.0) * 65535.0).astype(np.uint16)
    Image.fromarray(samples).save(out, "PNG")  # uint16: a 16-bit greyscale PNG
    return out.getvalue()


def recipe_from_project(path: str | Path) -> Recipe:
    """The layer stack of an ``.instructir`` project as a recipe (hidden layers are disabled
    steps). A layer's ``mask`` names a PNG inside the project."""
    path = Path(path)
    name = path.stem
    damaged = f"The project '{path.name}' is damaged"
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("manifest.json")
            if info.file_size > MAX_RECIPE_BYTES:
                raise RecipeError(f"{damaged} (its description is too large).")
            manifest = json.loads(zf.read(info).decode("utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != PROJECT_FORMAT:
                raise RecipeError(f"'{path.name}' is not an InstructIR project.")
            layers = manifest.get("layers", [])
            if not isinstance(layers, list) or len(layers) > MAX_STEPS:
                raise RecipeError(f"{damaged} (its layer list is malformed).")
            steps = []
            for layer in layers:
                if isinstance(layer, dict):
                    layer = dict(layer, enabled=layer.get("visible", True))
                steps.append(_step(layer, len(steps) + 1, damaged))
            mask_data = {}
            for step in steps:
                if step.mask is not None:
                    member = zf.getinfo(step.mask)
                    if member.file_size > MAX_MASK_BYTES:
                        raise RecipeMaskError(f"{damaged} (a mask is too large).")
                    mask_data[step.mask] = zf.read(member)
    except FileNotFoundError:
        raise RecipeError(f"The project '{path.name}' was not found.") from None
    except KeyError as exc:
        raise RecipeError(f"{damaged} (missing {exc.args[0]}).") from None
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError, RecursionError):
        raise RecipeError(f"{damaged} (it is not a valid project archive).") from None
    except OSError as exc:
        raise RecipeError(f"The project '{path.name}' cannot be read: {exc.strerror}.") from None
    pack = manifest.get("pack")
    return Recipe(steps, pack if isinstance(pack, str) else "", name, path.parent, mask_data)


def load_mask(recipe: Recipe, step: RecipeStep, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """The step's mask as float32 H x W x 1 in [0, 1] scaled to ``size`` (w, h), and a
    warning ("" when none) when the mask had another shape than the photo."""
    from .masks import fit_mask, mask_from_png  # masks.py imports this module

    assert step.mask is not None
    plane = mask_from_png(recipe.mask_bytes(step.mask), step.mask)
    h0, w0 = plane.shape
    w, h = size
    warning = ""
    if abs((w0 / h0) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        warning = (
            f"The mask '{step.mask}' ({w0} x {h0}) has another shape than the photo "
            f"({w} x {h}); it was stretched to fit."
        )
    return fit_mask(plane, size)[0][..., None], warning


def blend(x: np.ndarray, y: np.ndarray, weight: float | np.ndarray) -> np.ndarray:
    """``x + weight * (y - x)`` in float32, with the same operations as the app's stack, so
    a recipe gives the same pixels wherever it is applied."""
    if np.isscalar(weight) and weight >= 1.0:
        return y
    out = np.subtract(y, x, dtype=np.float32)
    out *= np.asarray(weight, np.float32)
    out += x
    return out


def apply_recipe(
    image: np.ndarray,
    recipe: Recipe,
    run: RunRestore,
    *,
    pack: str | None = None,
    tile: int | None = None,
    progress: ProgressFn | None = None,
    warn: Callable[[str], None] | None = None,
) -> np.ndarray:
    """``image`` (float32 H x W x 3) with the recipe's enabled steps applied in order.

    ``run(request, listener)`` runs one restore job and returns its image (the CLI:
    ``JobQueue.run``; the app: a job on its model worker, waited for). ``progress`` gets the
    fraction of the whole recipe and the job's Progress event; ``warn`` gets mask warnings.
    """
    steps = recipe.active_steps
    model_steps = sum(1 for s in steps if s.adjust is None) or 1
    done = [0]
    h, w = image.shape[:2]

    def listen(ev: JobEvent, first: int) -> None:
        if progress is not None and isinstance(ev, Progress):
            progress(min(1.0, (first + ev.fraction * ev.steps) / model_steps), ev)

    def restore(batch: list[Step]) -> np.ndarray:
        request = RestoreRequest(x, batch, pack=pack, tile=tile)
        first = done[0]
        result = run(request, lambda ev: listen(ev, first))
        done[0] += len(batch)
        return result

    x = image
    plain: list[Step] = []  # maskless model steps, run as one job
    for step in steps:
        if step.adjust is None and step.mask is None:
            plain.append(Step(step.instruction, step.strength))
            continue
        if plain:
            x, plain = restore(plain), []
        weight: float | np.ndarray = step.strength
        if step.mask is not None:
            mask, warning = load_mask(recipe, step, (w, h))
            if warning and warn is not None:
                warn(warning)
            weight = mask * np.float32(step.strength)
        if step.adjust is not None:
            y = exposure(x, step.adjust)
        else:
            y = restore([Step(step.instruction, 1.0)])
        if step.mask is not None:
            from .masks import apply_mask  # the app's mask blend, to the last bit

            x = apply_mask(x, y, weight[..., 0])
        else:
            x = blend(x, y, weight)
    if plain:
        x = restore(plain)
    if progress is not None:
        progress(1.0, None)
    return x if x is not image else image.copy()


def describe_recipe(recipe: Recipe) -> list[str]:
    """One line per step, for `instructir recipe show` and the app."""
    lines = []
    for i, step in enumerate(recipe.steps, 1):
        what = step.instruction
        if step.adjust is not None:
            what += f" (exposure {step.adjust:+.2f} EV, no model)"
        extras = [f"strength {step.strength * 100:.0f}%"]
        if step.mask:
            extras.append(f"mask {step.mask}")
        if not step.enabled:
            extras.append("hidden, not applied")
        lines.append(f"{i}. {what} — {', '.join(extras)}")
    return lines
