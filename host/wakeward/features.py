"""`wakeward features`: the model-input features of a WAV file, from the device frontend
(firmware/frontend.py on the MicroPython unix port) or from the PC reference
(pymicro-features driven as pymicro-wakeword drives it).

Features are int8, shape (frames, 40): one frame per 10 ms once the first 30 ms window is
full, so a WAV of n samples has max(0, n // 160 - 2) frames. Each value is ESPHome's model
input, `clamp((v * 256 + 333) // 666 - 128, -128, 127)` of the frontend's uint16 value v
(docs/frontend.md, "uint16 feature -> int8 model input").

pymicro-features returns floats, not the uint16 values: `v * 0.0390625f` in float32
(`FLOAT32_SCALE`, pmf `micro_features.cpp:24`). 0.0390625 is 5/128, and v * 5 < 2**24, so
the float is exact and the exact inverse is `v = (f * 128) / 5`: f * 128 is an integer
(a power-of-two scale, exact in binary floating point), always a multiple of 5.
`pmf_to_uint16` undoes it that way and refuses any float that is not such a value.

The helpers here (`load_features`, `model_inputs`, `esphome_int8`, ...) are shared by the
tests and the host side of the firmware app.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wakeward import unixport
from wakeward.audio import RATE_HZ, read_any_wav
from wakeward.errors import WakewardError
from wakeward.files import write_atomic

NUM_CHANNELS = 40  # features per frame
WINDOW_SIZE = 480  # samples in the first frame's window (30 ms)
WINDOW_STEP = 160  # samples per frame after that (10 ms)
MODEL_STRIDE = 3  # frames per model invocation ([1, 3, 40] inputs, non-overlapping)
NPY_MAGIC = b"\x93NUMPY"

# pymicro-features: float feature = uint16 value * 5 / 128 (0.0390625f, exact in float32).
PMF_SCALE_NUM = 5
PMF_SCALE_DEN = 128


def frame_count(samples: int) -> int:
    """Frames the frontend makes from `samples` samples (the first after 480, then 1/160)."""
    return max(0, samples // WINDOW_STEP - (WINDOW_SIZE // WINDOW_STEP - 1))


def esphome_int8(values: np.ndarray) -> np.ndarray:
    """ESPHome's model input from uint16 features (micro_wake_word.cpp), as int8."""
    v = np.asarray(values, dtype=np.int64)
    return np.clip((v * 256 + 333) // 666 - 128, -128, 127).astype(np.int8)


def pmf_to_uint16(floats: np.ndarray | Sequence[Any]) -> np.ndarray:
    """The exact uint16 values behind pymicro-features' floats (f = v * 5 / 128)."""
    f = np.asarray(floats, dtype=np.float64)
    scaled = f * PMF_SCALE_DEN  # exact: a power-of-two scale
    v = scaled.astype(np.int64)
    if not np.array_equal(v, scaled) or np.any(v % PMF_SCALE_NUM) or np.any(v < 0):
        raise WakewardError(
            "pymicro-features returned a value that is not uint16 * 0.0390625: its output "
            "scaling has changed (see docs/frontend.md)"
        )
    v //= PMF_SCALE_NUM
    if np.any(v > 0xFFFF):
        raise WakewardError("pymicro-features returned a value above the uint16 range")
    return v.astype(np.uint16)


def reference_uint16(samples: np.ndarray) -> np.ndarray:
    """pymicro-features' uint16 features, (frames, 40), fed as pymicro-wakeword feeds it:
    chunks of 160 samples, advanced by `samples_read`; a last partial chunk is not fed."""
    from pymicro_features import MicroFrontend

    front = MicroFrontend()
    data = np.asarray(samples, dtype="<i2").tobytes()
    chunk = 2 * WINDOW_STEP
    rows: list[list[float]] = []
    at = 0
    while at + chunk <= len(data):
        result = front.process_samples(data[at : at + chunk])
        at += 2 * result.samples_read
        if result.features:
            rows.append(result.features)
    if not rows:
        return np.zeros((0, NUM_CHANNELS), np.uint16)
    return pmf_to_uint16(rows).reshape(-1, NUM_CHANNELS)


def reference_features(samples: np.ndarray) -> np.ndarray:
    """The PC reference: pymicro-features, converted with ESPHome's int8 formula."""
    return esphome_int8(reference_uint16(samples))


# Runs on the unix port: streams audio.raw through the frontend in chunks and writes each
# frame's 40 uint16 (little-endian) then 40 int8 values to frames.raw.
DEVICE_RUNNER = """
import frontend
fe = frontend.Frontend()
buf = bytearray(CHUNK_BYTES)
src = open('audio.raw', 'rb')
out = open('frames.raw', 'wb')
while True:
    got = src.readinto(buf)
    if not got:
        break
    n = got >> 1
    at = 0
    while at < n:
        at += fe.feed(buf, at, n - at)
        if fe.ready:
            out.write(fe.frame)
            out.write(fe.frame_int8)
out.close()
src.close()
print('frames', fe.frames)
"""
CHUNK_BYTES = 6400  # 200 ms of audio per read
_RECORD = np.dtype([("u16", "<u2", NUM_CHANNELS), ("i8", "i1", NUM_CHANNELS)])


@dataclass
class Frames:
    """The device frontend's output: uint16 features and the int8 model inputs."""

    uint16: np.ndarray  # (frames, 40) uint16
    int8: np.ndarray  # (frames, 40) int8


def device_frames(
    samples: np.ndarray,
    *,
    heap: str = unixport.DEFAULT_HEAP_PROFILE,
    timeout_s: float | None = None,
) -> Frames:
    """Run firmware/frontend.py on the unix port over int16 samples."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError("device_frames needs a 1-D int16 array")
    if timeout_s is None:
        timeout_s = 60 + len(samples) / RATE_HZ  # the unix port runs ~50x real time
    code = DEVICE_RUNNER.replace("CHUNK_BYTES", str(CHUNK_BYTES))
    with tempfile.TemporaryDirectory(prefix="wakeward-features-") as tmp:
        (Path(tmp) / "audio.raw").write_bytes(samples.astype("<i2").tobytes())
        text = unixport.run_or_fail(
            "the device frontend", code, heap=heap, cwd=tmp, timeout_s=timeout_s
        )
        raw = (Path(tmp) / "frames.raw").read_bytes()
    rec = np.frombuffer(raw, _RECORD)
    want = frame_count(len(samples))
    if text.split() != ["frames", str(len(rec))] or len(rec) != want:
        raise WakewardError(
            f"the device frontend made {len(rec)} frames ({text[-200:]!r}), expected {want}"
        )
    return Frames(uint16=rec["u16"].copy(), int8=rec["i8"].copy())


def device_features(
    samples: np.ndarray, *, heap: str = unixport.DEFAULT_HEAP_PROFILE
) -> np.ndarray:
    """The device frontend's int8 model inputs, (frames, 40)."""
    return device_frames(samples, heap=heap).int8


def model_inputs(features: np.ndarray, stride: int = MODEL_STRIDE) -> np.ndarray:
    """Consecutive, non-overlapping [1, stride, 40] model inputs, as pymicro-wakeword and
    ESPHome build them; frames left over at the end (fewer than `stride`) are dropped."""
    f = np.asarray(features)
    n = len(f) // stride
    return f[: n * stride].reshape(n, 1, stride, NUM_CHANNELS)


def load_features(path: str | Path) -> np.ndarray:
    """Features saved by `wakeward features`: an int8 .npy array of shape (frames, 40)."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WakewardError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise WakewardError(f"{path}: not a readable .npy array ({e})") from None
    if data.dtype != np.int8:
        raise WakewardError(f"{path}: dtype {data.dtype}, features are int8")
    if data.ndim != 2 or data.shape[1] != NUM_CHANNELS:
        raise WakewardError(f"{path}: shape {data.shape}, features are (frames, {NUM_CHANNELS})")
    return data


def check_output(path: str | Path) -> Path:
    """Refuse an --out we may not write: it must be named .npy, its folder must exist, and
    an existing file is replaced only if it is a .npy file (NumPy's magic bytes)."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise WakewardError(f"{path}: the output must be a .npy file (name it FRAMES.npy)")
    if path.is_dir():
        raise WakewardError(f"{path}: is a directory")
    if not path.parent.is_dir():
        raise WakewardError(f"{path}: folder {path.parent} does not exist")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise WakewardError(f"{path}: exists and is not a regular file; not replacing it")
        try:
            with path.open("rb") as f:
                head = f.read(len(NPY_MAGIC))
        except OSError as e:
            raise WakewardError(f"{path}: cannot read the existing file ({e.strerror})") from None
        if head != NPY_MAGIC:
            raise WakewardError(
                f"{path}: exists and is not a .npy array; not overwriting it "
                "(remove it or choose another --out)"
            )
    try:  # can we create a file there? (os.access says yes to root on a read-only mount)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise WakewardError(
            f"{path}: cannot write to folder {path.parent} ({e.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path


def save_features(path: str | Path, features: np.ndarray) -> Path:
    """Write features as .npy atomically (a failure never leaves a half-written file, and
    the old file stays until the new one is whole)."""
    path = check_output(path)
    data = np.ascontiguousarray(features, dtype=np.int8)
    return write_atomic(path, lambda f: np.save(f, data, allow_pickle=False))


def run(
    audio: str | Path,
    out: str | Path,
    *,
    reference: bool = False,
    heap: str = unixport.DEFAULT_HEAP_PROFILE,
) -> str:
    """The `wakeward features` command; returns its summary line."""
    samples = read_any_wav(audio)  # any common WAV, converted to 16 kHz mono 16-bit
    check_output(out)  # before the slow part
    if reference:
        features, source = reference_features(samples), "pymicro-features (PC reference)"
    else:
        features, source = device_features(samples, heap=heap), f"device frontend ({heap})"
    save_features(out, features)
    seconds = len(samples) / RATE_HZ
    return (
        f"{out}: {len(features)} frames x {NUM_CHANNELS} int8 from {seconds:.2f} s of audio, "
        f"{source}"
    )


_STREAM_CHUNK_BYTES = 2 * WINDOW_STEP  # what pymicro-wakeword feeds the frontend at once


class StreamingFeatures:
    """pymicro-features fed as pymicro-wakeword feeds it (160-sample chunks, advanced by
    what it read), audio arriving in blocks of any size: the same int8 frames as
    `reference_features` over the whole recording."""

    def __init__(self) -> None:
        from pymicro_features import MicroFrontend

        self._front = MicroFrontend()
        self._pending = b""

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """int8 frames (n x 40) completed by these samples."""
        data = self._pending + np.asarray(samples, dtype="<i2").tobytes()
        rows: list[list[float]] = []
        at = 0
        while at + _STREAM_CHUNK_BYTES <= len(data):
            result = self._front.process_samples(data[at : at + _STREAM_CHUNK_BYTES])
            at += 2 * result.samples_read
            if result.features:
                rows.append(result.features)
        self._pending = data[at:]
        if not rows:
            return np.zeros((0, NUM_CHANNELS), np.int8)
        return esphome_int8(pmf_to_uint16(rows))
