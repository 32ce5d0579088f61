"""Atomic file writes: a temp file beside the target, then a rename, so a failure never leaves
a half-written file (the old one stays until the new one is whole). Used by the host tools
and the trainer alike."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from wakeward.errors import WakewardError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(
    path: Path,
    write: Callable[[BinaryIO], object],
    *,
    mode: int | None = None,
    durable: bool = False,
) -> Path:
    """Create or replace `path` with what `write` writes: with the usual permissions, or
    `mode` (e.g. 0o600, set before any byte is written); `durable` also syncs the file to
    disk before the rename (for what must survive a power cut)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise WakewardError(f"{path}: cannot write ({e.strerror})") from None
    try:
        os.fchmod(fd, (0o666 & ~_umask()) if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise WakewardError(f"{path}: cannot write ({e.strerror})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> Path:
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")), mode=mode)
