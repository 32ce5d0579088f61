# The link stage: after a detection, the clip (pre-roll included) goes to the receiver on the
# owner's PC as protocol frames, streamed while it is captured. Nothing is sent before a
# detection but the hello. The transport is any object with write(bytes) (a TCP socket's
# stream, or the USB serial console's sys.stdout.buffer); the board opens it.
import protocol
from clip import ClipRecorder
from micropython import const

CHUNK_BYTES = const(1024)  # 32 ms of audio per CLIP_DATA frame
RATE_HZ = const(16000)


class Link:
    def __init__(self, stream, device_id, model_names, pre_roll_ms=1000, max_ms=8000):
        self._stream = stream
        self.recorder = ClipRecorder(pre_roll_ms=pre_roll_ms, max_ms=max_ms)
        self._encoder = protocol.ClipDataEncoder(CHUNK_BYTES)
        self.clip_id = 0
        self._seq = 0
        self._open = False  # a clip_start went out and its clip_end has not
        self.clips_sent = 0
        self.audio_bytes_sent = 0
        self._write(protocol.encode_hello(device_id, "wakeward-0.1", list(model_names)))

    def _write(self, data):
        n = self._stream.write(data)
        if n is None or n == len(data):
            return
        view = memoryview(data)[n:]  # a short write: the rest, slice by slice
        while len(view):
            n = self._stream.write(view)
            view = view[len(view) if n is None else n :]

    def frame(self, pcm, level):
        """Every 10 ms frame of audio (the recorder keeps the pre-roll)."""
        self.recorder.feed(pcm, level)
        self._drain()

    def detected(self, model, score):
        """A detection: start a clip unless one is still going out."""
        if not self.recorder.start():
            return False
        self.clip_id += 1
        self._seq = 0
        self._open = True
        pre_ms = self.recorder.pre_samples * 1000 // RATE_HZ
        self._write(protocol.encode_clip_start(self.clip_id, model, score, RATE_HZ, pre_ms))
        self._drain()
        return True

    def set_muted(self, muted):
        self.recorder.set_muted(muted)
        self._drain()

    def _drain(self):
        if not self._open:
            return
        rec = self.recorder
        enc = self._encoder
        # whole chunks while capturing; whatever is left once the clip has ended
        while rec.ready() >= CHUNK_BYTES // 2 or (rec.ready() and not rec.capturing):
            n = rec.next_chunk(enc.pcm)
            self._write(enc.frame(self.clip_id, self._seq, n))
            self._seq += 1
            self.audio_bytes_sent += n
        if not rec.pending:
            reason = protocol.REASONS.index(rec.reason)
            self._write(protocol.encode_clip_end(self.clip_id, rec.length, reason))
            self._open = False
            self.clips_sent += 1

    def close(self):
        """At the end of the input (sim): finish an open clip as it stands."""
        if self._open and self.recorder.capturing:
            self.recorder.set_muted(True)
            self._drain()
