"""The clip queue on flash (firmware/outbox.py) on the unix port: clip ids that survive a
reboot, a clip deleted only when acknowledged, the bounds (oldest dropped, counted on
flash), and a reboot that finds a half-written or damaged clip."""

from __future__ import annotations

import json

from tests.host.test_protocol import P

# A finished clip as the link writes it: clip_start, clip_data frames, clip_end.
HELPERS = """
import os, protocol
from outbox import Outbox
said = []
def clip(box, n_chunks=3, chunk=bytes(range(256)) * 4):
    clip_id = box.begin()
    box.write(protocol.encode_clip_start(clip_id, 'alexa', 250, 16000, 1000))
    for seq in range(n_chunks):
        box.write(protocol.encode_clip_data(clip_id, seq, chunk))
    samples = n_chunks * len(chunk) // 2
    box.write(protocol.encode_clip_end(clip_id, samples, 0))
    box.finish(samples)
    return clip_id
def files():
    return sorted(os.listdir('outbox.d'))
"""


def run(mp, code: str) -> list:
    """Run HELPERS + code; the last line it prints is JSON."""
    out = mp.output(HELPERS + code)
    return json.loads(out.strip().splitlines()[-1])


def test_clip_ids_are_unique_across_reboots_and_start_at_random(mp, tmp_path):
    got = run(
        mp,
        "box = Outbox(8, 1 << 20)\n"
        "a = clip(box); b = clip(box)\n"
        "box.ack(a); box.ack(b)\n"
        "again = Outbox(8, 1 << 20)\n"  # a reboot: nothing queued, the counter goes on
        "c = clip(again)\n"
        "import json; print(json.dumps([a, b, c, again.ids, files()]))\n",
    )
    a, b, c, ids, files = got
    assert 1 <= a <= 2**29 and b == a + 1 and c == a + 2
    assert ids == [c] and files == [f"{c}.clip", "state.json"]
    # another new flash starts somewhere else
    (tmp_path / "outbox.d" / "state.json").unlink()
    (tmp_path / "outbox.d" / f"{c}.clip").unlink()
    other = run(mp, "box = Outbox(8, 1 << 20)\nimport json; print(json.dumps(clip(box)))\n")
    assert other != a


def test_a_clip_stays_until_acked_and_reads_back_exactly(mp, tmp_path):
    got = run(
        mp,
        "box = Outbox(8, 1 << 20)\n"
        "a = clip(box)\n"
        "buf = bytearray(500)\n"
        "box.start_reading(a)\n"
        "data = bytearray()\n"
        "while True:\n"
        "    n = box.read(buf)\n"
        "    if not n:\n"
        "        break\n"
        "    data.extend(buf[:n])\n"
        "box.stop_reading()\n"
        "open('read.bin', 'wb').write(data)\n"
        "before = files()\n"
        "acked = [box.ack(a + 1), box.ack(a), box.ack(a)]\n"
        "import json; print(json.dumps([a, before, acked, files(), box.bytes]))\n",
    )
    a, before, acked, after, nbytes = got
    assert before == [f"{a}.clip", "state.json"]
    assert acked == [False, True, False]
    assert after == ["state.json"] and nbytes == 0
    frames = (tmp_path / "read.bin").read_bytes()
    chunk = bytes(range(256)) * 4
    want = P.encode_clip_start(a, "alexa", 250, 16000, 1000)
    want += b"".join(P.encode_clip_data(a, seq, chunk) for seq in range(3))
    want += P.encode_clip_end(a, 3 * 512, 0)
    assert frames == want


def test_a_full_queue_drops_the_oldest_and_counts_it_on_flash(mp):
    got = run(
        mp,
        "box = Outbox(2, 1 << 20, say=said.append)\n"
        "ids = [clip(box) for _ in range(3)]\n"  # count bound
        # a clip of 3 chunks takes 3173 bytes: a reboot with room for one keeps the newest
        "small = Outbox(2, 5000, say=said.append)\n"
        "kept = list(small.ids)\n"
        "big = clip(small, n_chunks=4)\n"  # 4215 bytes: the last one goes to make room
        "again = Outbox(5, 1 << 20)\n"
        "import json; print(json.dumps([ids, box.ids, kept, big, again.ids, again.dropped,"
        " small.bytes, said]))\n",
    )
    ids, after_count, kept, big, final, dropped, nbytes, said = got
    assert after_count == ids[1:]
    assert kept == ids[2:]  # the reboot's smaller bound dropped one more
    assert final == [big] and dropped == 3
    assert nbytes <= 5000
    assert said[0] == f"outbox: full, clip {ids[0]} dropped"


def test_a_reboot_removes_half_written_and_damaged_clips(mp, tmp_path):
    got = run(
        mp,
        "box = Outbox(8, 1 << 20)\n"
        "a = clip(box); b = clip(box)\n"
        "c = box.begin()\n"  # power lost while capturing c
        "box.write(protocol.encode_clip_start(c, 'alexa', 250, 16000, 1000))\n"
        "box._file.close()\n"
        "import json; print(json.dumps([a, b, c, files()]))\n",
    )
    a, b, c, files = got
    assert files == [f"{a}.clip", f"{b}.clip", f"{c}.part", "state.json"]
    damaged = tmp_path / "outbox.d" / f"{b}.clip"
    damaged.write_bytes(damaged.read_bytes()[:-3])  # the clip_end cut short
    got = run(
        mp,
        "box = Outbox(8, 1 << 20, say=said.append)\n"
        "d = clip(box)\n"
        "import json; print(json.dumps([box.ids, box.dropped, d, files(), said]))\n",
    )
    ids, dropped, d, files, said = got
    assert ids == [a, d] and d == c + 1 and dropped == 2
    assert files == [f"{a}.clip", f"{d}.clip", "state.json"]
    assert said == ["outbox: 2 unfinished or damaged clips removed at boot"]
    state = json.loads((tmp_path / "outbox.d" / "state.json").read_text())
    assert state == {"next_clip_id": d + 1, "clips_dropped": 2}


def test_a_damaged_counter_never_reuses_an_id_on_flash(mp, tmp_path):
    a = run(mp, "box = Outbox(8, 1 << 20)\nimport json; print(json.dumps(clip(box)))\n")
    (tmp_path / "outbox.d" / "state.json").write_text('{"next_clip_id": "x"')
    got = run(
        mp,
        "box = Outbox(8, 1 << 20, say=said.append)\n"
        "import json; print(json.dumps([clip(box), said]))\n",
    )
    b, said = got
    assert b > a
    assert said == ["outbox: state.json is damaged; clip ids start afresh"]
