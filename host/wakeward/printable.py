"""What a device sent (its id, model names, log lines, messages), made safe to print.

A device's strings are its own word: a hostile or broken one can put terminal escape
sequences, NULs or bidirectional overrides in them, which a terminal would obey or a log
reader misread. They are stored as received and made printable only where they are shown:
each character Python does not count as printable (control and format characters, line and
paragraph separators, unassigned code points; the space is printable) is written as its
escape, ``\\x1b``, ``\\x00``, ``\\u202e``, as in Python's repr, so nothing is hidden.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with each unprintable character replaced by its backslash escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
