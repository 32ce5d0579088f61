"""Counts in messages: `plural(1, "clip")` is "1 clip", `plural(2, "clip")` "2 clips"."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """`n` and `word`, or `many` (default `word` + "s") when n is not 1."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"
