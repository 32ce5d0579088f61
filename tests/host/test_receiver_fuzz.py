"""Bounded, seeded fuzzing of what a peer sends the receiver: the protocol's stream Decoder
(firmware/protocol.py) and a whole session (receiver.Receiver.handle, on plain TCP and on a
TLS receiver, with a real clip store). Inputs are valid frames and sessions, mutated at the
byte level (flips, cuts, inserts, splices, garbage, false sync headers) and at the message
level (extreme integers, odd strings, frames re-framed with a good CRC so the schema
checks, not the CRC, meet them).

A crash is any exception out of Decoder or Receiver.handle; a hang is an input that takes
longer than HANG_S (the whole run is also bounded: a session that never returns fails the
test). The suite runs FUZZ_S seconds per fuzzer; a longer run (figures in docs/security.md):

    WAKEWARD_FUZZ_S=600 .venv/bin/python -m pytest -s tests/host/test_receiver_fuzz.py

WAKEWARD_FUZZ_SEED picks another seed; a failure names the seed and the input's number.
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from wakeward import pairing, receiver
from wakeward.store import ClipStore

from tests.host.test_protocol import P

FUZZ_S = float(os.environ.get("WAKEWARD_FUZZ_S", "1.5"))  # per fuzzer
SEED = int(os.environ.get("WAKEWARD_FUZZ_SEED", "14"))
HANG_S = 2.0  # one input taking longer is a hang
RUN_SLACK_S = 30.0  # beyond FUZZ_S before a run that never returns fails the test
MAX_CHUNK = 700  # bytes a read returns at most (reads are cut at random sizes)
SAMPLES = 64  # audio per clip_data in the fuzzed sessions (clips stay small)
DEVICE = "kitchen"
# A log line is cut once it reaches 1024 bytes, after the text that came with it
# (test_protocol.py): at most a false frame's worth held back, and the read that ended it.
MAX_LOG_LINE = P._MAX_LINE + P.HEADER_SIZE + P.MAX_PAYLOAD + P.CRC_SIZE + MAX_CHUNK
INTS = (0, 1, 2, 255, 256, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1)
ODD_STRINGS = ("", "a\x00b", "\x1b[31mred", "../../x", "é" * 300, "x" * 4000)


def valid_frames(rng: random.Random, auth: bytes = b"") -> list[bytes]:
    """A device's session: hello, status, a detection, a clip, a recording, the rest."""
    pcm = bytes(rng.getrandbits(8) for _ in range(2 * SAMPLES))
    clip_id = rng.randrange(2**30)
    frames = [
        P.encode_hello(DEVICE, "1.0", ["alexa"], auth),
        P.encode_status(1000, 1, 1, 0, 1, False, 2 * SAMPLES, 50000),
        P.encode_detection("alexa", 240, 900),
        P.encode_clip_start(clip_id, "alexa", 240, 16000, 1000),
    ]
    frames += [P.encode_clip_data(clip_id, seq, pcm) for seq in range(3)]
    frames.append(P.encode_clip_end(clip_id, 3 * SAMPLES, P.END_OF_SPEECH))
    frames.append(P.encode_clip_start(clip_id + 1, "", 0, 16000, 0, P.CLIP_RECORDING, 5))
    frames.append(P.encode_clip_data(clip_id + 1, 0, pcm))
    frames.append(P.encode_clip_end(clip_id + 1, SAMPLES, P.MAX_LENGTH))
    frames += [
        P.encode_outputs("alexa", 1000, bytes(10)),
        P.encode_request_end(5, P.REQ_DONE),
        P.encode_error(P.ERR_INTERNAL, "oops"),
        P.encode_ack(clip_id),
        P.encode_request(P.MONITOR, 10, 3),
    ]
    return frames


