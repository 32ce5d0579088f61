"""A clip's picture for the review page: its waveform over its spectrogram, the pre-roll
shaded and the detection moment (the end of the pre-roll) marked, as a PNG.

Drawn with numpy alone (the PNG written with zlib), so the page needs no plotting library
and a picture costs a few milliseconds."""

from __future__ import annotations

import struct
import wave
import zlib
from pathlib import Path

import numpy as np

WIDTH = 640
WAVE_HEIGHT = 64
SPECTRUM_HEIGHT = 128
HEIGHT = WAVE_HEIGHT + SPECTRUM_HEIGHT
FFT_SIZE = 512  # 32 ms at 16 kHz
SAMPLE_BYTES = 2  # 16-bit PCM, as the store writes it
INT16_FULL_SCALE = 32768.0
DB_RANGE = 80.0  # the spectrogram's colours span this many dB below its loudest bin
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_RGB = 2  # colour type: truecolour
_PNG_BIT_DEPTH = 8
_PNG_NO_FILTER = b"\x00"

BACKGROUND = (24, 24, 32)
WAVE_COLOUR = (110, 190, 255)
PRE_ROLL_TINT = (60, 60, 90)  # added over the pre-roll (the audio before the wake word)
DETECTION_COLOUR = (255, 70, 70)
PLACEHOLDER_BACKGROUND = (64, 64, 64)
PLACEHOLDER_LINES = (128, 128, 128)
# the spectrogram's colour map, quiet to loud (a dark blue through purple and orange to yellow)
_COLOUR_STOPS = np.array(
    [(0, 0, 16), (60, 10, 110), (180, 40, 110), (250, 140, 40), (252, 250, 160)], dtype=float
)


def png(rgb: np.ndarray) -> bytes:
    """An (height, width, 3) uint8 image as PNG bytes."""
    height, width, _channels = rgb.shape
    rows = b"".join(_PNG_NO_FILTER + row.tobytes() for row in np.ascontiguousarray(rgb))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, _PNG_BIT_DEPTH, _PNG_RGB, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def placeholder() -> bytes:
    """The picture of a clip whose audio is gone: grey, crossed out, the same size."""
    image = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[:] = PLACEHOLDER_BACKGROUND
    xs = np.arange(WIDTH)
    ys = (xs * (HEIGHT - 1) / (WIDTH - 1)).astype(int)
    image[ys, xs] = PLACEHOLDER_LINES
    image[HEIGHT - 1 - ys, xs] = PLACEHOLDER_LINES
    return png(image)


def read_samples(path: Path) -> tuple[np.ndarray, int] | None:
    """A mono 16-bit WAV's samples (-1..1) and rate; None if it is missing or not one."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != SAMPLE_BYTES:
                return None
            rate = w.getframerate()
            data = w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError):
        return None
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / INT16_FULL_SCALE, rate


def draw(samples: np.ndarray, rate_hz: int, pre_roll_ms: int) -> bytes:
    """The clip's picture: waveform on top, spectrogram below, the pre-roll shaded and the
    detection moment (the end of the pre-roll) a red line through both."""
    image = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    duration_s = len(samples) / rate_hz if rate_hz else 0.0
    if len(samples):
        image[:WAVE_HEIGHT] = _waveform(samples)
        image[WAVE_HEIGHT:] = _spectrogram(samples)
    if duration_s > 0:
        detection_x = round(pre_roll_ms / 1000 / duration_s * WIDTH)
        shaded = image[:, : max(0, min(WIDTH, detection_x))].astype(np.int16)
        image[:, : shaded.shape[1]] = np.clip(shaded + PRE_ROLL_TINT, 0, 255).astype(np.uint8)
        if 0 <= detection_x < WIDTH:
            image[:, max(0, detection_x - 1) : detection_x + 1] = DETECTION_COLOUR
    return png(image)


def _waveform(samples: np.ndarray) -> np.ndarray:
    """Each column's lowest and highest sample, a vertical bar between them."""
    layer = np.empty((WAVE_HEIGHT, WIDTH, 3), dtype=np.uint8)
    layer[:] = BACKGROUND
    edges = np.linspace(0, len(samples), WIDTH + 1).astype(int)
    half = (WAVE_HEIGHT - 1) / 2
    rows = np.arange(WAVE_HEIGHT)[:, None]
    low = np.empty(WIDTH)
    high = np.empty(WIDTH)
    for x in range(WIDTH):
        part = samples[edges[x] : max(edges[x + 1], edges[x] + 1)]
        low[x], high[x] = part.min(), part.max()
    top = np.floor(half - high * half)  # y grows downwards
    bottom = np.ceil(half - low * half)
    layer[(rows >= top) & (rows <= bottom)] = WAVE_COLOUR
    return layer


def _spectrogram(samples: np.ndarray) -> np.ndarray:
    """One FFT per column (Hann window), log magnitude, low frequencies at the bottom."""
    padded = np.pad(samples, FFT_SIZE // 2)
    starts = np.linspace(0, len(samples), WIDTH).astype(int)
    frames = padded[starts[:, None] + np.arange(FFT_SIZE)[None, :]] * np.hanning(FFT_SIZE)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    db = 10 * np.log10(power + 1e-12)
    level = np.clip((db - (db.max() - DB_RANGE)) / DB_RANGE, 0.0, 1.0)
    bins = np.linspace(0, power.shape[1] - 1, SPECTRUM_HEIGHT).astype(int)[::-1]
    return _colour(level[:, bins].T)


def _colour(level: np.ndarray) -> np.ndarray:
    """0..1 -> RGB along the colour map."""
    position = level * (len(_COLOUR_STOPS) - 1)
    low = np.minimum(position.astype(int), len(_COLOUR_STOPS) - 2)
    frac = (position - low)[..., None]
    rgb = _COLOUR_STOPS[low] * (1 - frac) + _COLOUR_STOPS[low + 1] * frac
    return rgb.astype(np.uint8)
