"""The wire protocol (firmware/protocol.py) on CPython, loaded by path as the receiver does.

Round trips of every message, the frame layout against docs/protocol.md, field validation,
and resynchronisation: random streams mixing valid frames with text logs, garbage, damaged
and truncated frames lose no valid frame and keep their order.
"""

from __future__ import annotations

import random
import struct
import sys
import zlib
from types import ModuleType

import pytest
from wakeward import receiver


def load_protocol() -> ModuleType:
    """protocol.py with protocol_play.py's messages, once, as the receiver loads them."""
    name = "wakeward_wire_protocol"
    if name not in sys.modules:
        sys.modules[name] = receiver.load_protocol()
    return sys.modules[name]


P = load_protocol()
V = P.VERSION

# One of every message, with values at the edges of their fields.
SAMPLES: list[dict] = [
    {
        "type": "hello",
        "device_id": "esp32s3-7c:df:a1:00:11:22",
        "firmware": "0.3.0+g7e6a8bd",
        "protocol": P.VERSION,
        "models": ["alexa", "hey_jarvis", "okay_nabu"],
        "auth": bytes(range(32)),
    },
    {
        "type": "hello",
        "device_id": "",
        "firmware": "ü€😀",
        "protocol": P.VERSION,
        "models": [],
        "auth": b"",
    },
    {"type": "detection", "model": "alexa", "score": 255, "time_ms": 0xFFFFFFFF},
    {"type": "detection", "model": "okay_nabu", "score": 0, "time_ms": 0},
    {
        "type": "clip_start",
        "clip_id": 0x3FFFFFFF,
        "model": "alexa",
        "score": 231,
        "rate_hz": 16000,
        "pre_roll_ms": 1500,
        "kind": 0,
        "request_id": 0,
    },
    {"type": "clip_data", "clip_id": 7, "seq": 0, "pcm": bytes(range(256)) * 2},
    {"type": "clip_data", "clip_id": 7, "seq": 0xFFFFFFFF, "pcm": b""},
    {"type": "clip_data", "clip_id": 8, "seq": 3, "pcm": b"\xf5\xc1" * 2044},
    {"type": "clip_end", "clip_id": 7, "samples": 48000, "reason": 0},
    {"type": "clip_end", "clip_id": 8, "samples": 0, "reason": 1},
    {"type": "clip_end", "clip_id": 9, "samples": 1, "reason": 2},
    {
        "type": "status",
        "uptime_ms": 123456,
        "clips_sent": 42,
        "clips_acked": 40,
        "clips_dropped": 1,
        "queued": 2,
        "muted": 1,
        "audio_bytes": 0xFFFFFFFF,
        "free_heap": 61234,
        "monitor_s": 0xFFFFFFFF,
        "recordings": 3,
        "listened_s": 0xFFFFFFFF,
        "listened_rem_ms": 999,
    },
    {"type": "ack", "clip_id": 0},
    {"type": "ack", "clip_id": 0xFFFFFFFF},
    {"type": "error", "code": 4, "message": "clip queue full: dropped clip 12"},
    {
        "type": "clip_start",
        "clip_id": 12,
        "model": "",
        "score": 0,
        "rate_hz": 16000,
        "pre_roll_ms": 0,
        "kind": 1,
        "request_id": 0xFFFFFFFF,
    },
    {"type": "clip_end", "clip_id": 12, "samples": 160000, "reason": 4},
    {"type": "request", "what": 1, "seconds": 600, "request_id": 0},
    {"type": "request", "what": 2, "seconds": 0xFFFF, "request_id": 0xFFFFFFFF},
    {"type": "outputs", "model": "alexa", "time_ms": 0x3FFFFFFF, "values": bytes(range(10))},
    {"type": "outputs", "model": "okay_nabu", "time_ms": 0, "values": b"\xff" * 255},
    {"type": "outputs", "model": "", "time_ms": 30, "values": b""},
    {"type": "request_end", "request_id": 7, "reason": 0},
    {"type": "request_end", "request_id": 0xFFFFFFFF, "reason": 5},
    {"type": "error", "code": 6, "message": "request 7 refused: the speaker is muted"},
]


