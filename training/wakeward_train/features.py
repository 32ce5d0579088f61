"""Model inputs for training, computed exactly as the device computes them, and their store.

`clip_features` is `wakeward.features.reference_features`: pymicro-features (the TFLite Micro
audio frontend, the reference the device frontend matches bit for bit) fed as
pymicro-wakeword feeds it, then ESPHome's uint16 -> int8 formula (`esphome_int8`). Training
therefore sees the very int8 numbers the speaker's model sees: one frame of 40 per 10 ms
once the first 30 ms are in, a clip of n samples giving max(0, n // 160 - 2) frames.

`FeatureStore` writes one split's clips as a single int8 array (total_frames, 40) in a .npy
file (memory-mappable: `np.load(path, mmap_mode="r")`); each clip is a row range of it,
recorded in the manifest as `offset` and `frames`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from wakeward import features as wf
from wakeward.errors import WakewardError
from wakeward.files import write_atomic

NUM_CHANNELS = wf.NUM_CHANNELS
WINDOW_SIZE = wf.WINDOW_SIZE
WINDOW_STEP = wf.WINDOW_STEP


def clip_features(samples: np.ndarray) -> np.ndarray:
    """int8 (frames, 40) model inputs of 16 kHz int16 samples, as the device makes them."""
    x = np.asarray(samples)
    if x.dtype != np.int16 or x.ndim != 1:
        raise WakewardError(f"features need 1-D int16 samples, got {x.dtype} {x.shape}")
    return wf.reference_features(x)


def frame_at(sample: int) -> int:
    """The first frame whose 30 ms window reaches past `sample` (its window's end)."""
    return max(0, -(-(sample - WINDOW_SIZE + 1) // WINDOW_STEP))


class FeatureStore:
    """Appends clips' features for one split; `close()` writes them as one .npy file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parts: list[np.ndarray] = []
        self.frames = 0

    def add(self, features: np.ndarray) -> int:
        """Store one clip's features; returns its offset (first row)."""
        f = np.asarray(features)
        if f.dtype != np.int8 or f.ndim != 2 or f.shape[1] != NUM_CHANNELS:
            raise WakewardError(f"features must be int8 (frames, 40), got {f.dtype} {f.shape}")
        offset = self.frames
        self._parts.append(f)
        self.frames += len(f)
        return offset

    def close(self) -> Path:
        """Write atomically (a temp file beside it, then a rename)."""
        data = (
            np.concatenate(self._parts)
            if self._parts
            else np.zeros((0, NUM_CHANNELS), dtype=np.int8)
        )
        write_atomic(self.path, lambda f: np.save(f, data, allow_pickle=False))
        self._parts = [data]
        return self.path


def load_split(path: Path) -> np.ndarray:
    """A split's features, memory-mapped (int8, (total_frames, 40))."""
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise WakewardError(f"{path}: no such feature file") from None
    except (OSError, ValueError) as e:
        raise WakewardError(f"{path}: not a readable .npy array ({e})") from None
    if data.dtype != np.int8 or data.ndim != 2 or data.shape[1] != NUM_CHANNELS:
        raise WakewardError(f"{path}: {data.dtype} {data.shape}, expected int8 (frames, 40)")
    return data
