# The detection chime: 120 ms of an 880 Hz triangle wave with a linear fade, made once with
# integer maths (no floats on the device) and played through the board's speaker.
from micropython import const

RATE_HZ = const(16000)
_MS = const(120)
_PERIOD = const(18)  # samples per cycle: 16000 / 18 = 889 Hz
_PEAK = const(6000)  # about -15 dBFS: audible, not startling


def make():
    """The chime as int16 LE bytes (allocated once, at start-up)."""
    n = RATE_HZ * _MS // 1000
    pcm = bytearray(2 * n)
    half = _PERIOD // 2
    for i in range(n):
        phase = i % _PERIOD
        tri = phase if phase < half else _PERIOD - phase  # 0..half..0
        v = (tri * 4 - _PERIOD) * _PEAK // _PERIOD  # -PEAK..PEAK
        v = v * (n - i) // n  # fade out
        pcm[2 * i] = v & 0xFF
        pcm[2 * i + 1] = (v >> 8) & 0xFF
    return pcm