def typed(msg: dict) -> bytes:
    """The same message through its typed helper."""
    m = dict(msg)
    kind = m.pop("type")
    if kind == "hello":
        assert m.pop("protocol") == P.VERSION
        return P.encode_hello(m["device_id"], m["firmware"], m["models"], m["auth"])
    if kind == "status":
        m["muted"] = bool(m["muted"])
    helper = getattr(P, f"encode_{kind}")
    return helper(**m)


def raw_frame(version: int, msg_type: int, payload: bytes, length: int | None = None) -> bytes:
    """A frame built from the documented layout, independently of the module."""
    n = len(payload) if length is None else length
    head = b"\xf5\xc1" + struct.pack("<BBH", version, msg_type, n) + payload
    return head + struct.pack("<I", zlib.crc32(head))


def decode_all(chunks, *, finish: bool = True) -> list[tuple]:
    dec = P.Decoder()
    items = []
    for chunk in chunks:
        dec.feed(chunk)
        items.extend(dec)
    if finish:
        dec.finish()
        items.extend(dec)
    return items


def messages(items) -> list[dict]:
    return [value for kind, value in items if kind == "msg"]


# --- layout and round trips ------------------------------------------------------------


def test_frame_layout_matches_the_documented_schema():
    frame = P.encode_ack(0x01020304)
    assert frame == raw_frame(V, 7, b"\x04\x03\x02\x01")
    head = f"f5c1{P.VERSION:02x}07040004030201"
    assert frame.hex() == head + struct.pack("<I", zlib.crc32(frame[:-4])).hex()
    assert P.HEADER_SIZE == 6 and P.CRC_SIZE == 4 and P.MAX_PAYLOAD == 4096
    assert P.SYNC == b"\xf5\xc1"


def test_control_payloads_are_little_endian_with_length_prefixed_strings():
    frame = P.encode_detection("alexa", 200, 0x11223344)
    assert frame[6:-4] == b"\x05\x00alexa" + b"\xc8" + b"\x44\x33\x22\x11"
    frame = P.encode_hello("d", "1", ["a", "bc"])
    version = bytes([P.VERSION])
    models = b"\x02" + b"\x01\x00a\x02\x00bc"
    assert frame[6:-4] == b"\x01\x00d" + b"\x01\x001" + version + models + b"\x00"
    frame = P.encode_hello("d", "1", [], b"\xf5\xc1\x00")  # auth: u8 length, raw bytes
    assert frame[6:-4] == b"\x01\x00d" + b"\x01\x001" + version + b"\x00" + b"\x03\xf5\xc1\x00"


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m["type"])
def test_every_message_round_trips(msg):
    frame = P.encode_message(msg)
    assert P.decode(frame) == msg
    assert typed(msg) == frame
    assert messages(decode_all([frame])) == [msg]
    t = P._TYPES[msg["type"]]
    assert P.encode(t, P.encode_payload(t, msg)) == frame


def test_clip_data_encoder_matches_encode_clip_data():
    enc = P.ClipDataEncoder(640)
    rng = random.Random(1)
    for seq, n in enumerate([640, 640, 2, 0, 638, 640]):
        pcm = rng.randbytes(n)
        assert enc.put(pcm) == n
        frame = enc.frame(11, seq, n)
        assert bytes(frame) == P.encode_clip_data(11, seq, pcm)
    enc.pcm[0:4] = b"\x01\x02\x03\x04"
    assert P.decode(bytes(enc.frame(1, 2, 4)))["pcm"] == b"\x01\x02\x03\x04"


