# The clip after a wake-word detection: a ring of the most recent audio (the pre-roll) and the
# state machine that decides where the clip ends and hands it out in chunks while it is still
# being captured. Nothing here allocates per frame: the ring is allocated once and copies in
# and out of it are viper loops.
#
# One ring serves both jobs. Every frame goes into it; a clip is a window on it that starts
# pre_roll_ms before the detection (or less when the ring holds less, see below) and grows with
# every frame until it ends. The transport drains the window with next_chunk() from the oldest
# unsent sample on, so the clip is never stored whole: the ring holds the pre-roll plus
# backlog_ms of slack, which is how far the transport may fall behind the microphone. A frame
# that would overwrite unsent clip audio is dropped instead, and a clip still capturing ends
# with reason OVERRUN, so a delivered clip is always contiguous, bit-exact audio.
#
# End of the clip (checked after each frame):
# - MAX_LENGTH: the clip, pre-roll included, reached max_ms (cut at exactly that sample).
# - END_OF_SPEECH: at least min_ms have passed since the detection and no frame since the
#   detection in the last hangover_ms was speech (so the clip takes in a pause of up to
#   min_ms between the wake word and the command, then ends hangover_ms after speech stops).
# - MUTED: set_muted(True). Frames fed while muted are dropped, never stored.
# - OVERRUN: the transport fell backlog_ms behind (see above).
# - CANCELLED: stop(CANCELLED), for a recording whose request ended early (link.py).
#
# A recording (start_recording, the owner's request: link.py) is a clip without pre-roll
# and without END_OF_SPEECH: it starts with the next frame and ends at its own length (as
# MAX_LENGTH), at a mute, an overrun or when it is cancelled.
#
# Speech is decided per frame by vad.EnergyVad (its adaptive noise floor rises slowly during
# a speech segment, so the wake word itself does not lift the floor over the command that
# follows it).
#
# A clip never includes audio from before a mute, from before a dropped frame, or from an
# earlier clip: the pre-roll of a new clip is only what was stored since the last of those.
import micropython
from micropython import const
from pcm import mean_abs
from vad import EnergyVad

END_OF_SPEECH = "end_of_speech"
MAX_LENGTH = "max_length"
MUTED = "muted"
OVERRUN = "overrun"
CANCELLED = "cancelled"

PRE_ROLL_MS = const(1000)
MAX_MS = const(8000)
BACKLOG_MS = const(500)
HANGOVER_MS = const(800)
MIN_MS = const(1500)


class ClipError(ValueError):
    pass


@micropython.viper
def _ring_put(ring, src, head: int, n: int) -> int:
    """Copy n int16 samples from src into the ring at index head, wrapping; returns the new
    head."""
    cap = int(len(ring)) >> 1
    r = ptr16(ring)
    s = ptr16(src)
    i = 0
    while i < n:
        r[head] = s[i]
        head += 1
        if head >= cap:
            head = 0
        i += 1
    return head


@micropython.viper
def _ring_get(dst, ring, at: int, n: int):
    """Copy n int16 samples from the ring, starting at index at and wrapping, into dst."""
    cap = int(len(ring)) >> 1
    r = ptr16(ring)
    d = ptr16(dst)
    i = 0
    while i < n:
        d[i] = r[at]
        at += 1
        if at >= cap:
            at = 0
        i += 1


class PreRoll:
    """The last `ms` of int16 audio, in a ring allocated once."""

    def __init__(self, ms=PRE_ROLL_MS, rate_hz=16000):
        self.capacity = rate_hz * ms // 1000
        if self.capacity < 1:
            raise ClipError("pre-roll of %d ms holds no samples" % ms)
        self.ring = bytearray(2 * self.capacity)
        self.head = 0  # ring index of the next sample written
        self.filled = 0  # samples held, at most capacity

    def push(self, frame, n=-1):
        """Store the n int16 samples of frame (all of it by default); the oldest go."""
        if n < 0:
            n = len(frame) >> 1
        if n > self.capacity:
            raise ClipError("frame of %d samples is larger than the ring" % n)
        self.head = _ring_put(self.ring, frame, self.head, n)
        self.filled = min(self.filled + n, self.capacity)

    def clear(self):
        self.filled = 0

    def copy_back(self, buf, back, n):
        """Copy n samples into buf, starting `back` samples before the newest end."""
        at = self.head - back
        if at < 0:
            at += self.capacity
        _ring_get(buf, self.ring, at, n)

    def read_into(self, buf, offset_samples):
        """Copy held samples, oldest first, from offset_samples on, into buf; returns the
        number of samples copied (0 past the end)."""
        n = min(len(buf) >> 1, self.filled - offset_samples)
        if n <= 0 or offset_samples < 0:
            return 0
        self.copy_back(buf, self.filled - offset_samples, n)
        return n


