"""The owner's requests on the link (firmware/link.py, request.py) on the unix port, against
a receiver stand-in on loopback that asks once the hello has come: a monitor request sends
each model's outputs in batches, allocating nothing per audio frame or per output, only
within its window, and ends by itself; a detection flushes its model's batch first; a mute
ends it; a record request gives a recording clip of exactly its length, acknowledged like
any clip; link.requests decides who is honoured, and a refusal says why."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.firmware.test_link import FEED, Stand_in, prelude
from tests.host.test_protocol import P

# The link with two models; `invocations` feeds 30 ms of audio per model invocation and
# hands the link each model's output (m: counting up from p0, n: counting down).
SETUP = (
    prelude(blocking=False)
    + """import time
box = Outbox(8, 1 << 20, say=said.append)
link = Link(connect, box, clock, 'dev', ['m', 'n'], status_interval_ms=100000,
            requests=REQUESTS, owner_link=OWNER, say=said.append)
"""
    + FEED
    + """
def invocations(count, p0):
    for i in range(count):
        frames(3, quiet, 0)
        link.output('m', (p0 + i) & 255)
        link.output('n', 255 - ((p0 + i) & 255))
def until_asked():
    for _ in range(3000):
        if link.asked():
            return now[0]
        frames(1, quiet, 0)
        time.sleep_ms(1)
    raise OSError('no request came')
def until_said(text, pcm=quiet, level=0):
    for _ in range(3000):
        if [x for x in said if text in x]:
            return
        frames(1, pcm, level)
        time.sleep_ms(1)
    raise OSError('never said %s: %r' % (text, said))
"""
)

END = """
frames(20, quiet, 0)
link.close()
import json
print(json.dumps(RESULT))
"""


class Asker(Stand_in):
    """A receiver stand-in: sends `requests` (frames) once the device's message of type
    `after` has come, acks each clip_end, and keeps the device's messages in order."""

    def __init__(self, requests: list[bytes], after: str = "hello") -> None:
        self.requests = requests
        self.after = after
        super().__init__()

    def reply(self, msg: dict) -> bytes:
        if msg["type"] == self.after:
            return b"".join(self.requests)
        return super().reply(msg)


def run(
    mp, tmp_path, code: str, requests: list[bytes], *, policy="any", owner=False, after="hello"
):
    rng = np.random.default_rng(7)
    (tmp_path / "loud.raw").write_bytes(rng.integers(-12000, 12000, 160).astype("<i2").tobytes())
    asker = Asker(requests, after)
    source = SETUP.replace("PORT", str(asker.port)).replace("REQUESTS", repr(policy))
    out = mp.output(source.replace("OWNER", repr(owner)) + code)
    return json.loads(out.strip().splitlines()[-1]), asker.messages()


MONITOR = """
asked_at = until_asked()
micropython.heap_lock()
invocations(40, 0)  # 1.2 s: four batches of each model go out, nothing allocated
micropython.heap_unlock()
link.detected('m', 200)  # m's batch so far goes first
invocations(60, 40)  # the window (2 s) ends in here, at asked_at + 2000
lit_after = link.asked()
link._send_status()
""" + END.replace("RESULT", "[asked_at, lit_after, said]")


def outputs_of(msgs: list[dict], model: str) -> list[tuple[int, int]]:
    """(device time in ms, value) of every output of `model` that arrived."""
    out = []
    for m in msgs:
        if m["type"] == "outputs" and m["model"] == model:
            out += [(m["time_ms"] + 30 * i, v) for i, v in enumerate(m["values"])]
    return out


def test_a_monitor_request_sends_batched_outputs_only_within_its_window(mp, tmp_path):
    (asked_at, lit_after, said), msgs = run(
        mp, tmp_path, MONITOR, [P.encode_request(P.MONITOR, 2, 77)]
    )
    types = [m["type"] for m in msgs]
    assert types[:2] == ["hello", "status"] and "error" not in types
    assert said[1] == "link: request 77: monitor for 2 s"
    # every invocation from the request on, each 30 ms after the one before, none after
    # the window: the first came 30 ms after the request, the last before asked_at + 2000
    m = outputs_of(msgs, "m")
    n = outputs_of(msgs, "n")
    times = [t for t, _ in m]
    assert times == list(range(asked_at + 30, asked_at + 2000, 30))
    assert [v for _, v in m] == list(range(len(m)))
    assert [t for t, _ in n] == times and [v for _, v in n] == [255 - v for _, v in m]
    batches = [x for x in msgs if x["type"] == "outputs" and x["model"] == "m"]
    assert [len(b["values"]) for b in batches[:4]] == [10, 10, 10, 10]
    # the detection follows the batch whose last value detected (40 values: 4 full batches,
    # so that batch is empty and nothing is flushed), then batches of 10 again
    at = types.index("detection")
    assert msgs[at]["model"] == "m" and msgs[at - 1]["type"] == "outputs"
    assert msgs[at]["time_ms"] == times[39]
    end = types.index("request_end")
    assert msgs[end] == {"type": "request_end", "request_id": 77, "reason": P.REQ_DONE}
    assert "outputs" not in types[end:] and not lit_after
    assert [x["monitor_s"] for x in msgs if x["type"] == "status"][-2:] == [2, 2]


DETECT_MID_BATCH = """
until_asked()
invocations(13, 0)
link.detected('m', 250)
invocations(2, 13)
link.set_muted(True)
frames(5, quiet, 0)
invocations(3, 15)  # muted: listen.py would not invoke; nothing goes out either way
lit_after = link.asked()
""" + END.replace("RESULT", "[lit_after, said]")