def test_the_request_messages_are_laid_out_as_documented():
    assert P.encode_request(P.RECORD, 10, 0x01020304)[6:-4] == b"\x02\x0a\x00\x04\x03\x02\x01"
    assert P.encode_request_end(9, P.REQ_BUSY)[6:-4] == b"\x09\x00\x00\x00\x02"
    assert P.encode_outputs("m", 30, b"\x01\x02")[6:-4] == b"\x01\x00m\x1e\x00\x00\x00\x02\x01\x02"
    start = P.encode_clip_start(5, "", 0, 16000, 0, P.CLIP_RECORDING, 8)[6:-4]
    assert start[-5:] == b"\x01\x08\x00\x00\x00"  # kind, then request_id
    assert (P.REQUEST, P.OUTPUTS, P.REQUEST_END) == (9, 10, 11)


def test_the_play_messages_are_laid_out_as_documented():
    assert (P.PLAY_START, P.PLAY_DATA, P.PLAY_END, P.PLAYED) == (12, 13, 14, 15)
    assert P.encode_play_start(7)[6:-4] == b"\x07\x00\x00\x00\x80\x3e\x00\x00\x01\x02"
    assert P.encode_play_data(7, 1, b"\x01\x02")[6:-4] == b"\x07\0\0\0\x01\0\0\0\x01\x02"
    assert P.encode_play_end(7, 3)[6:-4] == b"\x07\0\0\0\x03\0\0\0"
    played = P.encode_played(7, 5, 2, P.PLAY_OVERFLOW)
    assert played[6:-4] == b"\x07\0\0\0\x05\0\0\0\x02\0\0\0\x01"
    assert P.decode(played)["reason"] == 1
    with pytest.raises(P.ProtocolError, match="played.reason: unknown reason 4"):
        P.encode_played(7, 5, 2, 4)


def test_the_status_ends_with_the_time_listened_since_version_6():
    assert P.VERSION == 6
    status = P.encode_status(1, 2, 3, 4, 5, True, 6, 7, 8, 9, 0x01020304, 999)
    assert status[6:-4][-6:] == b"\x04\x03\x02\x01\xe7\x03"  # listened_s, listened_rem_ms
    assert P.decode(status)["listened_s"] == 0x01020304
    # a version 5 status (no time listened) has 6 bytes fewer: this version refuses it, as
    # version 5 refuses this one's 6 bytes more: hence the new version
    older = P.encode(P.STATUS, P.encode_status(1, 2, 3, 4, 5, True, 6, 7, 8, 9)[6:-10])
    with pytest.raises(P.ProtocolError, match="status.listened_s: truncated"):
        P.decode(older)
    newer = P.encode(P.STATUS, status[6:-4] + b"\0\0")
    with pytest.raises(P.ProtocolError, match="status: 2 bytes after the last field"):
        P.decode(newer)


def test_an_error_in_an_older_peers_version_decodes_there():
    frame = P.encode_error(P.ERR_VERSION, "update", P.VERSION - 1)
    assert frame[2] == P.VERSION - 1
    with pytest.raises(P.ProtocolError, match=f"frame is protocol version {P.VERSION - 1}") as got:
        P.decode(frame)
    assert got.value.version == P.VERSION - 1
    same = bytearray(frame)
    same[2] = P.VERSION  # its payload is this version's error, its CRC the older header's
    assert bytes(same[6:-4]) == P.encode_error(P.ERR_VERSION, "update")[6:-4]
    assert P.REQUEST_ENDS == ("done", "refused", "busy", "cancelled", "muted", "replaced")
    assert P.REASONS[P.CANCELLED] == "cancelled" and P.KINDS == ("detection", "recording")


def test_largest_frame_decodes():
    msg = {"type": "clip_data", "clip_id": 1, "seq": 2, "pcm": b"\x01\x80" * 2044}
    frame = P.encode_message(msg)
    assert len(frame) == P.HEADER_SIZE + P.MAX_PAYLOAD + P.CRC_SIZE
    assert messages(decode_all([frame])) == [msg]
    assert bytes(P.ClipDataEncoder().frame(1, 2, 0)) == P.encode_clip_data(1, 2, b"")


