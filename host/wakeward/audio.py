"""WAV files in the one format the device pipeline uses: 16 kHz, 16-bit, mono."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

from wakeward.errors import WakewardError
from wakeward.files import write_atomic

RATE_HZ = 16_000


# The RIFF/WAVE rules of the firmware's reader (firmware/wavfile.py), so that every host tool
# takes what the device takes, with the same samples: integer PCM, plain or
# WAVE_FORMAT_EXTENSIBLE (its sub-format's tag), a 'fmt ' chunk of 16 to 64 bytes, the 'data'
# chunk within the first MiB; the data runs to its size or the end of the file, whichever
# comes first, in whole samples (a last odd byte is dropped).
_PCM = 1
_EXTENSIBLE = 0xFFFE
_SUBFORMAT_TAG_AT = 24  # the sub-format GUID's first two bytes: the format tag
_FMT_MIN_BYTES = 16
_FMT_MAX_BYTES = 64
_HEADER_LIMIT = 1 << 20
_RIFF_HEAD_BYTES = 12
_CHUNK_HEAD_BYTES = 8
_READ_BYTES = 1 << 20  # the data is read a MiB at a time: a size field is not trusted


class _NotPcmWav(Exception):
    """A structural problem, named (becomes "not a readable PCM WAV file (...)")."""


def read_wav(path: str | Path) -> np.ndarray:
    """Samples of a 16 kHz mono 16-bit WAV as int16; anything else is refused by name."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = _read_pcm(f, path)
    except FileNotFoundError:
        raise WakewardError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WakewardError(f"{path}: is a folder, not a WAV file") from None
    except OSError as e:
        raise WakewardError(f"{path}: cannot be read ({e.strerror or e})") from None
    except _NotPcmWav as e:
        raise WakewardError(f"{path}: not a readable PCM WAV file ({e})") from None
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def _read_pcm(f: BinaryIO, path: Path) -> bytes:
    head = f.read(_RIFF_HEAD_BYTES)
    if len(head) < _RIFF_HEAD_BYTES or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise _NotPcmWav("not a RIFF/WAVE file")
    have_fmt = False
    seen = _RIFF_HEAD_BYTES
    while True:
        chunk = f.read(_CHUNK_HEAD_BYTES)
        if len(chunk) < _CHUNK_HEAD_BYTES:
            raise _NotPcmWav("no 'data' chunk" if have_fmt else "no 'fmt ' chunk")
        cid = chunk[0:4]
        (size,) = struct.unpack("<I", chunk[4:8])
        seen += _CHUNK_HEAD_BYTES
        if cid == b"fmt ":
            if not _FMT_MIN_BYTES <= size <= _FMT_MAX_BYTES:
                raise _NotPcmWav(f"bad 'fmt ' chunk size {size}")
            fmt = f.read(size + (size & 1))
            if len(fmt) < size:
                raise _NotPcmWav("truncated 'fmt ' chunk")
            _check_format(fmt, path)
            have_fmt = True
        elif cid == b"data":
            if not have_fmt:
                raise _NotPcmWav("'data' chunk before 'fmt ' chunk")
            return _read_up_to(f, size & ~1)
        else:
            skip = size + (size & 1)
            seen += skip
            if seen > _HEADER_LIMIT:
                raise _NotPcmWav("no 'data' chunk in the first 1 MiB")
            _skip(f, skip)


def _check_format(fmt: bytes, path: Path) -> None:
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[0:16])
    if tag == _EXTENSIBLE and len(fmt) >= _SUBFORMAT_TAG_AT + 2:
        (tag,) = struct.unpack("<H", fmt[_SUBFORMAT_TAG_AT : _SUBFORMAT_TAG_AT + 2])
    if tag != _PCM:
        raise _NotPcmWav(f"format tag {tag} is not integer PCM")
    if channels != 1:
        raise WakewardError(f"{path}: {channels} channels, expected 1 (mono)")
    if bits != 16:
        raise WakewardError(f"{path}: {bits}-bit samples, expected 16-bit")
    if rate != RATE_HZ:
        raise WakewardError(f"{path}: sample rate {rate} Hz, expected {RATE_HZ} Hz")


def _skip(f: BinaryIO, size: int) -> None:
    """Past a chunk: a seek, or reading it where the file cannot seek (a pipe)."""
    if f.seekable():
        f.seek(size, io.SEEK_CUR)
    else:
        _read_up_to(f, size)


def _read_up_to(f: BinaryIO, size: int) -> bytes:
    """At most `size` bytes, fewer at the end of the file, in whole samples."""
    parts = []
    left = size
    while left > 0:
        part = f.read(min(left, _READ_BYTES))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    data = b"".join(parts)
    return data[: len(data) & ~1]


def write_wav(path: str | Path, samples: np.ndarray) -> Path:
    """Write int16 samples as a 16 kHz mono WAV atomically (never a half-written file)."""
    path = Path(path)
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError("write_wav needs a 1-D int16 array")

    def write(f) -> None:
        with wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE_HZ)
            w.writeframes(samples.astype("<i2").tobytes())

    return write_atomic(path, write)
