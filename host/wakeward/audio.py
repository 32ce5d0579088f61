"""WAV files in the one format the device pipeline uses: 16 kHz, 16-bit, mono.

read_wav takes exactly that format, by the firmware's rules (what must match the device
byte for byte: the clip store, the firmware-vs-host tests); read_any_wav takes any common
WAV and converts it (what `sim`, `features` and `try` are given)."""

from __future__ import annotations

import io
import struct
import sys
import wave
from collections.abc import Callable
from dataclasses import dataclass
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
    data = _read_file(path, None)
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def _read_file(path: Path, check: Callable[[bytes, Path], None] | None) -> bytes:
    """The data chunk of the WAV file at `path` (`check` sees its fmt chunk); every way the
    file can fail is a WakewardError naming it."""
    try:
        with path.open("rb") as f:
            return _read_pcm(f, path, check)
    except FileNotFoundError:
        raise WakewardError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WakewardError(f"{path}: is a folder, not a WAV file") from None
    except OSError as e:
        raise WakewardError(f"{path}: cannot be read ({e.strerror or e})") from None
    except _NotPcmWav as e:
        raise WakewardError(f"{path}: not a readable PCM WAV file ({e})") from None


def _read_pcm(f: BinaryIO, path: Path, check: Callable[[bytes, Path], None] | None = None) -> bytes:
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
            (check or _check_format)(fmt, path)
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


# -- any common WAV, converted (sim, features, try) -------------------------------------------

_IEEE_FLOAT = 3
_INT_BITS = (8, 16, 24, 32)
_FLOAT_BITS = (32, 64)
_BITS_PER_BYTE = 8
_DEVICE_BITS = 16
_INT16_FULL_SCALE = 32768
_UINT8_MIDPOINT = 128
_RESAMPLE_QUALITY = "HQ"  # libsoxr's high quality, as play.py uses
_CHANNEL_NAMES = {1: "mono", 2: "stereo"}


@dataclass(frozen=True)
class WavFormat:
    """A WAV file's sample format, as its 'fmt ' chunk gives it."""

    rate_hz: int
    channels: int
    bits: int
    is_float: bool

    @property
    def is_device_format(self) -> bool:
        return (self.rate_hz, self.channels, self.bits, self.is_float) == (
            RATE_HZ,
            1,
            _DEVICE_BITS,
            False,
        )

    def describe(self) -> str:
        channels = _CHANNEL_NAMES.get(self.channels, f"{self.channels}-channel")
        kind = " float" if self.is_float else ""
        return f"{self.rate_hz} Hz {channels} {self.bits}-bit{kind}"


def _parse_format(fmt: bytes, path: Path) -> WavFormat:
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[0:16])
    if tag == _EXTENSIBLE and len(fmt) >= _SUBFORMAT_TAG_AT + 2:
        (tag,) = struct.unpack("<H", fmt[_SUBFORMAT_TAG_AT : _SUBFORMAT_TAG_AT + 2])
    if tag not in (_PCM, _IEEE_FLOAT):
        raise _NotPcmWav(f"format tag {tag} is neither integer PCM nor IEEE float")
    is_float = tag == _IEEE_FLOAT
    if bits not in (_FLOAT_BITS if is_float else _INT_BITS):
        kind = "float" if is_float else "integer"
        raise WakewardError(
            f"{path}: {bits}-bit {kind} samples are not supported: convert it to 16-bit, e.g. "
            f"`sox {path} -r 16000 -c 1 -b 16 out.wav`"
        )
    if channels < 1 or rate < 1:
        raise _NotPcmWav(f"{channels} channels at {rate} Hz")
    return WavFormat(rate, channels, bits, is_float)


def _decode(data: bytes, fmt: WavFormat) -> np.ndarray:
    """Interleaved samples as float32 in [-1, 1), shaped (frames, channels)."""
    width = fmt.bits // _BITS_PER_BYTE
    frame = width * fmt.channels
    data = data[: len(data) - len(data) % frame]
    if fmt.is_float:
        x: np.ndarray = np.frombuffer(data, dtype=f"<f{width}").astype(np.float32)
    elif width == 1:
        x = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - _UINT8_MIDPOINT) / (
            _UINT8_MIDPOINT
        )
    elif width == 3:  # 24-bit: put each sample in the top of an int32
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        padded = np.zeros((len(b), 4), dtype=np.uint8)
        padded[:, 1:] = b
        x = padded.view("<i4").reshape(-1).astype(np.float64) / 2.0**31
    else:
        full = 2.0 ** (fmt.bits - 1)
        x = np.frombuffer(data, dtype=f"<i{width}").astype(np.float64) / full
    return np.asarray(x, dtype=np.float32).reshape(-1, fmt.channels)


def read_wav_format(path: str | Path) -> WavFormat:
    """The sample format of any WAV that read_any_wav takes (the file is read through)."""
    return _read_any(Path(path))[0]


def _read_any(path: Path) -> tuple[WavFormat, bytes]:
    found: list[WavFormat] = []

    def check(fmt: bytes, p: Path) -> None:
        found.append(_parse_format(fmt, p))

    data = _read_file(path, check)
    return found[-1], data


def _say_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def read_any_wav(path: str | Path, say: Callable[[str], None] = _say_stderr) -> np.ndarray:
    """Samples of any common WAV (any rate and channel count; 8/16/24/32-bit integer or
    32/64-bit float; plain or WAVE_FORMAT_EXTENSIBLE) as 16 kHz mono int16. A file already
    in the device's format is read as read_wav reads it; anything else is mixed to mono,
    resampled with libsoxr and rounded to 16-bit, and `say` gets one line saying so."""
    path = Path(path)
    fmt, data = _read_any(path)
    if fmt.is_device_format:
        return read_wav(path)
    x = _decode(data, fmt).mean(axis=1, dtype=np.float32)
    if fmt.rate_hz != RATE_HZ:
        import soxr

        x = soxr.resample(x, fmt.rate_hz, RATE_HZ, quality=_RESAMPLE_QUALITY)
    scaled = np.round(np.asarray(x, dtype=np.float64) * _INT16_FULL_SCALE)
    info = np.iinfo(np.int16)
    samples = np.clip(scaled, info.min, info.max).astype(np.int16)
    say(f"{path}: {fmt.describe()}, converted to 16 kHz mono 16-bit")
    return samples


def device_wav(path: str | Path, folder: Path, say: Callable[[str], None] = _say_stderr) -> Path:
    """`path` itself when it is a WAV in the device's format (what the firmware reads), else
    a converted copy in `folder` (read_any_wav)."""
    path = Path(path)
    if _read_any(path)[0].is_device_format:
        return path
    return write_wav(folder / "converted.wav", read_any_wav(path, say))


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