# --- validation: errors name the field ---------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: P.encode_detection("alexa", 256, 0), r"detection\.score: 256 out of range"),
        (lambda: P.encode_detection("alexa", -1, 0), r"detection\.score: -1 out of range"),
        (lambda: P.encode_detection("alexa", 1, 2**32), r"detection\.time_ms"),
        (lambda: P.encode_detection("alexa", True, 0), r"detection\.score: expected an integer"),
        (lambda: P.encode_detection(b"alexa", 1, 0), r"detection\.model: expected a string"),
        (lambda: P.encode_clip_start(1, "a", 1, 16000, 70000), r"clip_start\.pre_roll_ms"),
        (lambda: P.encode_clip_data(1, 0, b"\x00"), r"clip_data\.pcm: odd length 1"),
        (lambda: P.encode_clip_data(1, 0, [0, 1]), r"clip_data\.pcm: expected bytes"),
        (lambda: P.encode_clip_data(1, 0, bytes(4090)), r"clip_data: payload 4098 bytes exceeds"),
        (lambda: P.encode_hello("d", "f", ["m"] * 256), r"hello\.models count: 256"),
        (lambda: P.encode_hello("d", "f", "alexa"), r"hello\.models: expected a list"),
        (lambda: P.encode_hello("d" * 5000, "f", []), r"hello: payload 5008 bytes exceeds"),
        (lambda: P.encode_hello("d" * 70000, "f", []), r"hello\.device_id length: 70000"),
        (lambda: P.encode_hello("d", "f", [], "ab" * 32), r"hello\.auth: expected bytes"),
        (lambda: P.encode_hello("d", "f", [], bytes(256)), r"hello\.auth length: 256"),
        (lambda: P.encode_ack(2**32), r"ack\.clip_id"),
        (lambda: P.encode(P.ACK, bytes(4097)), r"length: payload 4097 bytes exceeds"),
        (lambda: P.encode(99, b""), r"type: unknown message type 99"),
        (lambda: P.encode_message({"type": "nope"}), r"type: unknown message type 'nope'"),
        (lambda: P.encode_message({"type": "ack"}), r"ack\.clip_id: missing"),
        (lambda: P.encode_message({"type": "ack", "clip_id": 1, "x": 2}), r"ack\.x: not a field"),
        (lambda: P.ClipDataEncoder(4090), r"max_bytes: 4090"),
        (lambda: P.ClipDataEncoder(7), r"max_bytes: 7"),
        (lambda: P.ClipDataEncoder(64).frame(1, 0, 66), r"pcm: 66 bytes"),
        (lambda: P.ClipDataEncoder(64).frame(1, 0, 3), r"pcm: 3 bytes"),
        (lambda: P.ClipDataEncoder(64).frame(-1, 0, 2), r"clip_data\.clip_id: -1"),
        (lambda: P.ClipDataEncoder(64).frame(1, 2**32, 2), r"clip_data\.seq"),
        (lambda: P.ClipDataEncoder(64).put(bytes(66)), r"pcm: 66 bytes exceeds"),
        (lambda: P.encode_request(0, 10, 1), r"request\.what: unknown what 0"),
        (lambda: P.encode_request(3, 10, 1), r"request\.what: unknown what 3"),
        (lambda: P.encode_request(1, 0x10000, 1), r"request\.seconds: 65536 out of range"),
        (lambda: P.encode_request(1, 10, -1), r"request\.request_id: -1 out of range"),
        (lambda: P.encode_request_end(1, 6), r"request_end\.reason: unknown reason 6"),
        (lambda: P.encode_outputs("m", 0, bytes(256)), r"outputs\.values length: 256"),
        (lambda: P.encode_outputs("m", 0, [1, 2]), r"outputs\.values: expected bytes"),
        (lambda: P.encode_outputs("m", 2**32, b""), r"outputs\.time_ms: 4294967296 out of"),
        (lambda: P.encode_clip_start(1, "", 0, 16000, 0, 2), r"clip_start\.kind: unknown kind 2"),
        (lambda: P.encode_clip_end(1, 0, 5), r"clip_end\.reason: unknown reason 5"),
    ],
)
def test_bad_values_raise_protocol_error_naming_the_field(call, match):
    with pytest.raises(P.ProtocolError, match=match):
        call()
    assert issubclass(P.ProtocolError, ValueError)


