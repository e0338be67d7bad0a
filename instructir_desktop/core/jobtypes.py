"""The job pipeline's vocabulary: job kinds, one request object per kind, and the typed
events a job reports (:class:`Started`, :class:`Progress`, :class:`StepDone`,
:class:`Finished`, :class:`Cancelled`, :class:`Failed`). ``core.jobs`` runs them."""

from __future__ import annotations

import enum
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import CancelledError, InstructIRError, ModelNotInstalledError

if TYPE_CHECKING:
    from .jobs import ModelHost

__all__ = [
    "OUT_OF_MEMORY",
    "PRIORITY",
    "NoModelError",
    "JobKind",
    "Step",
    "LoadRequest",
    "IntentRequest",
    "RestoreRequest",
    "JobEvent",
    "Started",
    "Progress",
    "StepDone",
    "Notice",
    "Finished",
    "Cancelled",
    "Failed",
    "Listener",
    "Job",
    "JobSubmitter",
]

OUT_OF_MEMORY = (
    "There is not enough memory to run the model on this photo. Close other programs, choose "
    "a smaller tile size in Preferences, or switch the device to CPU in Models."
)


class NoModelError(ModelNotInstalledError):
    """No model pack is installed (or none is loaded yet)."""


class JobKind(enum.Enum):
    LOAD = "load"
    INTENT = "intent"
    RESTORE = "restore"


# Lower runs first: reading a new instruction must not wait behind a background render.
PRIORITY = {"load": 0, "intent": 1, "preview": 2, "full": 3}


@dataclass(frozen=True)
class Step:
    """One instruction of a stack, applied with a strength in [0, 1].

    ``exposure``: not a model step but an exposure adjustment (core/adjust.py), by this many
    stops, or by what brings the photo's mean to middle grey when it is ``"auto"`` (the answer
    to a request to darken).
    """

    instruction: str
    strength: float = 1.0
    exposure: float | str | None = None


@dataclass
class LoadRequest:
    """Load a pack: ``pack_dir`` wins, else ``pack_id``, else the best installed pack."""

    pack_dir: Path | None = None
    pack_id: str | None = None
    device: str = "auto"
    backend: str = "auto"
    precision: str = "auto"


@dataclass
class IntentRequest:
    """What one message asks for: the steps (``split``) or the whole text as one intent;
    ``rows``: the answer as ``InstructionEncoder.intent_row`` dicts (the bridge, the CLI)."""

    text: str
    split: bool = True
    pack: str | None = None
    rows: bool = False


@dataclass
class RestoreRequest:
    """Everything that describes one restore: the photo, the instruction stack, where to run.

    ``plan``: each instruction may ask for several fixes ("too dark and grainy") and becomes
    one step per fix. ``min_confidence``: refuse (``UnclearInstructionError``) an instruction
    the model is less sure of, or one flagged with a note (a request to darken); None applies
    everything as written. ``quick``: a preview render, which may run in a standard tile
    shape (``Restorer.restore``).
    """

    image: np.ndarray
    steps: list[Step]
    pack: str | None = None
    tile: int | None = None
    plan: bool = False
    min_confidence: float | None = None
    quick: bool = False


@dataclass(frozen=True, kw_only=True)
class JobEvent:
    """What a job reports; one subclass per kind of event."""

    job_id: str
    kind: JobKind
    tag: Any = None


@dataclass(frozen=True, kw_only=True)
class Started(JobEvent):
    """The job left the queue. ``info``: what a load job knows before it loads (catalog)."""

    info: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Progress(JobEvent):
    """``fraction`` of the whole job; ``step`` of ``steps`` and ``tile`` of ``tiles`` done."""

    fraction: float
    message: str = ""
    step: int = 0
    steps: int = 1
    tile: int = 0
    tiles: int = 0


@dataclass(frozen=True, kw_only=True)
class StepDone(JobEvent):
    """One step of a restore is done (``step`` counts from 1)."""

    step: int
    steps: int
    instruction: str


@dataclass(frozen=True, kw_only=True)
class Notice(JobEvent):
    """Something the user should know about a job that still succeeds (e.g. it ran with
    smaller tiles or on the CPU to fit in memory)."""

    message: str


@dataclass(frozen=True, kw_only=True)
class Finished(JobEvent):
    """The job's result: a description (load), a list of Intents (intent), an image."""

    result: Any
    pack: str | None = None


@dataclass(frozen=True, kw_only=True)
class Cancelled(JobEvent):
    reason: str = "cancelled"


@dataclass(frozen=True, kw_only=True)
class Failed(JobEvent):
    """``error`` is one sentence for the user; ``error_type`` the core error's class name."""

    error: str
    error_type: str = "InstructIRError"


Listener = Callable[[JobEvent], None]


@dataclass
class Job:
    """One unit of work for the model thread."""

    kind: JobKind
    request: Any
    priority: int
    tag: Any = None
    listener: Listener | None = None
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    outcome: JobEvent | None = None  # the final event: Finished, Cancelled or Failed

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job; its result, or the failure raised as a core error."""
        if not self.done.wait(timeout):
            raise TimeoutError(f"job {self.job_id} did not finish in {timeout} s")
        outcome = self.outcome
        if isinstance(outcome, Finished):
            return outcome.result
        if isinstance(outcome, Cancelled):
            raise CancelledError("Cancelled.")
        assert isinstance(outcome, Failed)
        raise _error_class(outcome.error_type)(outcome.error)


class JobSubmitter(Protocol):
    """What a front end needs from the pipeline (JobQueue, or the app's model worker)."""

    host: ModelHost

    def submit(
        self,
        kind: JobKind,
        request: Any,
        *,
        priority: int | None = None,
        tag: Any = None,
        listener: Listener | None = None,
    ) -> Job: ...

    def cancel(self, job_id: str) -> None: ...


def _error_class(name: str) -> type[Exception]:
    from . import errors

    cls = getattr(errors, name, None) or (NoModelError if name == "NoModelError" else None)
    if isinstance(cls, type) and issubclass(cls, InstructIRError):
        return cls
    return MemoryError if name == "MemoryError" else InstructIRError