def test_a_detection_flushes_its_batch_and_a_mute_ends_the_window(mp, tmp_path):
    (lit_after, said), msgs = run(
        mp, tmp_path, DETECT_MID_BATCH, [P.encode_request(P.MONITOR, 600, 5)]
    )
    asked = [m for m in msgs if m["type"] in ("outputs", "detection", "request_end")]
    kinds = [(m["type"], m.get("model"), len(m.get("values", b""))) for m in asked]
    assert kinds == [
        ("outputs", "m", 10),
        ("outputs", "n", 10),
        ("outputs", "m", 3),  # up to the detecting value
        ("detection", "m", 0),
        ("outputs", "m", 2),  # the mute flushes what is batched
        ("outputs", "n", 5),
        ("request_end", None, 0),
    ]
    assert outputs_of(msgs, "m")[12][0] == asked[3]["time_ms"]
    assert asked[-1] == {"type": "request_end", "request_id": 5, "reason": P.REQ_MUTED}
    assert not lit_after
    # the detection's clip goes on as ever (the mute ends it)
    (end,) = [m for m in msgs if m["type"] == "clip_end"]
    assert P.REASONS[end["reason"]] == "muted"


def test_a_renewal_replaces_the_window_and_seconds_0_cancels_it(mp, tmp_path):
    code = """
until_said('request 2: monitor')
invocations(20, 0)
""" + END.replace("RESULT", "said")
    requests = [
        P.encode_request(P.MONITOR, 600, 1),
        P.encode_request(P.MONITOR, 600, 2),
        P.encode_request(P.MONITOR, 0, 2),
    ]
    _, msgs = run(mp, tmp_path, code, requests)
    ends = [m for m in msgs if m["type"] == "request_end"]
    assert [(e["request_id"], P.REQUEST_ENDS[e["reason"]]) for e in ends] == [
        (1, "replaced"),
        (2, "cancelled"),
    ]
    assert "outputs" not in [m["type"] for m in msgs]  # cancelled before an invocation


RECORD = """
until_said('request 9: record')
lit = link.asked()
frames(150, loud, 9000)  # 1.5 s: the recording is 1 s, from the next frame on
frames(100, quiet, 0)
""" + END.replace("RESULT", "[lit, link.asked(), box.ids, link.recordings, said]")


def test_a_record_request_gives_a_recording_clip_of_its_length(mp, tmp_path):
    (lit, lit_after, queued, recordings, said), msgs = run(
        mp, tmp_path, RECORD, [P.encode_request(P.RECORD, 1, 9)]
    )
    (start,) = [m for m in msgs if m["type"] == "clip_start"]
    assert (start["kind"], start["request_id"], start["model"], start["score"]) == (
        P.CLIP_RECORDING, 9, "", 0
    )  # fmt: skip
    assert start["pre_roll_ms"] == 0
    (end,) = [m for m in msgs if m["type"] == "clip_end"]
    pcm = b"".join(m["pcm"] for m in msgs if m["type"] == "clip_data")
    assert end["samples"] == 16000 and len(pcm) == 32000
    assert P.REASONS[end["reason"]] == "max_length"
    loud = (tmp_path / "loud.raw").read_bytes()
    assert pcm == loud * 100  # all of it after the request: none of the quiet before
    ends = [m for m in msgs if m["type"] == "request_end"]
    assert ends == [{"type": "request_end", "request_id": 9, "reason": P.REQ_DONE}]
    assert lit and not lit_after and queued == [] and recordings == 1  # acknowledged
    assert msgs[-1]["type"] == "status" and msgs[-1]["recordings"] == 1


@pytest.mark.parametrize(
    ("policy", "owner", "asked", "reason", "why"),
    [
        ("paired", False, (P.MONITOR, 10), "refused", "this link is plain TCP, not the paired"),
        ("none", True, (P.MONITOR, 10), "refused", "requests are off on this device"),
        ("paired", True, (P.MONITOR, 601), "refused", "monitor for at most 600 s per request"),
        ("any", False, (P.RECORD, 11), "refused", "record at most 10 s per request (asked 11"),
    ],
)
def test_a_refused_request_says_why(mp, tmp_path, policy, owner, asked, reason, why):
    code = """
until_said('refused')
invocations(20, 0)
""" + END.replace("RESULT", "[link.asked(), said]")
    (lit, said), msgs = run(
        mp, tmp_path, code, [P.encode_request(*asked, 3)], policy=policy, owner=owner
    )
    types = [m["type"] for m in msgs]
    (error,) = [m for m in msgs if m["type"] == "error"]
    assert error["code"] == P.ERR_REFUSED and error["message"].startswith("request 3 refused: ")
    assert why in error["message"]
    end = msgs[types.index("error") + 1]
    assert end == {"type": "request_end", "request_id": 3, "reason": P.REQUEST_ENDS.index(reason)}
    assert "outputs" not in types and "clip_start" not in types and not lit
    assert f"link: {error['message']}" in said


def test_a_record_request_while_a_clip_is_captured_is_busy(mp, tmp_path):
    code = """
frames(5, quiet, 0)
link.detected('m', 200)
until_said('refused', loud, 9000)  # the clip goes on: 8 s at most
""" + END.replace("RESULT", "said")
    _, msgs = run(mp, tmp_path, code, [P.encode_request(P.RECORD, 2, 4)], after="clip_start")
    (end,) = [m for m in msgs if m["type"] == "request_end"]
    assert P.REQUEST_ENDS[end["reason"]] == "busy"
    assert [m["kind"] for m in msgs if m["type"] == "clip_start"] == [P.CLIP_DETECTION]