# Intact frames (good CRC) that this end cannot understand.
BAD_FRAMES = [
    (
        raw_frame(V + 1, P.ACK, b"\x01\x00\x00\x00"),
        rf"version: frame is protocol version {V + 1}, this end speaks {V}",
    ),
    (raw_frame(0, P.ACK, b"\x01\x00\x00\x00"), r"version: frame is protocol version 0"),
    (raw_frame(V, 0x42, b"hello"), r"type: unknown message type 66"),
    (raw_frame(V, 0, b""), r"type: unknown message type 0"),
    (raw_frame(V, P.ACK, b"\x01\x00\x00"), r"ack\.clip_id: truncated"),
    (raw_frame(V, P.ACK, b"\x01\x00\x00\x00\x00"), r"ack: 1 bytes after the last field"),
    (raw_frame(V, P.DETECTION, b"\x20\x00alexa\x01\x00\x00\x00\x00"), r"detection\.model: trunc"),
    (raw_frame(V, P.DETECTION, b"\x02\x00\xff\xfe\x01\x00\x00\x00\x00"), r"model: not UTF-8"),
    (raw_frame(V, P.HELLO, b"\x00\x00\x00\x00\x01\x02\x01\x00a"), r"hello\.models: truncated"),
    (raw_frame(V, P.HELLO, b"\x00\x00\x00\x00\x01\x00"), r"hello\.auth: truncated"),
    (raw_frame(V, P.HELLO, b"\x00\x00\x00\x00\x01\x00\x02\x00"), r"hello\.auth: truncated"),
    (raw_frame(V, P.CLIP_DATA, bytes(8) + b"\x01"), r"clip_data\.pcm: odd length 1"),
    (raw_frame(V, P.CLIP_END, bytes(8) + b"\x05"), r"clip_end\.reason: unknown reason 5"),
    (
        raw_frame(V, P.CLIP_START, bytes(4) + b"\x00\x00\x00" + bytes(6) + b"\x02" + bytes(4)),
        r"clip_start\.kind: unknown kind 2",
    ),
    (
        raw_frame(V, P.CLIP_START, bytes(4) + b"\x00\x00\x00" + bytes(6) + b"\x01"),
        r"clip_start\.request_id: truncated",
    ),
    (raw_frame(V, P.REQUEST, b"\x00\x0a\x00" + bytes(4)), r"request\.what: unknown what 0"),
    (raw_frame(V, P.REQUEST, b"\x03\x0a\x00" + bytes(4)), r"request\.what: unknown what 3"),
    (raw_frame(V, P.REQUEST, b"\x01\x0a\x00" + bytes(3)), r"request\.request_id: truncated"),
    (raw_frame(V, P.REQUEST_END, bytes(4) + b"\x06"), r"request_end\.reason: unknown reason 6"),
    (raw_frame(V, P.REQUEST_END, bytes(4) + b"\x00\x00"), r"request_end: 1 bytes after"),
    (raw_frame(V, P.OUTPUTS, b"\x01\x00m" + bytes(4) + b"\x0a" + bytes(9)), r"values: truncated"),
    (raw_frame(V, P.OUTPUTS, b"\x01\x00m" + bytes(3)), r"outputs\.time_ms: truncated"),
    (raw_frame(V, P.OUTPUTS, b"\x01\x00\xff" + bytes(4) + b"\x00"), r"outputs\.model: not UTF-8"),
]


