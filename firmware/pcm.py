# PCM sample conversions shared by every board (viper: integer only, allocates nothing).
#
# Word-size rule: viper ints are 32-bit on the ESP32-S3 and 64-bit on the unix port.
# A ptr32 load of a negative sample is sign-correct on the device but reads as an
# unsigned value here, so samples are rebuilt from masked 16-bit halves and every
# intermediate stays inside int32.
import micropython
from micropython import const

_INT16_MAX = const(32767)
_INT16_MIN = const(-32768)


@micropython.viper
def i2s32_to_int16(src, dst, n: int, shift: int):
    """Convert n left-justified 32-bit I2S slots in src to int16 in dst.

    The sample is taken as (slot >> shift), saturated to int16: shift 16 keeps the
    top 16 bits; each step below 16 adds 6 dB of gain.
    """
    s = ptr32(src)
    d = ptr16(dst)
    i = 0
    while i < n:
        w = s[i]
        hi = (w >> 16) & 0xFFFF
        if hi >= 0x8000:
            hi -= 0x10000
        x = ((hi << 16) | (w & 0xFFFF)) >> shift
        if x > _INT16_MAX:
            x = _INT16_MAX
        elif x < _INT16_MIN:
            x = _INT16_MIN
        d[i] = x & 0xFFFF
        i += 1


@micropython.viper
def mean_abs(buf, n: int) -> int:
    """Mean absolute amplitude of n int16 samples (n <= 65535 keeps the sum in int32),
    four at a time. (No pointer annotations: host tests import this module as Python.)"""
    if n <= 0:
        return 0
    p = ptr16(buf)
    total = 0
    end = uint(p) + 2 * n
    end4 = uint(p) + 2 * (n & ~3)
    while uint(p) < end4:
        a = p[0]
        if a >= 0x8000:
            a = 0x10000 - a
        b = p[1]
        if b >= 0x8000:
            b = 0x10000 - b
        c = p[2]
        if c >= 0x8000:
            c = 0x10000 - c
        d = p[3]
        if d >= 0x8000:
            d = 0x10000 - d
        total += a + b + c + d
        p = ptr16(uint(p) + 8)
    while uint(p) < end:
        a = p[0]
        if a >= 0x8000:
            a = 0x10000 - a
        total += a
        p = ptr16(uint(p) + 2)
    return total // n
