"""The pre-roll ring and the clip recorder (firmware/clip.py) on the unix port: bit-exact
pre-roll and clips reassembled from streamed chunks, the end-of-speech / max-length / mute /
overrun ends, no allocation per frame, and the viper ring copies in checked 32-bit mode."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests import int32check
from tests.conftest import FIRMWARE

RATE = 16000
FRAME = 160  # samples per 10 ms frame


def noise(total_s: float, seed: int = 5, std: float = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, std, int(total_s * RATE))


def add_tone(x: np.ndarray, start_s: float, end_s: float, amp: float = 8000) -> None:
    """A 440 Hz tone from start_s to end_s (frame-aligned times keep the end frames exact)."""
    a, b = round(start_s * RATE), round(end_s * RATE)
    x[a:b] += amp * np.sin(2 * np.pi * 440 * np.arange(b - a) / RATE)


def add_syllables(x: np.ndarray, start_s: float, end_s: float) -> None:
    """Speech-like activity: 200 ms of tone, 100 ms pause, repeated."""
    t = start_s
    while t < end_s:
        add_tone(x, t, min(t + 0.2, end_s))
        t += 0.3


def pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


DRIVER = """\
import json
from clip import ClipRecorder

cfg = json.load(open('cfg.json'))
fin = open('in.raw', 'rb')
frame = bytearray(320)
rec = ClipRecorder(**cfg['kw'])
before = {}
after = {}
for f, a in cfg['events']:
    if a in ('start', 'flush', 'record', 'cancel'):
        after[f] = a
    else:
        before[f] = a
nodrain = cfg['nodrain']
chunks = cfg['chunks']
buf = bytearray(2 * max(chunks))
mv = memoryview(buf)
out = open('out.raw', 'wb')
clips = []
refused = []
state = {'ci': 0, 'cur': None}


def note(f):
    cur = state['cur']
    if cur is not None and 'end' not in cur and not rec.capturing:
        cur['end'] = f
        cur['reason'] = rec.reason
        cur['length'] = rec.length


def drain(f, times):
    cur = state['cur']
    for _ in range(times):
        size = chunks[state['ci'] % len(chunks)]
        state['ci'] += 1
        live = rec.capturing
        got = rec.next_chunk(mv[:2 * size])
        if got:
            out.write(mv[:got])
            cur['bytes'] += got
            if live:
                cur['live'] += got


nframes = cfg['frames']
for f in range(nframes):
    a = before.get(f)
    if a == 'mute':
        rec.set_muted(True)
    elif a == 'unmute':
        rec.set_muted(False)
    note(f)
    fin.readinto(frame)
    rec.feed(frame)
    note(f)
    if after.get(f) == 'flush':
        while rec.ready():
            drain(f, 1)
    if after.get(f) == 'start':
        if rec.start():
            state['cur'] = {'f': f, 'pre': rec.pre_samples, 'bytes': 0, 'live': 0}
            clips.append(state['cur'])
        else:
            refused.append(f)
    if after.get(f) == 'record':
        if rec.start_recording(cfg['record_samples']):
            state['cur'] = {'f': f, 'pre': 0, 'bytes': 0, 'live': 0}
            clips.append(state['cur'])
        else:
            refused.append(f)
    if after.get(f) == 'cancel':
        rec.stop('cancelled')
    if not any(p <= f < q for p, q in nodrain):
        drain(f, cfg['drains'])
    note(f)
rec.set_muted(True)  # the end of the input ends a clip still capturing
note(nframes)
while rec.pending:
    drain(nframes, 1)
out.close()
print(json.dumps({'clips': clips, 'refused': refused, 'dropped': rec.dropped,
                  'ends': rec.ends, 'count': rec.clips, 'pending': rec.pending}))
