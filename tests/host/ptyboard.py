"""The pseudo-terminal MicroPython board the tests deploy to (wakeward/ptyboard.py)."""

from wakeward.ptyboard import PtyBoard

__all__ = ["PtyBoard"]
