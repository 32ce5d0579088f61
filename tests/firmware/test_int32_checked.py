"""Every viper kernel in firmware/ runs in checked 32-bit mode (tests/int32check.py), so
arithmetic that would overflow the ESP32-S3's 32-bit word fails here, not on the device."""

from __future__ import annotations

import numpy as np
import pytest

from tests import int32check
from tests.conftest import FIRMWARE

VIPER_MODULES = sorted(p for p in FIRMWARE.rglob("*.py") if int32check.viper_functions(p))

# Every viper function must be exercised here; a new kernel without a checked test fails.
CHECKED = {
    "pcm.py": {"i2s32_to_int16", "mean_abs"},
    "crc.py": {"_crc_into"},  # checked in tests/firmware/test_crc.py
    # checked in tests/firmware/test_frontend.py
    "frontend.py": {
        "_copy_in",
        "_window",
        "_fft_first",
        "_fft_stage",
        "_fft_split",
        "_filterbank",
        "_sqrt",
        "_finish",
    },
    # checked in tests/firmware/test_tflm_quant.py and test_tflm_conv.py
    "tflm/quant.py": {"requantize"},
    "tflm/conv.py": {"conv2d", "depthwise_conv2d"},
    # checked in tests/firmware/test_tflm_move.py
    "tflm/move.py": {"copy_runs", "map_bytes"},
    # checked in tests/firmware/test_tflm_kernels.py
    "tflm/pool.py": {"average_pool", "max_pool"},
    "tflm/elementwise.py": {"binary"},
    "tflm/reduce.py": {"mean_sums"},
    # checked in tests/firmware/test_clip.py
    "clip.py": {"_ring_put", "_ring_get"},
}


def test_every_viper_kernel_has_a_checked_test():
    found = {}
    for path in VIPER_MODULES:
        found[path.relative_to(FIRMWARE).as_posix()] = set(int32check.viper_functions(path))
    assert found == CHECKED


def test_the_checker_catches_an_overflow(tmp_path):
    src = tmp_path / "k.py"
    src.write_text(
        "import micropython\n@micropython.viper\ndef square(x: int) -> int:\n    return x * x\n"
    )
    mod = int32check.load(src)
    assert mod.square(46340) == 46340 * 46340
    with pytest.raises(int32check.Int32Overflow, match=r"k.py:4: 2147488281 does not fit"):
        mod.square(46341)


def test_the_checker_loads_ptr32_signed_like_the_device(tmp_path):
    src = tmp_path / "k.py"
    src.write_text(
        "import micropython\n"
        "@micropython.viper\n"
        "def first(buf) -> int:\n"
        "    p = ptr32(buf)\n"
        "    return p[0]\n"
    )
    assert int32check.load(src).first((-5).to_bytes(4, "little", signed=True)) == -5


@pytest.fixture(scope="module")
def pcm():
    return int32check.load(FIRMWARE / "pcm.py")


@pytest.mark.parametrize("shift", [16, 14, 8, 0])
def test_i2s32_to_int16_checked(pcm, shift):
    rng = np.random.default_rng(shift)
    words = np.concatenate(
        [[-(2**31), 2**31 - 1, 0, -1], rng.integers(-(2**31), 2**31, 500, dtype=np.int64)]
    ).astype("<i4")
    dst = bytearray(2 * len(words))
    pcm.i2s32_to_int16(words.tobytes(), dst, len(words), shift)
    expected = np.clip(words.astype(np.int64) >> shift, -32768, 32767)
    np.testing.assert_array_equal(np.frombuffer(bytes(dst), "<i2"), expected)


def test_mean_abs_checked_at_its_limit(pcm):
    loudest = np.full(65535, -32768, "<i2").tobytes()
    assert pcm.mean_abs(loudest, 65535) == 32768
    with pytest.raises(int32check.Int32Overflow):
        pcm.mean_abs(np.full(65536, -32768, "<i2").tobytes(), 65536)
