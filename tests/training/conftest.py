"""Shared fixtures for the trainer's tests: a small word list and an isolated cache."""

from __future__ import annotations

from pathlib import Path

import pytest

# Phonetic neighbours of "hey jarvis" and "alexa", parts of them, longer words with their
# sounds inside, and unrelated fillers that must never come out as close.
# fmt: off
WORDS = (
    "hi", "hay", "high", "hey", "jarvis", "service", "harvest", "harvesting", "javascript",
    "travis", "mavis", "avis", "davis", "novice", "javas", "jar", "jars", "ajar",
    "alexis", "lexus", "elixir", "election", "alexander", "alex", "flex", "legs",
    "hello", "table", "window", "computer", "banana", "elephant", "orange", "river", "mountain",
    "garden", "kitchen", "yellow", "purple", "seven", "eleven", "wonderful", "basket", "pencil",
    "morning", "evening", "coffee", "sugar", "paper", "lamp", "cloud",
)
UNRELATED = WORDS[WORDS.index("hello"):]
# fmt: on


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the phonemised word-list cache out of the user's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def words_file(tmp_path: Path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path
