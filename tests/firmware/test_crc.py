"""CRC-32 written into the frame buffer (firmware/crc.py) equals zlib's, in checked 32-bit
mode and on the unix port without allocating."""

from __future__ import annotations

import zlib

import numpy as np

from tests import int32check
from tests.conftest import FIRMWARE


def test_crc_checked_32bit_matches_zlib():
    crc = int32check.load(FIRMWARE / "crc.py")
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 100, 1000):
        data = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes()) + bytearray(4)
        crc._crc_into(crc._TABLE, data, n, n)
        assert data[n:] == zlib.crc32(data[:n]).to_bytes(4, "little")


def test_crc_on_the_unix_port_allocates_nothing(mp):
    out = mp.output(
        "import micropython, binascii\n"
        "from crc import crc32_into\n"
        "buf = bytearray(b'wakeward' * 100) + bytearray(4)\n"
        "def run():\n"
        "    micropython.heap_lock()\n"
        "    crc32_into(buf, 800, 800)\n"
        "    micropython.heap_unlock()\n"
        "run()\n"
        "print(bytes(buf[800:]).hex(), '%08x' % binascii.crc32(bytes(buf[:800])))\n"
    )
    got, want = out.split()
    assert bytes.fromhex(got) == int(want, 16).to_bytes(4, "little")
