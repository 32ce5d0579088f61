"""The receiver's log lines (wakeward/link/servicelog.py) as tests read them."""

from __future__ import annotations

import re

# "2026-12-07 13:24:25 INFO " before each line `wakeward listen` and `satellite` print
LOG_PREFIX = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING|ERROR) ")


def plain(line: str) -> str:
    """The line without its time and level (as it was said)."""
    found = LOG_PREFIX.match(line)
    return line[found.end() :] if found else line
