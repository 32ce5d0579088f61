"""The time each device listened, added up in the clip store (ClipStore.add_listened) over
its statuses and reboots, per device and per model its hello announced; how a reboot is told
from a status (store.rebooted); and the schema migration that brings an older store the two
tables."""

from __future__ import annotations

import sqlite3

import pytest
from wakeward import store
from wakeward.errors import WakewardError
from wakeward.store import ClipStore, LastListened

from tests.host.test_store import add, raw_rows

T0 = 1_790_000_000.0  # a Unix time
MIN_MS = 60_000
HOUR_MS = 3_600_000


def counts(s: ClipStore, device: str) -> dict[str, tuple[int, float, float, int]]:
    """model -> (ms listened, since, updated, reboots) of one device ("": the device)."""
    return {e.model: (e.listened_ms, e.since, e.updated, e.reboots) for e in s.listened(device)}


def test_the_time_listened_adds_up_across_statuses_and_a_reboot(tmp_path):
    with ClipStore(tmp_path) as s:
        # up 100 s, 60 s of them listened: added whole, counted from the boot
        assert s.add_listened("kitchen", ["alexa"], 60_000, 100_000, T0) == 60_000
        assert s.add_listened("kitchen", ["alexa"], 90_000, 130_000, T0 + 30) == 30_000
        # muted for the next 30 s: nothing added
        assert s.add_listened("kitchen", ["alexa"], 90_000, 160_000, T0 + 60) == 0
        # rebooted (a deploy: a second model) and up 3 s, 2 s listened: a new boot, whole
        both = ["alexa", "hey_jarvis"]
        assert s.add_listened("kitchen", both, 2_000, 3_000, T0 + 100) == 2_000
        assert s.add_listened("kitchen", both, 32_000, 33_000, T0 + 130) == 30_000
        # another device counts on its own
        assert s.add_listened("hall", [], 5_000, 5_000, T0 + 130) == 5_000
        total = 60_000 + 30_000 + 0 + 2_000 + 30_000
        assert counts(s, "kitchen") == {
            "": (total, T0 - 100, T0 + 130, 1),
            "alexa": (total, T0 - 100, T0 + 130, 0),
            "hey_jarvis": (32_000, T0 + 97, T0 + 130, 0),  # from the boot that ran it
        }
        assert counts(s, "hall") == {"": (5_000, T0 + 125, T0 + 130, 0)}
        assert [e.device for e in s.listened()] == ["hall", "kitchen", "kitchen", "kitchen"]
    with ClipStore(tmp_path) as again:  # kept in the index
        assert counts(again, "kitchen")[""][0] == total


def test_a_reboot_no_status_told_of_is_seen_by_the_uptime(tmp_path):
    """The receiver was down while the device rebooted and then listened longer than it had
    before: its time listened is higher, but its uptime is far short of the last one's plus
    the time between them. The new boot's time goes in whole."""
    with ClipStore(tmp_path) as s:
        s.add_listened("kitchen", ["alexa"], 2 * HOUR_MS, 2 * HOUR_MS, T0)
        later = T0 + 600 + 10 * 3600  # rebooted 10 min after that status, up 10 h since
        assert s.add_listened("kitchen", ["alexa"], 10 * HOUR_MS, 10 * HOUR_MS, later) == (
            10 * HOUR_MS
        )
        assert counts(s, "kitchen")[""][::3] == (12 * HOUR_MS, 1)


LAST = LastListened(listened_ms=5 * HOUR_MS, uptime_ms=5 * HOUR_MS, received=T0)


@pytest.mark.parametrize(
    ("listened_ms", "uptime_ms", "after_s", "new_boot"),
    [
        # the same boot, 30 s on: the status came 0.8 s late, or early
        (5 * HOUR_MS + 29_000, 5 * HOUR_MS + 30_000, 30.8, False),
        (5 * HOUR_MS + 29_000, 5 * HOUR_MS + 30_000, 29.2, False),
        # the same boot, a day on, the crystal 50 ppm slow
        (5 * HOUR_MS, 5 * HOUR_MS + 86_400_000 - 4_320, 86_400, False),
        # the PC's clock put forward by 2 h between the two: not a reboot
        (5 * HOUR_MS + 30_000, 5 * HOUR_MS + 30_000, 2 * 3600 + 30, False),
        # the time listened went down: a reboot, whatever the uptime says
        (1_000, 5 * HOUR_MS + 30_000, 30, True),
        # up 10 s, 6 h after the last status: a reboot
        (10_000, 10_000, 6 * 3600, True),
        # up 5 h again, 6 h after it (listened longer than the 5 h before): a reboot
        (5 * HOUR_MS + 1_000, 5 * HOUR_MS + 1_000, 6 * 3600, True),
        # the receiver's clock went back: only the time listened can tell
        (5 * HOUR_MS + 1_000, 1_000, -60, False),
    ],
)
def test_a_reboot_is_told_by_the_time_listened_or_the_uptime(
    listened_ms, uptime_ms, after_s, new_boot
):
    assert store.rebooted(LAST, listened_ms, uptime_ms, T0 + after_s) is new_boot


def test_an_uptime_that_wraps_is_not_a_reboot():
    wrap = store.UPTIME_WRAP
    last = LastListened(listened_ms=40 * 24 * HOUR_MS, uptime_ms=wrap - 10_000, received=T0)
    # 30 s later the uptime (mod 2**32) reads 20 s: the same boot
    assert not store.rebooted(last, last.listened_ms + 30_000, 20_000, T0 + 30)
    # a reboot just then does read as one
    assert store.rebooted(last, 20_000, 20_000, T0 + 30)


def test_bad_values_are_refused_with_the_store_unchanged(tmp_path):
    with ClipStore(tmp_path) as s:
        for args in (
            ("kitchen", [], -1, 0, T0),
            ("kitchen", [], 1, True, T0),
            ("kitchen", [], 1.5, 0, T0),
            ("", [], 1, 1, T0),
            ("kitchen", [], 1, 1, float("nan")),
        ):
            with pytest.raises(WakewardError, match="status"):
                s.add_listened(*args)
        assert s.listened() == []


def test_an_older_store_gains_the_tables_and_keeps_its_clips(tmp_path):
    with ClipStore(tmp_path) as s:
        add(s, 1)
        s.label(1, "false-wake")
    db = sqlite3.connect(tmp_path / store.DB_NAME)  # back to schema version 1, as it was
    db.executescript("DROP TABLE listened; DROP TABLE last_listened; PRAGMA user_version = 1;")
    db.close()
    with ClipStore(tmp_path) as s:
        assert s.add_listened("kitchen", ["alexa"], MIN_MS, MIN_MS, T0) == MIN_MS
        assert s.get(1).label == "false-wake"
    db = sqlite3.connect(tmp_path / store.DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 2
    db.close()
    assert [r["id"] for r in raw_rows(tmp_path)] == [1]
