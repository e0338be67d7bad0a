"""InstructIR Desktop: instruction-driven photo restoration on your own computer."""

__version__ = "0.1.0"
