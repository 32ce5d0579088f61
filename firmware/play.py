# Audio the paired receiver sends to play (protocol PLAY_START, PLAY_DATA, PLAY_END;
# docs/protocol.md), played through board.speaker while the microphone keeps listening.
#
# The link (link.py) hands each play message to a Player, and calls tick() once per 10 ms
# audio frame: the Player writes one 10 ms slot of its ring buffer to the speaker, so the
# speaker runs at the microphone's pace and the listening loop never waits for it. The
# ring (BUFFER_FRAMES slots of FRAME_BYTES, 1 s of audio: 32,000 bytes) and a view of each
# slot are allocated once, when the link's first play is accepted (link.py), and kept: a
# device nobody sends audio keeps that heap. Playing a slot allocates nothing (tested under
# heap_lock); a play's last, partial slot costs one view.
#
# A play starts sounding once _PRIME_FRAMES (200 ms) are buffered, or its play_end has
# come, and then writes _LEAD_FRAMES at once: the I2S DMA buffer (board/esp32s3.py) holds
# that lead, so a late loop frame does not starve the amplifier. After that one slot goes
# out per audio frame; a buffer that runs dry waits for more (a pause, nothing lost).
#
# The receiver paces what it sends at the audio rate with less than the buffer ahead of
# the speaker (host: wakeward/play.py). Audio that arrives when the ring is full is dropped,
# not queued: the first time in a play the device says so with an ERROR (code queue full),
# and its PLAYED (sent when the play has played out) counts the samples played and dropped
# with reason "overflow". A play_start while a play is under way ends that one ("cancelled")
# and starts the new one; a link that drops ends the play silently (nobody to tell).
import protocol
import protocol_play
from micropython import const

FRAME_BYTES = const(320)  # 10 ms of 16 kHz int16 mono: one slot, one audio frame
BUFFER_FRAMES = const(100)  # 1 s of audio: 32,000 bytes
_LEAD_FRAMES = const(5)  # written at once when a play starts sounding
_PRIME_FRAMES = const(20)  # buffered before a play starts sounding (unless it has ended)
_MS_PER_FRAME = const(10)