@pytest.mark.parametrize(("frame", "match"), BAD_FRAMES)
def test_intact_frames_that_cannot_be_understood_are_reported(frame, match):
    with pytest.raises(P.ProtocolError, match=match):
        P.decode(frame)
    before, after = P.encode_ack(1), P.encode_ack(2)
    items = decode_all([before + frame + after])
    assert [k for k, _ in items] == ["msg", "error", "msg"]
    assert items[0][1]["clip_id"] == 1 and items[2][1]["clip_id"] == 2
    assert isinstance(items[1][1], P.ProtocolError)
    with pytest.raises(P.ProtocolError, match=match):
        raise items[1][1]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (raw_frame(V, P.ACK, bytes(4097)), r"length: 4097 exceeds the maximum 4096"),
        (P.encode_ack(1)[:-1] + b"\x00", r"crc: frame damaged"),
        (P.encode_ack(1)[:-1], r"length: header says 4 payload bytes, frame has 3"),
        (b"\xf5\xc1\x01", r"frame: 3 bytes, shorter than a header"),
        (b"xx" + P.encode_ack(1)[2:], r"sync: frame does not start with F5 C1"),
    ],
)
def test_damaged_frames_raise_in_decode_and_are_skipped_by_the_decoder(frame, match):
    with pytest.raises(P.ProtocolError, match=match):
        P.decode(frame)
    items = decode_all([frame + P.encode_ack(2)])
    assert messages(items) == [{"type": "ack", "clip_id": 2}]
    assert not [v for k, v in items if k == "error"]


# --- the decoder: text, resynchronisation, chunking --------------------------------------


def test_text_lines_between_frames_come_out_in_order():
    a, b = P.encode_ack(1), P.encode_ack(2)
    stream = b"boot\r\nI (312) wakeward: listening\n" + a + b"partial" + b + b"tail\n\nend"
    items = decode_all([stream])
    assert items == [
        ("log", b"boot"),
        ("log", b"I (312) wakeward: listening"),
        ("msg", {"type": "ack", "clip_id": 1}),
        ("log", b"partial"),
        ("msg", {"type": "ack", "clip_id": 2}),
        ("log", b"tail"),
        ("log", b""),
        ("log", b"end"),
    ]
    # Without finish() the unterminated last line is held back.
    assert decode_all([stream], finish=False)[-1] == ("log", b"")


def test_byte_at_a_time_feeding_gives_the_same_items():
    stream = b"log\n" + b"".join(P.encode_message(m) for m in SAMPLES) + b"x\xf5"
    whole = decode_all([stream])
    assert decode_all([stream[i : i + 1] for i in range(len(stream))]) == whole
    assert messages(whole) == SAMPLES


def test_a_line_without_newline_is_cut_at_1024_bytes():
    items = decode_all([b"a" * 3000 + b"\n"], finish=False)
    assert [len(v) for _, v in items] == [3000]  # one feed: cut only after it
    dec = P.Decoder()
    lines = []
    for _ in range(30):
        dec.feed(b"a" * 100)
        lines.extend(v for _, v in dec)
    assert lines and all(1024 <= len(v) < 1124 for v in lines)


def test_a_truncated_frame_at_the_end_is_given_up_by_finish():
    frame = P.encode_ack(3)
    dec = P.Decoder()
    dec.feed(P.encode_ack(2) + frame[:7])
    assert list(dec) == [("msg", {"type": "ack", "clip_id": 2})]
    dec.finish()
    assert list(dec) == [("log", frame[:7])]
    assert dec.rejected == 1


