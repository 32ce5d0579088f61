"""The unix-port fixture really limits the heap to the board's figure."""

from __future__ import annotations

import pytest
from wakeward import unixport

from tests.conftest import output

ALLOC = "b = bytearray({n})\nprint('allocated', len(b))\n"


def test_profiles_are_the_documented_figures():
    assert unixport.HEAP_PROFILES == {"esp32s3": 128_000, "esp32s3-psram": 8_000_000}


def test_default_profile_refuses_more_than_the_esp32s3_heap(mp):
    done = mp.run(ALLOC.format(n=200_000), expect_ok=False)
    assert done.returncode != 0
    assert "MemoryError" in output(done)


def test_default_profile_allows_a_buffer_that_fits(mp):
    assert "allocated 100000" in mp.output(ALLOC.format(n=100_000))


def test_psram_profile_allows_megabytes(mp):
    assert "allocated 4000000" in mp.output(ALLOC.format(n=4_000_000), heap="esp32s3-psram")


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(unixport.WakewardError, match="unknown heap profile 'esp32'"):
        unixport.heap_bytes("esp32")