class ClipRecorder:
    """Feed every frame; start() on a detection; drain next_chunk() until `pending` is False.

    Attributes: capturing (frames still join the clip), pending (clip not fully handed out),
    reason (why the clip ended, None while capturing), pre_samples (pre-roll length of the
    clip: the detection is at that sample), length (clip samples so far), sent (samples handed
    out), recording (the clip is a recording: start_recording). Counters: clips, refused
    (start() while a clip was pending), dropped (frames not stored: overrun or muted), ends
    (clips per reason).
    """

    def __init__(
        self,
        pre_roll_ms=PRE_ROLL_MS,
        max_ms=MAX_MS,
        backlog_ms=BACKLOG_MS,
        hangover_ms=HANGOVER_MS,
        min_ms=MIN_MS,
        rate_hz=16000,
    ):
        if max_ms <= pre_roll_ms:
            raise ClipError(
                "max length %d ms must exceed the pre-roll %d ms" % (max_ms, pre_roll_ms)
            )
        if backlog_ms < 10:
            raise ClipError("backlog of %d ms is less than a frame" % backlog_ms)
        self.ring = PreRoll(pre_roll_ms + backlog_ms, rate_hz)
        self.pre_roll = rate_hz * pre_roll_ms // 1000
        self.max_samples = rate_hz * max_ms // 1000
        self.hangover = rate_hz * hangover_ms // 1000
        self.min_after = rate_hz * min_ms // 1000
        self.capturing = False
        self.pending = False
        self.muted = False
        self.reason = None
        self.pre_samples = 0
        self.length = 0
        self.sent = 0
        self.clips = 0
        self.refused = 0
        self.dropped = 0
        self.ends = {END_OF_SPEECH: 0, MAX_LENGTH: 0, MUTED: 0, OVERRUN: 0, CANCELLED: 0}
        self.recording = False
        self._limit = self.max_samples  # the length of the clip being captured, at most
        self._fresh = 0  # newest ring samples a new clip may take as pre-roll
        self._unsent = 0  # clip samples in the ring not yet handed out
        self._after = 0  # ring samples newer than the clip's end
        self._since = 0  # samples since the detection
        self._silent = 0  # samples since the last speech frame after the detection
        self._vad = EnergyVad()

    def _speech(self, level):
        self._vad.process(level)
        return self._vad.speech

    def _end(self, reason):
        self.capturing = False
        self.reason = reason
        self.ends[reason] += 1
        self._fresh = 0
        if self._unsent == 0:
            self.pending = False

    def feed(self, frame, level=-1):
        """Store one frame of int16 samples (any length up to the ring); level is its mean
        absolute amplitude (pcm.mean_abs), computed here when not given."""
        n = len(frame) >> 1
        if self.muted:
            self.dropped += 1
            return
        if level < 0:
            level = mean_abs(frame, n)
        speech = self._speech(level)
        ring = self.ring
        if self.pending and self._unsent + self._after + n > ring.capacity:
            # storing it would overwrite clip audio the transport has not taken yet
            self.dropped += 1
            self._fresh = 0
            if self.capturing:
                self._end(OVERRUN)
            return
        ring.push(frame, n)
        self._fresh = min(self._fresh + n, ring.capacity)
        if not self.capturing:
            if self.pending:
                self._after += n
            return
        self._unsent += n
        self.length += n
        self._since += n
        if speech:
            self._silent = 0
        else:
            self._silent += n
        if self.length >= self._limit:
            over = self.length - self._limit
            self.length -= over
            self._unsent -= over
            self._after = over
            self._end(MAX_LENGTH)
            self._fresh = over
        elif self._since >= self.min_after and self._silent >= self.hangover:
            if not self.recording:  # a recording ends at its length only
                self._end(END_OF_SPEECH)

    def start(self):
        """Begin a clip at a detection; False (and counted) while the last one is pending."""
        if self.pending or self.muted:
            self.refused += 1
            return False
        self._begin(min(self._fresh, self.pre_roll), self.max_samples, False)
        return True

    def start_recording(self, samples):
        """Begin a recording of `samples` samples from the next frame on (no pre-roll, no
        end of speech); False (and counted) while a clip is pending or muted."""
        if self.pending or self.muted:
            self.refused += 1
            return False
        self._begin(0, samples, True)
        return True

    def stop(self, reason):
        """End the clip being captured now, for `reason` (CANCELLED); what was captured
        still drains."""
        if self.capturing:
            self._end(reason)

    def _begin(self, pre, limit, recording):
        self.clips += 1
        self.recording = recording
        self._limit = limit
        self.capturing = True
        self.pending = True
        self.reason = None
        self.pre_samples = pre
        self.length = pre
        self.sent = 0
        self._unsent = pre
        self._after = 0
        self._since = 0
        self._silent = 0

    def set_muted(self, muted):
        """Mute ends a capturing clip (what was captured still drains) and drops every frame
        fed until unmuted; nothing from before the mute goes into a later clip."""
        if muted and self.capturing:
            self._end(MUTED)
        self.muted = muted
        self._fresh = 0

    def ready(self):
        """Samples of the clip ready to be handed out now."""
        return self._unsent

    def next_chunk(self, buf):
        """Copy the next ready clip samples into buf (as many as fit); returns the number of
        bytes written, 0 when none are ready."""
        n = min(len(buf) >> 1, self._unsent)
        if n <= 0:
            return 0
        self.ring.copy_back(buf, self._unsent + self._after, n)
        self._unsent -= n
        self.sent += n
        if self._unsent == 0 and not self.capturing:
            self.pending = False
        return 2 * n