def test_a_false_sync_in_a_log_line_does_not_hide_the_next_frame():
    # A header claiming 4096 bytes delays the frames inside its span until the span has
    # arrived (the CRC then fails), but loses none of them.
    fake = b"\xf5\xc1\x01\x04\x00\x10"
    frames = [P.encode_ack(i) for i in range(600)]
    dec = P.Decoder()
    got = []
    dec.feed(b"noise " + fake + b"\n")
    for f in frames:
        dec.feed(f)
        got.extend(dec)
    dec.finish()
    got.extend(dec)
    assert [m["clip_id"] for m in messages(got)] == list(range(600))
    assert dec.rejected == 1


def random_message(rng: random.Random) -> dict:
    kind = rng.choice(["ack", "detection", "clip_data", "clip_end", "status", "clip_start"])
    if kind == "ack":
        return {"type": "ack", "clip_id": rng.getrandbits(32)}
    if kind == "detection":
        return {"type": "detection", "model": "alexa", "score": rng.randrange(256), "time_ms": 5}
    if kind == "clip_data":
        n = rng.choice([0, 2, 64, 320, 1024, 4088])
        return {
            "type": "clip_data",
            "clip_id": 1,
            "seq": rng.randrange(99),
            "pcm": rng.randbytes(n),
        }
    if kind == "clip_end":
        return {"type": "clip_end", "clip_id": 1, "samples": rng.randrange(1 << 20), "reason": 1}
    if kind == "status":
        return dict(SAMPLES[11], uptime_ms=rng.getrandbits(32))
    return dict(SAMPLES[4], clip_id=rng.getrandbits(32))


def damage(rng: random.Random, frame: bytes) -> bytes:
    how = rng.randrange(3)
    if how == 0:  # one flipped bit
        i = rng.randrange(len(frame))
        return frame[:i] + bytes([frame[i] ^ (1 << rng.randrange(8))]) + frame[i + 1 :]
    if how == 1:  # one dropped byte (not the first: after a noise byte F5 that rebuilds it)
        i = rng.randrange(1, len(frame))
        return frame[:i] + frame[i + 1 :]
    return frame[: rng.randrange(1, len(frame))]  # truncated


def noisy_stream(seed: int, frames: int = 30) -> tuple[bytes, list[dict], list[bytes]]:
    """A stream of valid frames with text logs, garbage and damaged frames between them.
    Returns the stream, the valid messages in order and the log lines in order."""
    rng = random.Random(seed)
    parts: list[bytes] = []
    msgs: list[dict] = []
    lines: list[bytes] = []
    for _ in range(frames):
        for _ in range(rng.randrange(3)):
            noise = rng.randrange(4)
            if noise == 0:
                line = b"I (%d) listen: %s" % (rng.randrange(10**6), b"x" * rng.randrange(80))
                lines.append(line)
                parts.append(b"\n" + line + b"\n")
            elif noise == 1:
                parts.append(rng.randbytes(rng.randrange(1, 200)))
            elif noise == 2:
                parts.append(rng.choice([b"\xf5", b"\xf5\xc1", b"\xf5\xc1\x01\x04\xff"]))
            else:
                parts.append(damage(rng, P.encode_message(random_message(rng))))
        msg = random_message(rng)
        msgs.append(msg)
        parts.append(P.encode_message(msg))
    return b"".join(parts), msgs, lines


def random_chunks(rng: random.Random, data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        n = rng.choice([1, 7, 100, 1500, 5000])
        out.append(data[at : at + n])
        at += n
    return out


@pytest.mark.parametrize("seed", range(150))
def test_random_noisy_streams_lose_no_valid_frame_and_keep_order(seed):
    stream, msgs, lines = noisy_stream(seed)
    items = decode_all(random_chunks(random.Random(seed + 1000), stream))
    assert messages(items) == msgs
    assert not [v for k, v in items if k == "error"]
    # Every text log line comes out whole and in order.
    logs = [v for k, v in items if k == "log"]
    at = 0
    for line in lines:
        while logs[at] != line:
            at += 1
        at += 1
