"""Shared fixtures: run firmware code on the MicroPython unix port under a heap limit."""

from __future__ import annotations

import shutil
import struct
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from wakeward import unixport

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"


class MicroPythonFailed(AssertionError):
    pass


@dataclass
class MicroPython:
    """Runs code on the unix port with firmware/ on the module path.

    `heap` is a profile of wakeward.unixport.HEAP_PROFILES; the default is the ESP32-S3
    without PSRAM, so every firmware test runs within the device's heap unless it asks.
    """

    cwd: Path
    heap: str = unixport.DEFAULT_HEAP_PROFILE

    def run(
        self,
        code: str,
        *,
        heap: str | None = None,
        expect_ok: bool = True,
        timeout_s: float = 120,
        extra_paths: tuple[Path, ...] = (),
    ) -> subprocess.CompletedProcess[bytes]:
        script = self.cwd / "_mp_test.py"
        script.write_text(code)
        done = unixport.run(
            script,
            heap=heap or self.heap,
            cwd=self.cwd,
            timeout_s=timeout_s,
            extra_paths=extra_paths,
        )
        if expect_ok and done.returncode != 0:
            raise MicroPythonFailed(
                f"micropython exited {done.returncode}\n--- stdout\n"
                f"{done.stdout.decode(errors='replace')}\n--- stderr\n"
                f"{done.stderr.decode(errors='replace')}"
            )
        return done

    def output(self, code: str, **kw) -> str:
        return self.run(code, **kw).stdout.decode()


def output(done: subprocess.CompletedProcess[bytes]) -> str:
    """Everything a run printed (the unix port prints tracebacks to stdout)."""
    return (done.stdout + done.stderr).decode(errors="replace")


@pytest.fixture
def mp(tmp_path: Path) -> MicroPython:
    return MicroPython(cwd=tmp_path)


@pytest.fixture(params=sorted(unixport.HEAP_PROFILES))
def mp_each_heap(tmp_path: Path, request: pytest.FixtureRequest) -> MicroPython:
    """The same test on a board without PSRAM and on one with PSRAM."""
    return MicroPython(cwd=tmp_path, heap=request.param)


def write_test_wav(
    path: Path,
    samples: np.ndarray,
    rate_hz: int = 16000,
    channels: int = 1,
    width: int = 2,
) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate_hz)
        w.writeframes(np.asarray(samples).tobytes())
    return path


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)} (Debian packages; `make test` installs them when "
            f"it runs as root: sudo apt-get install {' '.join(missing)})"
        )


def write_any_wav(
    path: Path,
    seconds: float = 1.0,
    *,
    rate_hz: int = 22_050,
    channels: int = 2,
    bits: int = 32,
    is_float: bool = True,
    extensible: bool = False,
    tone_hz: float = 440.0,
) -> Path:
    """A tone at half scale in any WAV format (integer 8/16/24/32-bit or float), written by
    hand so that float and WAVE_FORMAT_EXTENSIBLE can be made too."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    x = 0.5 * np.sin(2 * np.pi * tone_hz * t)
    x = np.repeat(x[:, None], channels, axis=1).reshape(-1)
    width = bits // 8
    if is_float:
        data = x.astype(f"<f{width}").tobytes()
    elif bits == 8:
        data = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        v = np.round(x * (2**23 - 1)).astype("<i4")
        data = v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        data = np.round(x * (2 ** (bits - 1) - 1)).astype(f"<i{width}").tobytes()
    tag = 3 if is_float else 1
    head = struct.pack(
        "<HHIIHH", tag, channels, rate_hz, rate_hz * channels * width, channels * width, bits
    )
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        head = (
            struct.pack(
                "<HHIIHH",
                0xFFFE,
                channels,
                rate_hz,
                rate_hz * channels * width,
                channels * width,
                bits,
            )
            + struct.pack("<HHI", 22, bits, 0)
            + struct.pack("<H", tag)
            + guid_tail
        )
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(head)) + head
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
