"""PCM conversions (viper) against numpy, under the ESP32-S3 heap, allocation-free."""

from __future__ import annotations

import json

import numpy as np
import pytest


def reference_i2s32_to_int16(words: np.ndarray, shift: int) -> np.ndarray:
    return np.clip(words.astype(np.int64) >> shift, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("shift", [16, 14, 11])
def test_i2s32_to_int16_matches_numpy(mp, tmp_path, shift):
    rng = np.random.default_rng(shift)
    words = rng.integers(-(2**31), 2**31, 3000, dtype=np.int64).astype(np.int32)
    small = rng.integers(-(2**20), 2**20, 1000, dtype=np.int64).astype(np.int32)
    words = np.concatenate([[-(2**31), 2**31 - 1, 0, -1, 1, 0x7FFF0000, -0x80000000], words, small])
    words = words.astype("<i4")
    (tmp_path / "in.raw").write_bytes(words.tobytes())
    mp.run(
        "import micropython\n"
        "from pcm import i2s32_to_int16\n"
        "src = open('in.raw', 'rb').read()\n"
        "n = len(src) // 4\n"
        "dst = bytearray(2 * n)\n"
        "micropython.heap_lock()\n"
        f"i2s32_to_int16(src, dst, n, {shift})\n"
        "micropython.heap_unlock()\n"
        "open('out.raw', 'wb').write(dst)\n"
    )
    got = np.frombuffer((tmp_path / "out.raw").read_bytes(), dtype="<i2")
    np.testing.assert_array_equal(got, reference_i2s32_to_int16(words, shift))


def test_mean_abs_matches_numpy(mp, tmp_path):
    rng = np.random.default_rng(7)
    frames = [
        rng.integers(-32768, 32768, 160, dtype=np.int64).astype(np.int16),
        np.full(160, -32768, np.int16),
        np.zeros(160, np.int16),
        np.array([-1, 1, 3], np.int16),
    ]
    data = b"".join(f.astype("<i2").tobytes() for f in frames)
    (tmp_path / "in.raw").write_bytes(data)
    lengths = [len(f) for f in frames]
    out = mp.output(
        "import json, micropython\n"
        "from pcm import mean_abs\n"
        "data = open('in.raw', 'rb').read()\n"
        f"lengths = {lengths}\n"
        "views = []\n"
        "at = 0\n"
        "for n in lengths:\n"
        "    views.append(memoryview(data)[2 * at: 2 * (at + n)])\n"
        "    at += n\n"
        "out = [0] * len(views)\n"
        "micropython.heap_lock()\n"
        "for i in range(len(views)):\n"
        "    out[i] = mean_abs(views[i], lengths[i])\n"
        "micropython.heap_unlock()\n"
        "print(json.dumps(out))\n"
    )
    expected = [int(np.abs(f.astype(np.int64)).sum() // len(f)) for f in frames]
    assert json.loads(out) == expected
