"""The wire protocol on the MicroPython unix port, against the same module on CPython.

Frames encoded on MicroPython are byte-identical to CPython's (and decode there); streams
encoded on CPython, with logs, garbage and damaged frames, decode on MicroPython to the
same items; errors read the same; CLIP_DATA frames are built without allocating.
"""

from __future__ import annotations

import json
import random

import pytest

from tests.host.test_protocol import BAD_FRAMES, SAMPLES, P, noisy_stream, random_message


def normalise(kind: str, value) -> list:
    """An item as JSON-able data, the same way the MicroPython side prints it."""
    if kind == "log":
        return ["log", value.hex()]
    if kind == "error":
        return ["error", str(value)]
    return ["msg", {k: (v.hex() if isinstance(v, bytes) else v) for k, v in value.items()}]


# Prints items as normalise() does, one JSON line each.
MP_NORMALISE = (
    "import json, binascii\n"
    "def show(kind, value):\n"
    "    if kind == 'log':\n"
    "        value = binascii.hexlify(value).decode()\n"
    "    elif kind == 'error':\n"
    "        value = str(value)\n"
    "    else:\n"
    "        d = {}\n"
    "        for k in value:\n"
    "            v = value[k]\n"
    "            d[k] = binascii.hexlify(v).decode() if isinstance(v, bytes) else v\n"
    "        value = d\n"
    "    out.write(json.dumps([kind, value]))\n"
    "    out.write('\\n')\n"
)


def helper_call(msg: dict) -> tuple[str, list]:
    m = dict(msg)
    kind = m.pop("type")
    if kind == "hello":
        return "encode_hello", [m["device_id"], m["firmware"], m["models"], m["auth"]]
    return f"encode_{kind}", list(m.values())


def read_frames(data: bytes) -> list[bytes]:
    frames, at = [], 0
    while at < len(data):
        n = int.from_bytes(data[at : at + 4], "little")
        frames.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    return frames


def test_frames_encoded_on_micropython_are_byte_identical(mp, tmp_path):
    calls = [helper_call(m) for m in SAMPLES]
    mp.run(
        "import protocol as P\n"
        f"msgs = {SAMPLES!r}\n"
        f"calls = {calls!r}\n"
        "with open('frames.bin', 'wb') as out:\n"
        "    for m in msgs:\n"
        "        f = P.encode_message(m)\n"
        "        out.write(len(f).to_bytes(4, 'little'))\n"
        "        out.write(f)\n"
        "    for name, args in calls:\n"
        "        f = getattr(P, name)(*args)\n"
        "        out.write(len(f).to_bytes(4, 'little'))\n"
        "        out.write(f)\n"
    )
    frames = read_frames((tmp_path / "frames.bin").read_bytes())
    want = [P.encode_message(m) for m in SAMPLES]
    assert frames == want + want
    assert [P.decode(f) for f in frames[: len(SAMPLES)]] == SAMPLES


@pytest.mark.parametrize("seed", range(8))
def test_noisy_streams_from_cpython_decode_the_same_on_micropython(mp, tmp_path, seed):
    stream, msgs, _ = noisy_stream(seed + 500, frames=20)
    rng = random.Random(seed)
    chunks: list[int] = []
    while sum(chunks) < len(stream):
        chunks.append(rng.choice([1, 9, 64, 700, 3000]))
    (tmp_path / "stream.bin").write_bytes(stream)
    mp.run(
        "import protocol as P\n" + MP_NORMALISE + f"chunks = {chunks!r}\n"
        "dec = P.Decoder()\n"
        "with open('stream.bin', 'rb') as f, open('items.jsonl', 'w') as out:\n"
        "    for n in chunks:\n"
        "        dec.feed(f.read(n))\n"
        "        for kind, value in dec:\n"
        "            show(kind, value)\n"
        "    dec.finish()\n"
        "    for kind, value in dec:\n"
        "        show(kind, value)\n"
        "    out.write('%d\\n' % dec.rejected)\n"
    )
    lines = (tmp_path / "items.jsonl").read_text().splitlines()
    got = [json.loads(line) for line in lines[:-1]]
    dec = P.Decoder()
    dec.feed(stream)
    dec.finish()
    want = [normalise(k, v) for k, v in dec]
    assert got == want
    assert [v for k, v in got if k == "msg"] == [normalise("msg", m)[1] for m in msgs]
    assert int(lines[-1]) == dec.rejected > 0


def test_errors_read_the_same_on_micropython(mp, tmp_path):
    bad = [f for f, _ in BAD_FRAMES] + [P.encode_ack(1)[:-1] + b"\x00", P.encode_ack(1)[:-1]]
    (tmp_path / "bad.bin").write_bytes(b"".join(len(f).to_bytes(4, "little") + f for f in bad))
    encode_calls = [
        ("encode_detection", ["alexa", 256, 0]),
        ("encode_detection", [b"alexa", 1, 0]),
        ("encode_clip_data", [1, 0, b"\x00"]),
        ("encode_hello", ["d", "f", ["m"] * 256]),
        ("encode_ack", [2**32]),
        ("encode", [99, b""]),
        ("encode", [7, bytes(4097)]),
        ("encode_message", [{"type": "ack", "clip_id": 1, "x": 2}]),
    ]
    out = mp.output(
        "import protocol as P\n"
        "data = open('bad.bin', 'rb').read()\n"
        "at = 0\n"
        "while at < len(data):\n"
        "    n = int.from_bytes(data[at:at + 4], 'little')\n"
        "    try:\n"
        "        P.decode(data[at + 4:at + 4 + n])\n"
        "        print('decoded!')\n"
        "    except P.ProtocolError as e:\n"
        "        print(e)\n"
        "    at += 4 + n\n"
        f"for name, args in {encode_calls!r}:\n"
        "    try:\n"
        "        getattr(P, name)(*args)\n"
        "        print('encoded!')\n"
        "    except P.ProtocolError as e:\n"
        "        print(e)\n"
        "print(isinstance(P.ProtocolError(), ValueError))\n"
    )

    def cpython_error(call) -> str:
        with pytest.raises(P.ProtocolError) as info:
            call()
        return str(info.value)

    want = [cpython_error(lambda f=f: P.decode(f)) for f in bad]
    want += [cpython_error(lambda c=c: getattr(P, c[0])(*c[1])) for c in encode_calls]
    assert out.splitlines() == [*want, "True"]


