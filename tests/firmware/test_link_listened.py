"""The time the device listened (firmware/link.py, reported in STATUS as listened_s and
listened_rem_ms), on the unix port: it grows while listening and not while muted, to the
millisecond; it is counted right across the device clock's wrap (the ESP32-S3's ticks_ms
wraps at 2**30 ms, 12.4 days; the 64-bit unix port's much later, so the link is given the
device's tick arithmetic here); it stays exact and in small ints over months of polls; and
counting it allocates nothing per frame."""

from __future__ import annotations

import json

import pytest

from tests.conftest import MicroPythonFailed

TICKS_PERIOD = 1 << 30  # the ESP32-S3's ticks_ms period
SMALL_INT_MAX = (1 << 30) - 1  # MicroPython's small ints on a 32-bit device
DAY_MS = 86_400_000
MONTHS_DAYS = 100

SETUP = f"""
import json, micropython
import link as L
from link import Link
from outbox import Outbox
PERIOD = {TICKS_PERIOD}
HALF = PERIOD >> 1
now = [0]
def clock():
    return now[0]
class DeviceTicks:
    # the ESP32-S3's time.ticks_*: they wrap at 2**30
    def ticks_diff(self, a, b):
        return ((a - b + HALF) & (PERIOD - 1)) - HALF
    def ticks_add(self, a, delta):
        return (a + delta) & (PERIOD - 1)
    def ticks_ms(self):
        return now[0]
L.time = DeviceTicks()
def connect():
    raise OSError('no network')
said = []
box = Outbox(8, 1 << 20, say=said.append)
quiet = bytearray(320)
def listening(n):
    # n 10 ms frames while listening, as listen.run feeds them
    for _ in range(n):
        now[0] = (now[0] + 10) & (PERIOD - 1)
        link.frame(quiet, 0)
        link.poll()
def muted(n):
    # n 10 ms frames while muted: only the poll
    for _ in range(n):
        now[0] = (now[0] + 10) & (PERIOD - 1)
        link.poll()
"""

WRAP = (
    SETUP
    + """
now[0] = PERIOD - 4000  # 4 s before the device clock wraps
link = Link(connect, box, clock, 'dev', ['m'], retry_min_ms=100000000,
            retry_max_ms=100000000, status_interval_ms=1000, say=said.append)
seen = []
listening(100)  # the first poll tries to connect (and allocates saying it failed)
seen.append(link.listened())
micropython.heap_lock()
listening(1000)  # 10 s, across the wrap, a status tick every second
micropython.heap_unlock()
seen.append([now[0], link.listened()])
link.set_muted(True)
micropython.heap_lock()
muted(700)  # 7 s muted: not counted
micropython.heap_unlock()
seen.append(link.listened())
link.set_muted(False)
listening(37)
now[0] += 3  # between frames
seen.append(link.listened())
link.set_muted(True)
now[0] += 5000
link.set_muted(False)  # a mute of 5 s between two frames: not counted either
listening(1)
seen.append(link.listened())
print(json.dumps(seen))
"""
)


def test_listened_grows_while_listening_not_while_muted_across_the_wrap(mp):
    seen = json.loads(mp.output(WRAP).strip().splitlines()[-1])
    first, (clock, across), muted, later, after_mute = seen
    assert first == [1, 0]
    assert clock < 10_000  # the clock did wrap
    assert across == [11, 0]
    assert muted == [11, 0]
    assert later == [11, 373]
    assert after_mute == [11, 383]


MONTHS = (
    SETUP
    + f"""
now[0] = PERIOD - 1
link = Link(connect, box, clock, 'dev', ['m'], retry_min_ms=100000000,
            retry_max_ms=100000000, status_interval_ms=600000, say=said.append)
link.poll()
steps = {MONTHS_DAYS} * {DAY_MS} // 600007  # a poll every 600.007 s, the longest interval
for i in range(steps):
    now[0] = (now[0] + 600007) & (PERIOD - 1)
    link.poll()
    if i % 2 == 0:  # muted for an odd 1234 ms in every other step
        link.set_muted(True)
        now[0] = (now[0] + 1234) & (PERIOD - 1)
        link.set_muted(False)
print(json.dumps([steps, link.listened()]))
"""
)


def test_listened_stays_exact_in_small_ints_for_months(mp):
    steps, (seconds, rem_ms) = json.loads(mp.output(MONTHS).strip().splitlines()[-1])
    assert steps * 600_007 > MONTHS_DAYS * DAY_MS - 600_007  # the device clock wrapped 8 times
    assert seconds * 1000 + rem_ms == steps * 600_007  # the muted 1234 ms not counted
    assert 0 <= rem_ms < 1000
    assert seconds <= SMALL_INT_MAX  # no long int on the 32-bit device


def test_a_count_that_allocated_per_frame_would_fail_here(mp):
    """The heap lock above does catch an allocation in the frame loop: a link whose count
    allocates (here, a float) fails the same run."""
    broken = WRAP.replace(
        "L.time = DeviceTicks()",
        "L.time = DeviceTicks()\n"
        "_count = Link._count_listened\n"
        "def _alloc(self, now):\n"
        "    _count(self, now)\n"
        "    self._spent = now * 1.5\n"
        "Link._count_listened = _alloc",
    )
    with pytest.raises(MicroPythonFailed, match="MemoryError"):
        mp.output(broken)