"""


def run_clips(
    mp,
    tmp_path,
    samples: np.ndarray,
    events: list[tuple[int, str]],  # (frame, 'start' | 'flush' | 'mute' | 'unmute' | ...)
    kw: dict | None = None,
    chunks: list[int] | None = None,
    drains: int = 2,
    nodrain: tuple[tuple[int, int], ...] = (),
    record_samples: int = 0,
):
    """Feed `samples` frame by frame, draining `drains` chunks of the `chunks` sizes after each
    frame (none in the `nodrain` frame ranges); 'flush' drains all that is ready, 'record'
    starts a recording of record_samples, 'cancel' stops it. Returns the
    run's summary and each clip as reassembled from its streamed chunks."""
    (tmp_path / "in.raw").write_bytes(samples.astype("<i2").tobytes())
    if chunks is None:
        chunks = [int(c) for c in np.random.default_rng(1).integers(1, 400, 257)]
    cfg = {"kw": kw or {}, "events": events, "chunks": chunks, "drains": drains}
    cfg["record_samples"] = record_samples
    cfg["frames"] = len(samples) // FRAME
    cfg["nodrain"] = [list(r) for r in nodrain]
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    summary = json.loads(mp.output(DRIVER).strip().splitlines()[-1])
    stream = np.frombuffer((tmp_path / "out.raw").read_bytes(), "<i2")
    out, at = [], 0
    for c in summary["clips"]:
        out.append(stream[at : at + c["bytes"] // 2])
        at += c["bytes"] // 2
    assert at == len(stream)
    return summary, out


def clip_start(c: dict) -> int:
    """Absolute sample where a clip begins: pre-roll before the end of the detection frame."""
    return (c["f"] + 1) * FRAME - c["pre"]


def assert_exact(samples: np.ndarray, c: dict, got: np.ndarray) -> None:
    s = clip_start(c)
    assert len(got) == c["length"]
    np.testing.assert_array_equal(got, samples[s : s + c["length"]])


# --- the pre-roll ring ---------------------------------------------------------------------


def test_preroll_holds_the_last_ms_exactly_across_wrap_around(mp, tmp_path):
    # 333 ms = 5328 samples: not a whole number of pushes, so the ring wraps mid-push
    rng = np.random.default_rng(3)
    sizes = [int(n) for n in rng.integers(1, 400, 120)]
    samples = rng.integers(-32768, 32768, sum(sizes)).astype("<i2")
    samples[:4] = [-32768, 32767, -1, 0]
    checkpoints = [1, 5, 30, 31, 60, 119]
    reads = [int(n) for n in rng.integers(1, 700, 64)]
    (tmp_path / "in.raw").write_bytes(samples.tobytes())
    code = (
        "import json\n"
        "from clip import PreRoll\n"
        "data = open('in.raw', 'rb').read()\n"
        f"sizes = {sizes}\n"
        f"checkpoints = {checkpoints}\n"
        f"reads = {reads}\n"
        "pr = PreRoll(333)\n"
        "buf = bytearray(2 * max(reads))\n"
        "mv = memoryview(buf)\n"
        "out = open('out.raw', 'wb')\n"
        "held = []\n"
        "at = 0\n"
        "ri = 0\n"
        "for i, n in enumerate(sizes):\n"
        "    pr.push(data[2 * at:2 * (at + n)])\n"
        "    at += n\n"
        "    if i in checkpoints:\n"
        "        off = 0\n"
        "        while True:\n"
        "            got = pr.read_into(mv[:2 * reads[ri % len(reads)]], off)\n"
        "            ri += 1\n"
        "            if got == 0:\n"
        "                break\n"
        "            out.write(mv[:2 * got])\n"
        "            off += got\n"
        "        held.append(off)\n"
        "        assert pr.read_into(buf, off + 5) == 0\n"
        "out.close()\n"
        "print(json.dumps([pr.capacity, held]))\n"
    )
    capacity, held = json.loads(mp.output(code))
    assert capacity == 5328
    stream = np.frombuffer((tmp_path / "out.raw").read_bytes(), "<i2")
    ends = np.cumsum(sizes)
    at = 0
    for i, n in zip(checkpoints, held, strict=True):
        end = int(ends[i])
        assert n == min(end, capacity)
        np.testing.assert_array_equal(stream[at : at + n], samples[end - n : end])
        at += n
    assert at == len(stream)


def test_preroll_reads_from_an_offset(mp):
    out = mp.output(
        "from clip import PreRoll\n"
        "import struct\n"
        "pr = PreRoll(1, 5000)\n"  # 5 samples
        "pr.push(struct.pack('<3h', 1, 2, 3))\n"
        "pr.push(struct.pack('<4h', 4, 5, 6, -7))\n"
        "buf = bytearray(4)\n"
        "print(pr.read_into(buf, 1), struct.unpack('<2h', buf))\n"
        "print(pr.read_into(buf, 4), struct.unpack('<h', buf[:2]))\n"
        "print(pr.read_into(buf, 5), pr.read_into(buf, -1))\n"
    )
    assert out.split("\n")[:3] == ["2 (4, 5)", "1 (-7,)", "0 0"]


# --- clips: content and streaming ----------------------------------------------------------


def test_clips_are_the_preroll_plus_what_follows_bit_exact_from_random_chunks(mp, tmp_path):
    rng = np.random.default_rng(11)
    samples = rng.integers(-32768, 32768, 14 * RATE).astype(np.int16)
    samples[1000:1004] = [-32768, 32767, -1, 0]
    # min_ms past max_ms: only the max length ends these clips; 2995 ms is not a whole
    # number of frames, so the end falls inside a frame
    kw = {"pre_roll_ms": 1000, "max_ms": 2995, "min_ms": 60000}
    events = [(5, "start"), (200, "start"), (400, "start"), (650, "start"), (1100, "start")]
    summary, got = run_clips(mp, tmp_path, samples, events, kw)
    clips = summary["clips"]
    assert [c["f"] for c in clips] == [5, 400, 650, 1100]
    assert summary["refused"] == [200]  # the first clip was still capturing
    assert summary["count"] == 4 and summary["dropped"] == 0 and not summary["pending"]
    previous_end = 0
    for c, audio in zip(clips, got, strict=True):
        assert c["reason"] == "max_length"
        assert c["length"] == 2995 * RATE // 1000
        # the pre-roll is the last second, but never audio of the clip before
        assert c["pre"] == min(RATE, (c["f"] + 1) * FRAME - previous_end)
        assert_exact(samples, c, audio)
        previous_end = clip_start(c) + c["length"]
        # streamed while capturing: all but what the last frames added
        assert c["live"] >= 2 * (c["length"] - 4 * FRAME)
    assert clips[0]["pre"] == 6 * FRAME  # only 60 ms had been heard
    assert clips[1]["pre"] == RATE
    assert 0 < clips[2]["pre"] < RATE


def test_a_slow_transport_ends_the_clip_with_overrun_and_loses_nothing_inside_it(mp, tmp_path):
    rng = np.random.default_rng(12)
    samples = rng.integers(-32768, 32768, 5 * RATE).astype(np.int16)
    kw = {"pre_roll_ms": 1000, "backlog_ms": 500, "min_ms": 60000}
    # no draining for 1.5 s after the detection at frame 150: the ring (1.5 s) fills
    events = [(150, "start"), (299, "flush"), (350, "start")]
    summary, got = run_clips(mp, tmp_path, samples, events, kw, nodrain=((150, 300),))
    first, second = summary["clips"]
    assert first["reason"] == "overrun"
    # the ring held pre-roll + backlog: 1.5 s, then the next frame would overwrite
    assert first["length"] == RATE + RATE // 2
    assert_exact(samples, first, got[0])
    # frames 201..299 could not be stored; the next clip's pre-roll starts after them
    assert summary["dropped"] == 99
    assert second["pre"] == (350 - 299) * FRAME
    assert_exact(samples, second, got[1])


# --- how clips end -------------------------------------------------------------------------


def test_end_of_speech_after_the_hangover(mp, tmp_path):
    x = noise(6.0)
    add_tone(x, 1.0, 1.6)  # the wake word, detected at 1.56 s
    add_tone(x, 2.4, 2.9)  # the command, after an 0.8 s pause (kept: within min_ms)
    add_tone(x, 3.5, 3.8)  # a 0.6 s pause inside it (kept: under the hangover)
    samples = pcm(x)
    summary, got = run_clips(mp, tmp_path, samples, [(155, "start")])
    (c,) = summary["clips"]
    assert c["reason"] == "end_of_speech"
    assert c["pre"] == RATE
    # the last speech frame ends at 3.8 s; the clip ends 800 ms later
    assert clip_start(c) + c["length"] == round((3.8 + 0.8) * RATE)
    assert_exact(samples, c, got[0])


def test_without_a_command_the_clip_ends_min_ms_after_the_detection(mp, tmp_path):
    x = noise(5.0)
    add_tone(x, 1.0, 1.6)
    samples = pcm(x)
    summary, got = run_clips(mp, tmp_path, samples, [(155, "start")])
    (c,) = summary["clips"]
    assert c["reason"] == "end_of_speech"
    assert clip_start(c) + c["length"] == 156 * FRAME + round(1.5 * RATE)
    assert_exact(samples, c, got[0])


def test_hangover_and_wait_are_configurable(mp, tmp_path):
    x = noise(5.0)
    add_tone(x, 1.0, 1.6)
    add_tone(x, 1.9, 2.2)
    samples = pcm(x)
    kw = {"hangover_ms": 200, "min_ms": 100}
    summary, got = run_clips(mp, tmp_path, samples, [(155, "start")], kw)
    (c,) = summary["clips"]
    # 1.6 s + 200 ms of quiet ends it before the second burst
    assert clip_start(c) + c["length"] == round(1.8 * RATE)


def test_max_length_caps_continuous_speech(mp, tmp_path):
    x = noise(12.0)
    add_syllables(x, 0.5, 11.5)
    samples = pcm(x)
    summary, got = run_clips(mp, tmp_path, samples, [(200, "start")])
    (c,) = summary["clips"]
    assert c["reason"] == "max_length"
    assert c["length"] == 8 * RATE  # the default, pre-roll included
    assert c["end"] == 200 + 7 * 100
    assert_exact(samples, c, got[0])
    assert summary["ends"] == {
        "max_length": 1,
        "end_of_speech": 0,
        "muted": 0,
        "overrun": 0,
        "cancelled": 0,
    }


def test_mute_ends_the_clip_and_nothing_heard_while_muted_is_kept(mp, tmp_path):
    x = noise(6.0)
    add_syllables(x, 0.5, 5.5)
    samples = pcm(x)
    events = [(100, "start"), (200, "mute"), (250, "start"), (300, "unmute"), (350, "start")]
    summary, got = run_clips(mp, tmp_path, samples, events)
    first, second = summary["clips"]
    assert summary["refused"] == [250]
    assert first["reason"] == "muted"
    assert first["length"] == RATE + 99 * FRAME  # frames 101..199
    assert_exact(samples, first, got[0])
    assert summary["dropped"] == 100  # frames 200..299, never stored
    assert second["pre"] == 51 * FRAME  # only frames 300..350: nothing from before the mute
    assert_exact(samples, second, got[1])


def test_bad_configuration_is_refused(mp):
    out = mp.output(
        "from clip import ClipRecorder, ClipError, PreRoll\n"
        "for kw in ({'pre_roll_ms': 2000, 'max_ms': 1000}, {'backlog_ms': 0}):\n"
        "    try:\n"
        "        ClipRecorder(**kw)\n"
        "    except ClipError as e:\n"
        "        print('refused', isinstance(e, ValueError))\n"
        "try:\n"
        "    PreRoll(1).push(bytearray(64))\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    assert out.split("\n")[:3] == [
        "refused True",
        "refused True",
        "frame of 32 samples is larger than the ring",
    ]


# --- no allocation per frame ---------------------------------------------------------------


def test_feeding_starting_and_streaming_allocate_nothing(mp):
    """Every path under heap_lock inside a function: capture, streaming, each way to end."""
    out = mp.output(
        "import json, math, micropython\n"
        "from clip import ClipRecorder\n"
        "\n"
        "def frames():\n"
        "    tone = bytearray(320)\n"
        "    quiet = bytearray(320)\n"
        "    for i in range(160):\n"
        "        v = int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) & 0xFFFF\n"
        "        tone[2 * i] = v & 0xFF\n"
        "        tone[2 * i + 1] = v >> 8\n"
        "        q = ((i * 7919) % 41 - 20) & 0xFFFF\n"
        "        quiet[2 * i] = q & 0xFF\n"
        "        quiet[2 * i + 1] = q >> 8\n"
        "    return tone, quiet\n"
        "\n"
        "def run():\n"
        "    tone, quiet = frames()\n"
        "    rec = ClipRecorder()\n"
        "    buf = bytearray(600)\n"
        "    sent = [0]\n"
        "    micropython.heap_lock()\n"
        "    try:\n"
        "        for f in range(3000):\n"
        "            if f == 2000:\n"
        "                rec.set_muted(True)\n"
        "            elif f == 2100:\n"
        "                rec.set_muted(False)\n"
        "            speaking = (f // 10) % 3 and not 1500 <= f < 1800\n"
        "            rec.feed(tone if speaking else quiet)\n"
        "            if f % 300 == 150:\n"
        "                rec.start()\n"
        "            if not 500 <= f < 700:\n"
        "                while rec.next_chunk(buf):\n"
        "                    sent[0] += 1\n"
        "    finally:\n"
        "        micropython.heap_unlock()\n"
        "    return rec, sent[0]\n"
        "\n"
        "rec, chunks = run()\n"
        "print(json.dumps([rec.clips, rec.ends, rec.dropped, chunks]))\n"
    )
    clips, ends, dropped, chunks = json.loads(out)
    assert clips >= 4 and dropped > 100 and chunks > 1000
    assert ends == {"max_length": 2, "end_of_speech": 1, "muted": 1, "overrun": 1, "cancelled": 0}


# --- checked 32-bit mode -------------------------------------------------------------------


@pytest.fixture(scope="module")
def checked():
    had_pcm = "pcm" in sys.modules
    mod = int32check.load(FIRMWARE / "clip.py")
    if not had_pcm:
        sys.modules.pop("pcm", None)
    return mod


def test_ring_copies_checked(checked):
    rng = np.random.default_rng(21)
    cap = 70001  # odd, large: indices well past 16 bits
    ring = bytearray(2 * cap)
    src = np.concatenate([[-32768, 32767, -1, 0], rng.integers(-32768, 32768, 996)])
    src = src.astype("<i2")
    head = checked._ring_put(ring, src.tobytes(), cap - 300, len(src))
    assert head == 700
    r = np.frombuffer(bytes(ring), "<i2")
    np.testing.assert_array_equal(np.concatenate([r[cap - 300 :], r[:700]]), src)
    dst = bytearray(2 * len(src))
    checked._ring_get(dst, ring, cap - 300, len(src))
    np.testing.assert_array_equal(np.frombuffer(bytes(dst), "<i2"), src)


def test_recorder_runs_checked_with_wrap_around(checked):
    """The whole recorder under CPython with the checked kernels (levels given, so the
    device-only mean_abs is not needed): clips still bit-exact."""
    rng = np.random.default_rng(22)
    samples = rng.integers(-32768, 32768, 45 * RATE).astype("<i2")
    rec = checked.ClipRecorder(pre_roll_ms=1000, max_ms=2995, min_ms=60000)
    buf = bytearray(2 * 333)
    got, starts = [], []
    for f in range(len(samples) // FRAME):
        rec.feed(samples[f * FRAME : (f + 1) * FRAME].tobytes(), 10000)
        if f % 500 == 250 and rec.start():
            starts.append((f + 1) * FRAME - rec.pre_samples)
            got.append(bytearray())
        n = rec.next_chunk(buf)
        if n:
            got[-1] += buf[:n]
    assert len(starts) == 9
    for s, audio in zip(starts, got, strict=True):
        np.testing.assert_array_equal(np.frombuffer(bytes(audio), "<i2"), samples[s : s + 47920])


def test_a_recording_has_no_pre_roll_and_ends_at_its_length_not_at_silence(mp, tmp_path):
    """The owner's record request (link.py): from the next frame on, exactly its length,
    through speech and the silence after it; a detection meanwhile starts no clip."""
    x = noise(6.0)
    add_syllables(x, 0.5, 1.0)
    samples = pcm(x)
    summary, got = run_clips(
        mp, tmp_path, samples, [(40, "record"), (60, "start")], record_samples=3 * RATE
    )
    (c,) = summary["clips"]
    assert (c["reason"], c["pre"], c["length"]) == ("max_length", 0, 3 * RATE)
    assert c["end"] == 40 + 300
    assert_exact(samples, c, got[0])
    assert summary["refused"] == [60]


def test_a_cancelled_recording_ends_with_what_was_captured(mp, tmp_path):
    samples = pcm(noise(3.0))
    summary, got = run_clips(
        mp, tmp_path, samples, [(10, "record"), (110, "cancel")], record_samples=2 * RATE
    )
    (c,) = summary["clips"]
    assert (c["reason"], c["length"]) == ("cancelled", 100 * FRAME)
    assert_exact(samples, c, got[0])
    assert summary["ends"]["cancelled"] == 1