def odd_message(rng: random.Random) -> bytes:
    """A frame with a good CRC whose fields are extreme: each field an edge value (or a
    random payload), so the schema checks and the receiver's own checks meet them."""
    msg_type = rng.choice(list(P.SCHEMA))
    name, spec = P.SCHEMA[msg_type]
    if rng.random() < 0.2:  # any payload at all, up to the maximum
        size = rng.choice((0, 1, 7, rng.randrange(P.MAX_PAYLOAD + 1)))
        return P.encode(msg_type, bytes(rng.getrandbits(8) for _ in range(size)))
    fields: dict = {"type": name}
    for field, kind in spec:
        fields[field] = edge_value(rng, kind)
    try:
        return P.encode_message(fields)
    except P.ProtocolError:  # a named field out of its list, a payload too long
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(64)))
        return P.encode(msg_type, payload)


def edge_value(rng: random.Random, kind: str):
    """An extreme value for a field of this kind (SCHEMA's field kinds)."""
    if kind == "s":
        return rng.choice((*ODD_STRINGS, DEVICE, "alexa"))
    if kind == "L":
        return [rng.choice(ODD_STRINGS[:4]) for _ in range(rng.randrange(4))]
    if kind == "y":
        return bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 32, 255))))
    if kind == "p":
        return bytes(2 * rng.choice((0, 1, SAMPLES, P.MAX_PCM_BYTES // 2 - 100)))
    return rng.choice([v for v in INTS if v <= P._LIMITS[kind]])


def tweak(rng: random.Random, frame: bytes) -> bytes:
    """The frame with one field an extreme value and the rest kept (so a clip_start at an
    odd rate is still followed by its data and end), re-framed with a good CRC."""
    msg = P.decode(frame)
    spec = P.SCHEMA[P._TYPES[msg["type"]]][1]
    field, kind = rng.choice(spec)
    msg[field] = edge_value(rng, kind)
    try:
        return P.encode_message(msg)
    except P.ProtocolError:  # a named field out of its list, a payload too long
        return frame


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One byte-level mutation."""
    buf = bytearray(data)
    op = rng.randrange(8)
    at = rng.randrange(len(buf) + 1)
    if op == 0 and buf:  # flip bits
        for _ in range(rng.randrange(1, 8)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif op == 1:  # cut a piece out
        del buf[at : at + rng.randrange(1, 64)]
    elif op == 2:  # garbage in
        buf[at:at] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))
    elif op == 3:  # a false header: sync, any version and type, a long length
        buf[at:at] = P.SYNC + bytes([rng.randrange(256), rng.randrange(256)])
        buf[at + 4 : at + 4] = rng.randrange(P.MAX_PAYLOAD + 2).to_bytes(2, "little")
    elif op == 4:  # a text line, maybe long, maybe without its newline
        line = bytes(rng.choice(b"abc \x1b\x00\r\xf5\xc1") for _ in range(rng.randrange(2000)))
        buf[at:at] = line + (b"\n" if rng.random() < 0.5 else b"")
    elif op == 5:  # truncate
        del buf[at:]
    elif op == 6:  # repeat a piece
        piece = bytes(buf[at : at + rng.randrange(1, 2000)])
        buf[at:at] = piece * rng.randrange(1, 4)
    else:  # a frame with extreme fields
        buf[at:at] = odd_message(rng)
    return bytes(buf)


def fuzz_input(rng: random.Random, auth: bytes = b"") -> bytes:
    frames = valid_frames(rng, auth)
    for _ in range(rng.randrange(3)):
        at = rng.randrange(len(frames))
        frames[at] = tweak(rng, frames[at])
    if rng.random() < 0.3:
        rng.shuffle(frames)
    for _ in range(rng.randrange(4)):  # after the hello, mostly (a TLS receiver stops at once)
        frames.insert(rng.randrange(1, len(frames) + 1), odd_message(rng))
    data = b"".join(frames)
    for _ in range(rng.randrange(1, 6)):
        data = mutate(rng, data)
    return data


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    out = []
    at = 0
    while at < len(data):
        n = rng.randrange(1, MAX_CHUNK)
        out.append(data[at : at + n])
        at += n
    return out


class Figures:
    def __init__(self, name: str) -> None:
        self.name = name
        self.inputs = 0
        self.crashes: list[str] = []
        self.hangs: list[str] = []
        self.slowest_s = 0.0

    def timed(self, index: int, run: Callable[[], None]) -> None:
        start = time.monotonic()
        try:
            run()
        except Exception:  # a crash: counted and reported, the run goes on
            self.crashes.append(f"seed {SEED} input {index}:\n{traceback.format_exc()}")
        took = time.monotonic() - start
        self.slowest_s = max(self.slowest_s, took)
        if took > HANG_S:
            self.hangs.append(f"seed {SEED} input {index}: {took:.1f} s")
        self.inputs += 1

    def report(self) -> str:
        return (
            f"fuzz {self.name}: {self.inputs} inputs in {FUZZ_S:g} s (seed {SEED}), "
            f"{len(self.crashes)} crashes, {len(self.hangs)} hangs, "
            f"slowest input {self.slowest_s * 1000:.0f} ms"
        )


def bounded(figures: Figures, one: Callable[[int], None]) -> Figures:
    """Run one(i) for FUZZ_S seconds in a thread; a run that does not come back fails."""

    def run() -> None:
        end = time.monotonic() + FUZZ_S
        index = 0
        while time.monotonic() < end:
            figures.timed(index, lambda i=index: one(i))
            index += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(FUZZ_S + RUN_SLACK_S)
    assert not thread.is_alive(), f"{figures.name}: hung at input {figures.inputs} (seed {SEED})"
    print(figures.report())
    return figures


def check_decoder(data: bytes, rng: random.Random) -> None:
    """The decoder's promises: only its three kinds of items, lines bounded, and
    an intact frame after any garbage still comes out (the last message)."""
    sentinel = P.encode_ack(7)
    decoder = P.Decoder()
    items = []
    for piece in chunks(rng, data + b"\n" + sentinel):
        decoder.feed(piece)
        items += list(decoder)
    decoder.finish()
    items += list(decoder)
    for kind, item in items:
        if kind == P.LOG:
            if not isinstance(item, bytes) or len(item) > MAX_LOG_LINE:
                raise AssertionError(f"bad log item {item!r:.80}")
        elif kind == P.ERR:
            if not isinstance(item, P.ProtocolError):
                raise AssertionError(f"bad error item {item!r}")
        elif kind != P.MSG or not isinstance(item, dict):
            raise AssertionError(f"unknown item {kind!r}")
    messages = [item for kind, item in items if kind == P.MSG]
    if not messages or messages[-1] != {"type": "ack", "clip_id": 7}:
        raise AssertionError("the intact frame after the input was lost")


def test_the_decoder_takes_any_bytes():
    rng = random.Random(SEED)

    def one(index: int) -> None:
        check_decoder(fuzz_input(rng), rng)

    figures = bounded(Figures("decoder"), one)
    assert not figures.crashes, figures.crashes[0]
    assert not figures.hangs, figures.hangs


class Replay:
    """A receiver.ByteStream that returns the input a chunk at a time, then b""."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.written = bytearray()

    def read(self) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""

    def write(self, data: bytes) -> None:
        self.written += data

    def linger(self) -> None:
        pass

    def close(self) -> None:
        self.pieces.clear()

    def greeted(self) -> None:
        pass


def test_a_session_survives_any_bytes(tmp_path: Path):
    """Plain TCP and a TLS receiver (with one paired device, whose secret the inputs carry
    half the time): every input ends in handle() returning, nothing escapes it."""
    paired = pairing.Pairing(tmp_path / "pairing")
    paired.ensure_identity()
    secret = bytes.fromhex(paired.pair(DEVICE))
    rng = random.Random(SEED)
    lines: list[str] = []
    with ClipStore(tmp_path / "store") as store:
        plain = receiver.Receiver(store, lines.append)
        tls = receiver.Receiver(store, lines.append)
        tls.pairing = paired

        def one(index: int) -> None:
            on_tls = rng.random() < 0.5
            auth = secret if on_tls and rng.random() < 0.5 else b""
            data = fuzz_input(rng, auth)
            (tls if on_tls else plain).handle(Replay(chunks(rng, data)), f"peer {index}")
            del lines[:]

        figures = bounded(Figures("session"), one)
    assert not figures.crashes, figures.crashes[0]
    assert not figures.hangs, figures.hangs