class Player:
    """The speaker's ring buffer and the play under way (one at a time)."""

    def __init__(self, speaker, send, say=print, frames=BUFFER_FRAMES):
        """speaker: board.speaker; send(frame): write a frame to the receiver."""
        self._speaker = speaker
        self._send = send
        self._say = say
        self.size = frames * FRAME_BYTES
        self._ring = bytearray(self.size)
        self._view = memoryview(self._ring)
        self._slots = [self._view[i : i + FRAME_BYTES] for i in range(0, self.size, FRAME_BYTES)]
        self.play_id = 0
        self.active = False
        self._head = 0  # byte offset of the next sample to play (slot-aligned)
        self._fill = 0  # bytes buffered
        self._sounding = False
        self._ended = False  # its play_end has come
        self._expected = 0  # samples its play_end counts
        self._said_full = False
        self.samples = 0  # played in this play
        self.dropped = 0  # samples dropped in this play (the ring was full)
        self.plays = 0  # plays finished since boot

    def buffer_ms(self):
        return self.size // FRAME_BYTES * _MS_PER_FRAME

    def start(self, msg):
        """A PLAY_START: a play under way ends ("cancelled"); an unplayable format is
        refused with an ERROR and PLAYED "refused"."""
        if self.active:
            self._finish(protocol_play.PLAY_CANCELLED)
        play_id = msg["play_id"]
        if (
            msg["rate_hz"] != protocol_play.PLAY_RATE_HZ
            or msg["channels"] != 1
            or msg["sample_bytes"] != 2
        ):
            refuse(
                self._send,
                play_id,
                "%d Hz, %d channels, %d-byte samples: this speaker plays %d Hz mono 16-bit"
                % (
                    msg["rate_hz"],
                    msg["channels"],
                    msg["sample_bytes"],
                    protocol_play.PLAY_RATE_HZ,
                ),
            )
            return
        self.play_id = play_id
        self.active = True
        self._head = 0
        self._fill = 0
        self._sounding = False
        self._ended = False
        self._expected = 0
        self._said_full = False
        self.samples = 0
        self.dropped = 0

    def data(self, msg):
        """A PLAY_DATA: into the ring, as much as fits; the rest is dropped and counted."""
        if not self.active or self._ended or msg["play_id"] != self.play_id:
            return  # a refused or finished play's: nothing to play it into
        pcm = msg["pcm"]
        n = len(pcm)
        room = self.size - self._fill
        take = n if n <= room else room
        if take:
            tail = self._head + self._fill
            if tail >= self.size:
                tail -= self.size
            first = self.size - tail
            if first > take:
                first = take
            src = memoryview(pcm)
            self._ring[tail : tail + first] = src[:first]
            if take > first:
                self._ring[0 : take - first] = src[first:take]
            self._fill += take
        if take < n:
            self.dropped += (n - take) // 2
            if not self._said_full:
                self._said_full = True
                self._send(
                    protocol.encode_error(
                        protocol.ERR_QUEUE_FULL,
                        "play %d: the speaker's buffer (%d bytes, %d ms) is full: audio "
                        "dropped; send it at the audio rate"
                        % (self.play_id, self.size, self.buffer_ms()),
                    )
                )

    def end(self, msg):
        """A PLAY_END: what is buffered plays out, then PLAYED goes back."""
        if self.active and msg["play_id"] == self.play_id:
            self._ended = True
            self._expected = msg["samples"]

    def stop(self):
        """The link dropped: the play ends here, unsaid."""
        self.active = False
        self._fill = 0

    def tick(self):
        """Every 10 ms audio frame: the next slot to the speaker (allocates nothing but for
        a play's last, partial slot)."""
        if not self.active:
            return
        fill = self._fill
        if not self._sounding:
            if fill < _PRIME_FRAMES * FRAME_BYTES and not self._ended:
                return
            self._sounding = True
            n = _LEAD_FRAMES
        else:
            n = 1
        speaker = self._speaker
        while n and fill >= FRAME_BYTES:
            head = self._head
            speaker.play(self._slots[head // FRAME_BYTES])
            head += FRAME_BYTES
            self._head = 0 if head >= self.size else head
            fill -= FRAME_BYTES
            self.samples += FRAME_BYTES // 2
            n -= 1
        self._fill = fill
        if not self._ended or fill >= FRAME_BYTES:
            return
        if fill:
            speaker.play(self._view[self._head : self._head + fill])
            self.samples += fill // 2
            self._fill = 0
        lost = self._expected - self.samples - self.dropped
        if lost > 0:  # frames that never came (a damaged frame on the serial line)
            self.dropped += lost
        self._finish(protocol_play.PLAY_OVERFLOW if self.dropped else protocol_play.PLAY_DONE)

    def _finish(self, reason):
        self.active = False
        self._fill = 0
        self.plays += 1
        self._send(protocol_play.encode_played(self.play_id, self.samples, self.dropped, reason))
        self._say(
            "play %d: %s, %d ms played, %d ms dropped"
            % (
                self.play_id,
                protocol_play.PLAY_ENDS[reason],
                self.samples // (protocol_play.PLAY_RATE_HZ // 1000),
                self.dropped // (protocol_play.PLAY_RATE_HZ // 1000),
            )
        )


def handle(link, msg):
    """A PLAY_START or PLAY_END from the receiver on `link` (link.Link; its PLAY_DATA go
    straight to link.player). A start is honoured on the terms of requests
    (link.requests); the Player and its buffer are made at the first one honoured."""
    player = link.player
    if msg["type"] == "play_end":
        if player is not None:
            player.end(msg)
        return
    import request  # refusal(): who may ask (its code is heap, as at a first request)

    play_id = msg["play_id"]
    why = request.refusal(link.requests, link.owner_link)
    if why is None and link.speaker is None:
        why = "this device has no speaker"
    if why is None and player is None:
        try:
            player = link.player = Player(link.speaker, link.send, link.say)
        except MemoryError:
            why = "no memory for the speaker's buffer"
    if why is not None:
        link.say("link: play %d refused: %s" % (play_id, why))
        refuse(link.send, play_id, why)
        return
    player.start(msg)


def refuse(send, play_id, why):
    """A play not honoured: an ERROR (refused) saying why, and its PLAYED "refused"."""
    send(protocol.encode_error(protocol.ERR_REFUSED, "play %d refused: %s" % (play_id, why)))
    send(protocol_play.encode_played(play_id, 0, 0, protocol_play.PLAY_REFUSED))
