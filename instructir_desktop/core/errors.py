"""Typed errors raised by core/. Messages are written for photographers, not programmers."""

from __future__ import annotations


class InstructIRError(Exception):
    """Base class: every error core/ raises on purpose derives from it."""


class UnsupportedImageError(InstructIRError):
    """The file is not an image we can read (unknown format, corrupt, truncated)."""


class ImageTooLargeError(UnsupportedImageError):
    """The image is larger than the decompression-bomb limit."""


class ImageWriteError(InstructIRError):
    """An export could not be written (unwritable folder, disk full, unsupported format)."""


class EmptyInstructionError(InstructIRError, ValueError):
    """The instruction is empty, whitespace only, or has no words at all."""


class UnclearInstructionError(InstructIRError, ValueError):
    """The model cannot tell which of its tasks the instruction asks for."""


class ModelError(InstructIRError):
    """Base for model-pack problems."""


class UnknownModelError(ModelError):
    """No pack with that id is known to the catalog."""


class ModelNotInstalledError(ModelError):
    """The pack is known but its files are not on this computer."""


class ModelCorruptError(ModelError):
    """A pack file is present but its size or checksum is wrong, or it cannot be loaded."""


class DownloadError(ModelError):
    """A download failed (no network, server error)."""


class CancelledError(InstructIRError):
    """The user cancelled the job; nothing partial is returned or written."""


class DeviceError(InstructIRError):
    """The requested compute device is not available."""
