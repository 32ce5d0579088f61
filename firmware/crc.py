# CRC-32 (the zlib/binascii polynomial) written straight into a buffer, for frames sent
# while audio streams: binascii.crc32 returns the CRC as an int, which on the ESP32-S3 is
# a heap-allocated long int whenever the value is 2^30 or more; this never makes an int.
import array

import micropython
from micropython import const

_POLY_REFLECTED = 0xEDB88320


def _table():
    t = array.array("I", bytes(1024))
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY_REFLECTED if c & 1 else c >> 1
        t[i] = c
    return t


_TABLE = _table()
_LOW24 = const(0xFFFFFF)


@micropython.viper
def _crc_into(table, buf, n: int, out: int):
    t = ptr32(table)
    b = ptr8(buf)
    crc = ~0
    i = 0
    while i < n:
        crc = t[(crc ^ b[i]) & 0xFF] ^ ((crc >> 8) & _LOW24)
        i += 1
    crc = ~crc
    b[out] = crc & 0xFF
    b[out + 1] = (crc >> 8) & 0xFF
    b[out + 2] = (crc >> 16) & 0xFF
    b[out + 3] = (crc >> 24) & 0xFF


def crc32_into(buf, n, out):
    """Write the CRC-32 of buf[0:n] little-endian at buf[out:out+4]; allocates nothing."""
    _crc_into(_TABLE, buf, n, out)
