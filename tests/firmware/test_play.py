"""Audio the receiver sends to play (firmware/play.py, link.py): on the sim board the speaker
plays exactly what was sent while the microphone loop goes on detecting (and chiming); a
link that does not honour the owner's requests refuses it; audio that overflows the buffer
is dropped and said; a slot goes to the speaker without allocating; a receiver of another
protocol version is told and left. The receivers are test_link's stand-in on loopback."""

from __future__ import annotations

import json

import numpy as np
from wakeward import unixport

from tests.conftest import write_test_wav
from tests.firmware.test_link import FEED, Stand_in, prelude
from tests.host.test_protocol import P


def tts(n: int, seed: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-8000, 8000, n).astype("<i2").tobytes()


def play_frames(play_id: int, audio: bytes, chunk: int = 4000) -> bytes:
    frames = [P.encode_play_start(play_id)]
    for seq, at in enumerate(range(0, len(audio), chunk)):
        frames.append(P.encode_play_data(play_id, seq, audio[at : at + chunk]))
    frames.append(P.encode_play_end(play_id, len(audio) // 2))
    return b"".join(frames)


class Plays(Stand_in):
    """The stand-in receiver that answers the device's hello with `on_hello` (a play) and
    acknowledges its clips."""

    def __init__(self, on_hello: bytes) -> None:
        self.on_hello = on_hello
        super().__init__()

    def reply(self, msg: dict) -> bytes:
        if msg["type"] == "hello":
            return self.on_hello
        return super().reply(msg)


SIM = """
import json
from board.sim import SimBoard
from link import Link
from outbox import Outbox
import listen, socket

class Detector:
    name = 'fake'
    p = 230
    def __init__(self):
        self.calls = 0
    def add_frame(self, features):
        self.calls += 1
        return self.calls % 40 == 0

board = SimBoard(wav='in.wav', realtime=True, events='ev.jsonl', speaker='spk.raw')
def connect():
    s = socket.socket()
    s.connect(socket.getaddrinfo('127.0.0.1', PORT)[0][-1])
    s.setblocking(False)
    return s
said = []
box = Outbox(8, 1 << 20, say=said.append)
link = Link(connect, box, board.ticks_ms, 'dev', ['fake'], requests='any',
            speaker=board.speaker, status_interval_ms=100000, say=said.append)
listen.run(board, say=said.append, wakewords=[Detector()], link=link)
board.close()
print(json.dumps(said))
"""


def test_the_sim_speaker_plays_what_was_sent_while_detection_goes_on(tmp_path):
    audio = tts(7777)  # 48 slots of 10 ms and a partial one
    write_test_wav(tmp_path / "in.wav", np.zeros(16000 * 3, np.int16))
    receiver = Plays(play_frames(21, audio))
    done = unixport.run(
        _script(tmp_path, SIM.replace("PORT", str(receiver.port))),
        heap="esp32s3-psram",
        cwd=tmp_path,
        timeout_s=60,
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")
    said = json.loads(done.stdout.decode().strip().splitlines()[-1])
    msgs = receiver.messages()
    played = [m for m in msgs if m["type"] == "played"]
    assert played == [{"type": "played", "play_id": 21, "samples": 7777, "dropped": 0, "reason": 0}]
    assert "play 21: done, 486 ms played, 0 ms dropped" in said
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    raw = (tmp_path / "spk.raw").read_bytes()
    at, answer, answer_t, chimes = 0, bytearray(), [], []
    for e in (e for e in events if e["dev"] == "speaker"):
        part = raw[at : at + 2 * e["samples"]]
        at += len(part)
        if e["samples"] == 1920:  # the chime: 120 ms
            chimes.append(e["t_ms"])
        else:  # the answer, 10 ms at a time
            answer += part
            answer_t.append(e["t_ms"])
    assert at == len(raw)
    assert bytes(answer) == audio
    # the microphone loop went on: detections (said, chimed) while the answer played
    begin, end = answer_t[0], answer_t[-1]
    detected = [float(line.split(" at ")[1][:-2]) * 1000 for line in said if "detected" in line]
    assert any(begin < t < end for t in detected), (begin, end, detected)
    assert any(begin < t < end for t in chimes), (begin, end, chimes)
    assert end - begin >= 400  # at the audio pace, not in one go


def _script(tmp_path, code: str):
    path = tmp_path / "_play.py"
    path.write_text(code)
    return path


LINK = (
    prelude(blocking=False)
    + """class Speaker:
    def __init__(self):
        self.pcm = bytearray()
    def play(self, pcm):
        self.pcm.extend(pcm)
speaker = Speaker()
box = Outbox(8, 1 << 20, say=said.append)
link = Link(connect, box, clock, 'dev', ['m'], status_interval_ms=100000,
            requests=REQUESTS, speaker=speaker, say=said.append)
"""
    + FEED
    + """import time
start = time.ticks_ms()
while time.ticks_diff(time.ticks_ms(), start) < 10000 and not [
        line for line in said if 'play ' in line or 'speaks' in line]:
    frames(1, quiet, 0)
    time.sleep_ms(1)
frames(50, quiet, 0)
link.close()
import json
print(json.dumps([len(speaker.pcm), said]))
"""
)


def run_link(mp, tmp_path, on_hello: bytes, requests: str) -> tuple[list[dict], int, list[str]]:
    (tmp_path / "loud.raw").write_bytes(bytes(320))
    receiver = Plays(on_hello)
    code = LINK.replace("PORT", str(receiver.port)).replace("REQUESTS", repr(requests))
    out = mp.output(code, heap="esp32s3-psram")
    played_bytes, said = json.loads(out.strip().splitlines()[-1])
    return receiver.messages(), played_bytes, said


def test_a_link_that_does_not_honour_requests_refuses_to_play(mp, tmp_path):
    """Plain TCP with link.requests "paired" (the default): not the paired receiver."""
    msgs, played_bytes, said = run_link(mp, tmp_path, play_frames(9, tts(4000)), "paired")
    assert played_bytes == 0
    errors = [m for m in msgs if m["type"] == "error"]
    assert errors[0]["code"] == P.ERR_REFUSED
    assert errors[0]["message"].startswith("play 9 refused: this link is plain TCP")
    played = [m for m in msgs if m["type"] == "played"]
    assert played == [{"type": "played", "play_id": 9, "samples": 0, "dropped": 0, "reason": 2}]
    assert any("play 9 refused" in line for line in said)


def test_audio_that_overflows_the_buffer_is_dropped_and_said(mp, tmp_path):
    """Two seconds sent at once into a one-second buffer."""
    msgs, played_bytes, said = run_link(mp, tmp_path, play_frames(4, tts(32000)), "any")
    errors = [m for m in msgs if m["type"] == "error"]
    assert [e["code"] for e in errors] == [P.ERR_QUEUE_FULL]
    assert errors[0]["message"] == (
        "play 4: the speaker's buffer (32000 bytes, 1000 ms) is full: audio dropped; "
        "send it at the audio rate"
    )
    (played,) = [m for m in msgs if m["type"] == "played"]
    assert played["reason"] == 1 and played["dropped"] > 0  # overflow
    assert played["samples"] + played["dropped"] == 32000
    assert played_bytes == 2 * played["samples"] >= 32000


def test_a_receiver_of_another_protocol_version_is_told_and_left(mp, tmp_path):
    older = P.encode_error(P.ERR_INTERNAL, "an older receiver", P.VERSION - 1)
    msgs, _, said = run_link(mp, tmp_path, older, "any")
    why = (
        f"the receiver speaks protocol version {P.VERSION - 1}, this device {P.VERSION}: "
        "update wakeward on the PC"
    )
    assert f"link: {why}" in said
    assert any(line.startswith("link: connection lost (protocol version") for line in said)


def test_a_slot_goes_to_the_speaker_without_allocating(mp):
    out = mp.output(
        """
import micropython
from play import Player
class Speaker:
    def __init__(self):
        self.n = 0
    def play(self, pcm):
        self.n += len(pcm)
sent = []
speaker = Speaker()
player = Player(speaker, sent.append, sent.append)
player.start({'play_id': 3, 'rate_hz': 16000, 'channels': 1, 'sample_bytes': 2})
chunk = bytes(4000)
for seq in range(6):
    player.data({'play_id': 3, 'seq': seq, 'pcm': chunk})
player.tick()
i = 0
micropython.heap_lock()
for i in range(50):
    player.tick()
micropython.heap_unlock()
player.end({'play_id': 3, 'samples': 12000})
for i in range(40):
    player.tick()
print(speaker.n, sent[-1])
"""
    )
    assert out.split() == [
        "24000",
        "play",
        "3:",
        "done,",
        "750",
        "ms",
        "played,",
        "0",
        "ms",
        "dropped",
    ]


def test_the_play_messages_load_at_the_first_one_received_or_sent(mp):
    """protocol_play.py is heap only once a play message comes or goes; then both ends have
    the same messages (the receiver's protocol module has them from the start)."""
    out = mp.output(
        f"""
import sys, protocol
print("protocol_play" in sys.modules, {P.PLAY_START} in protocol.SCHEMA)
d = protocol.Decoder()
d.feed({P.encode_play_start(3) + P.encode_played(3, 5, 0, P.PLAY_DONE)!r})
print([m["type"] for _, m in d], "protocol_play" in sys.modules)
"""
    )
    assert out.split() == ["False", "False", "['play_start',", "'played']", "True"], out
    sent = mp.output(
        """
import protocol_play
print(protocol_play.encode_played(3, 5, 2, protocol_play.PLAY_OVERFLOW))
"""
    )
    assert sent.strip() == repr(P.encode_played(3, 5, 2, P.PLAY_OVERFLOW)), sent