def test_clip_data_frames_are_built_without_allocating(mp, tmp_path):
    """CLIP_DATA while capturing: put + frame + copying the frame out, under heap_lock.
    (The unix port is 64-bit; on the 32-bit device binascii.crc32 returns a long int,
    one small allocation, for CRCs >= 2**30.)"""
    rng = random.Random(5)
    src = rng.randbytes(1024)
    (tmp_path / "src.bin").write_bytes(src)
    count, clip_id = 40, 0x3FFFFFFF
    frame_len = P.HEADER_SIZE + 8 + 1024 + P.CRC_SIZE
    mp.run(
        "import micropython, protocol as P\n"
        "src = open('src.bin', 'rb').read()\n"
        "enc = P.ClipDataEncoder(1024)\n"
        f"out = bytearray({count} * {frame_len})\n"
        "def stream():\n"
        f"    for seq in range({count}):\n"
        "        enc.put(src)\n"
        "        enc.pcm[0] = seq\n"
        f"        f = enc.frame({clip_id}, seq, 1024)\n"
        f"        out[seq * {frame_len}:(seq + 1) * {frame_len}] = f\n"
        "enc.frame(1, 0, 1024)\n"
        "micropython.heap_lock()\n"
        "stream()\n"
        "micropython.heap_unlock()\n"
        "last = bytes(enc.frame(2, 99, 10))\n"
        "open('out.bin', 'wb').write(out + last)\n"
    )
    data = (tmp_path / "out.bin").read_bytes()
    for seq in range(count):
        pcm = bytes([seq]) + src[1:]
        assert data[seq * frame_len : (seq + 1) * frame_len] == P.encode_clip_data(
            clip_id, seq, pcm
        )
    assert data[count * frame_len :] == P.encode_clip_data(2, 99, bytes([count - 1]) + src[1:10])


def test_outputs_frames_are_built_without_allocating(mp, tmp_path):
    """OUTPUTS while monitoring (firmware/request.py's OutputsFrame): add + frame + copying
    the frame out, under heap_lock, and byte-identical to CPython's encode_outputs; a batch
    cut short after the lock."""
    values = [random.Random(6).randrange(256) for _ in range(10 * P.OUTPUTS_BATCH + 3)]
    out = mp.output(
        "import micropython, request\n"
        f"values = {values!r}\n"
        "enc = request.OutputsFrame('alexa')\n"
        "frames = [bytearray(64) for _ in range(10)]\n"
        "sizes = [0] * 10\n"
        "def run():\n"
        "    n = 0\n"
        "    t = 0x3FFFFF00\n"
        "    for i in range(100):\n"
        "        if enc.add(values[i], t):\n"
        "            f = enc.frame()\n"
        "            frames[n][0:len(f)] = f\n"
        "            sizes[n] = len(f)\n"
        "            n += 1\n"
        "        t += 30\n"
        "micropython.heap_lock()\n"
        "run()\n"
        "micropython.heap_unlock()\n"
        "for v in values[100:]:\n"
        "    enc.add(v, 7)\n"
        "import binascii\n"
        "for i in range(10):\n"
        "    print(binascii.hexlify(frames[i][:sizes[i]]).decode())\n"
        "print(binascii.hexlify(enc.frame()).decode())\n"
    )
    lines = out.split()
    n = P.OUTPUTS_BATCH
    want = [
        P.encode_outputs("alexa", 0x3FFFFF00 + 30 * n * i, bytes(values[n * i : n * (i + 1)]))
        for i in range(10)
    ]
    assert [bytes.fromhex(x) for x in lines[:10]] == want
    assert bytes.fromhex(lines[10]) == P.encode_outputs("alexa", 7, bytes(values[100:]))


def test_device_decodes_acks_within_the_heap(mp, tmp_path):
    """The device side only decodes what the host sends (ACK, ERROR): feed it a long
    stream in small pieces, as a UART delivers, under the 128,000-byte heap."""
    rng = random.Random(9)
    frames = [P.encode_ack(i) for i in range(2000)]
    noise = [P.encode_message(m) for m in (random_message(rng) for _ in range(60))]
    noise = [f for f in noise if f[3] != P.ACK]
    stream = b"".join(frames[:1000]) + b"".join(noise) + b"".join(frames[1000:])
    (tmp_path / "acks.bin").write_bytes(stream)
    out = mp.output(
        "import gc, protocol as P\n"
        "dec = P.Decoder()\n"
        "acks = 0\n"
        "expect = 0\n"
        "with open('acks.bin', 'rb') as f:\n"
        "    while True:\n"
        "        data = f.read(64)\n"
        "        if not data:\n"
        "            break\n"
        "        dec.feed(data)\n"
        "        for kind, msg in dec:\n"
        "            if kind == 'msg' and msg['type'] == 'ack':\n"
        "                assert msg['clip_id'] == expect, (msg, expect)\n"
        "                expect += 1\n"
        "print(expect, len(dec._buf) < 12000)\n"
    )
    assert out.split() == ["2000", "True"]
