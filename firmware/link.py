# The link stage: after a detection, the clip (pre-roll included) goes to the receiver on the
# owner's PC as protocol frames. Nothing is sent before a detection but hello and status,
# unless the owner asks for it (request.py): the models' outputs while a monitor request is
# active, and a recording clip for a record request, only on a link that honours requests.
#
# Every clip is written to the outbox on flash while it is captured (outbox.py) and, while
# the receiver is connected and has been sent every earlier clip, streamed to it at the same
# time (latency). A clip's file is deleted only when the receiver acknowledges the clip.
# After each connect the device sends hello and status, then every queued clip, oldest
# first, whole frames of about _RESEND_BYTES per audio frame (six times the audio rate) so
# the audio loop keeps its pace; a clip captured meanwhile is queued behind them. Every
# frame goes out whole before the audio loop goes on, so on the serial link (the console,
# console.py) the firmware's log lines fall between frames, never inside one.
#
# The stream comes from `connect` (transport.open_stream: the one place it is opened, plain
# TCP, TLS or the serial console, which is always there), tried again with exponential
# backoff on the board's clock while the receiver is unreachable: retry_min_ms, doubling up
# to retry_max_ms. A connection the receiver closes before it has acknowledged anything
# counts as a failed attempt too (a receiver that refuses this device closes right after the
# hello; the backoff keeps doubling, so a refused device does not knock every second), unless
# it lasted retry_max_ms; after any other connection the next try is retry_min_ms away. No
# attempt is made while a clip is captured (an attempt stalls the audio loop; the clip goes
# from flash after its end, as it would anyway when it started without a connection). Any
# error reading or writing ends the connection, and so does an ack that has not come
# ack_timeout_ms after a clip went out (a receiver that vanished without closing); every clip
# the receiver has not acknowledged is sent again after the next connect.
#
# The stream is non-blocking (transport.py). Acks are read without waiting: each audio frame
# polls the stream (select.poll, zero timeout) and reads only what has arrived (on TLS, a
# record that has only partly arrived reads as None and waits for the next frame). A write
# puts out what fits and waits for room for the rest, write_timeout_ms in all, so a receiver
# that stops reading ends the connection instead of stalling the loop. A status message
# (protocol STATUS: uptime, clips sent, acked, dropped and queued, audio bytes sent, mute,
# the time listened) goes out on each connect and every status_interval_ms.
#
# The time listened (not muted) since boot is counted as whole seconds and the milliseconds
# past them, small ints for 34 years (milliseconds alone would be a long int, a heap
# allocation, past 2**30 ms, 12.4 days), brought up to date at every mute and unmute, at
# every status and every status_interval_ms, so time.ticks_diff (good to 2**29 ms) never
# wraps; nothing is counted per frame.
#
# Per audio frame nothing here allocates, connected or not, while a clip is captured and
# streamed too: the frames go to flash and to the stream from the recorder's preallocated
# encoder; nor while monitoring: each model's outputs go into a preallocated OUTPUTS frame
# (request.Monitor), written out whole every OUTPUTS_BATCH invocations. Allocations happen
# once per event: a detection, a clip's last short chunk, an ack, a request, a status, a
# connect, the last piece of a resent clip, a batch cut short.
#
# Requests (request.py): a recording is a clip like a detection's, in the same outbox and
# acknowledged the same way, so none is lost to a dropped link; its clip_start has kind
# CLIP_RECORDING and the request's id. A request ends when its time is up, at a mute, or
# when the link drops (a recording captured so far ends as "cancelled" and goes after the
# reconnect); each end that can be told is told with REQUEST_END. request.py handles the
# requests; it is imported, and the monitor's batches made, at the first request only: a
# device nobody asks keeps that heap.
#
# Audio to play (play.py): the receiver's PLAY_START, PLAY_DATA and PLAY_END go to a Player,
# made (with its ring buffer, once) at the first play this link accepts, on the same terms
# as requests (link.requests: by default only the paired receiver over TLS, or the USB
# cable); poll() plays one 10 ms slot of it per audio frame, so the microphone and the
# models go on meanwhile. While audio arrives, each poll reads up to _RX_READS pieces of
# _RX_BYTES (about 400 KB/s, well above the 32 KB/s of 16 kHz audio); those reads and the
# decoding of a message allocate, once per piece received, never per audio frame without.
#
# A frame of another protocol version (an older or newer receiver) ends the connection: the
# device says which side to update, and tells the receiver in its own version's ERROR.
import errno
import gc
import select
import time

import protocol
from clip import CANCELLED, MAX_LENGTH, MUTED, ClipRecorder
from micropython import const

CHUNK_BYTES = const(1024)  # 32 ms of audio per CLIP_DATA frame
RATE_HZ = const(16000)
FIRMWARE = "wakeward-0.1"
_RESEND_BYTES = const(2048)  # of a queued clip, per audio frame; also its largest frame
_RX_BYTES = const(1024)
_RX_READS = const(4)  # pieces read per audio frame at most
_CLOSE_WAIT_MS = const(2000)  # at the end of the input (sim): how long to wait for acks
_QUEUED_MAX = const(255)  # status.queued is a u8
_U32_WRAP = 0x100000000  # not a const: a long int on the device
_U32_MASK = const(0x3FFFFFFF)  # the device clock (ticks_ms) wraps at 2**30 anyway
_MS_PER_S = const(1000)
# how a recording's request ended, by why its clip ended (otherwise: cancelled)
_RECORD_ENDS = {MAX_LENGTH: protocol.REQ_DONE, MUTED: protocol.REQ_MUTED}


class Link:
    def __init__(
        self,
        connect,
        outbox,
        clock_ms,
        device_id,
        model_names,
        pre_roll_ms=1000,
        max_ms=8000,
        retry_min_ms=1000,
        retry_max_ms=60000,
        ack_timeout_ms=10000,
        status_interval_ms=30000,
        write_timeout_ms=200,
        auth=b"",
        requests="paired",
        owner_link=False,
        speaker=None,
        say=print,
    ):
        """requests: link.requests (request.py), who may also send audio to play;
        owner_link: this link is TLS with the paired secret, or the USB serial console;
        speaker: board.speaker, for audio the receiver sends (play.py)."""
        self._connect = connect
        self.outbox = outbox
        self._clock = clock_ms
        self._say = say
        self.say = say  # for request.py
        self._hello = protocol.encode_hello(device_id, FIRMWARE, list(model_names), auth)
        self.recorder = ClipRecorder(pre_roll_ms=pre_roll_ms, max_ms=max_ms)
        self._encoder = protocol.ClipDataEncoder(CHUNK_BYTES)
        self._resend_buf = bytearray(_RESEND_BYTES)
        self._resend_view = memoryview(self._resend_buf)
        self._resend_head = self._resend_view[: protocol.HEADER_SIZE]
        self._resend_size = 0  # of the last frame resent, whose views follow
        self._resend_body = self._resend_head
        self._resend_frame = self._resend_head
        self._rx = bytearray(64)  # _close_cleanly's scratch
        self._retry_min_ms = retry_min_ms
        self._retry_max_ms = retry_max_ms
        self._ack_timeout_ms = ack_timeout_ms
        self._status_interval_ms = status_interval_ms
        self._write_timeout_ms = write_timeout_ms
        self._poller = select.poll()  # acks: POLLIN
        self._out_poller = select.poll()  # room to write: POLLOUT
        self._stream = None
        self._decoder = protocol.Decoder()
        now = clock_ms()
        self._retry_at = now  # the first attempt: at the first poll
        self._retry_ms = retry_min_ms
        self._tick_at = now  # uptime is counted up to here
        self._uptime_ms = 0
        self._listen_at = now  # the time listened is counted up to here
        self._listened_s = 0  # whole seconds listened (not muted) since boot
        self._listened_rem_ms = 0  # and the milliseconds past them, 0..999
        self._status_due = False
        # the clip being captured
        self.clip_id = 0
        self._seq = 0
        self._open = False  # its clip_end has not been written
        self._keep = False  # it is being written to flash
        self._live = False  # it is being streamed as it is captured
        # this connection
        self._connected_at = now
        self._accepted = False  # the receiver has acknowledged something on it
        self._sent_upto = 0  # every queued clip up to this id has gone out on it
        self._resending = 0  # the queued clip going out now
        self._unsent = False  # a queued clip may not have gone out on it yet
        self._waiting = False  # a clip that went out on it awaits its ack
        self._wait_since = 0
        # the owner's requests
        self.requests = requests  # link.requests
        self.owner_link = owner_link
        self.model_names = list(model_names)
        self.clock = clock_ms
        self.monitor = None  # request.Monitor, from the first request on
        self.speaker = speaker
        self.player = None  # play.Player, from the first play accepted on
        self._recording = False  # the clip being captured is a recording
        self._record_id = 0  # its request's id
        # counters, reported in status
        self.clips_sent = 0
        self.clips_acked = 0
        self.audio_bytes_sent = 0
        self.recordings = 0
        self.muted = False

    def connected(self):
        return self._stream is not None

    def asked(self):
        """A request is active: a monitor window, or a recording being captured (the LED
        shows it)."""
        monitor = self.monitor
        return (monitor is not None and monitor.active) or (self._open and self._recording)

    def output(self, model, p):
        """Every model invocation: its output, into the model's batch while monitoring."""
        monitor = self.monitor
        if monitor is not None and monitor.active:
            frame = monitor.add(model, p)
            if frame is not None:
                self._write(frame)

    def frame(self, pcm, level):
        """Every 10 ms frame of audio while listening (the recorder keeps the pre-roll)."""
        self.recorder.feed(pcm, level)
        self._drain()

    def poll(self):
        """Every 10 ms frame, muted or not: acks, status, resends and reconnects."""
        now = self._clock()
        if time.ticks_diff(now, self._tick_at) >= self._status_interval_ms:
            self._uptime_ms += time.ticks_diff(now, self._tick_at)
            self._tick_at = now
            self._count_listened(now)
            self._status_due = self._stream is not None
        player = self.player
        if player is not None and player.active:
            player.tick()
        if self._stream is None:
            # not while a clip is captured: an attempt (a TLS handshake above all) stalls
            # the audio loop, and that clip goes from flash once it has ended anyway
            if not self._open and time.ticks_diff(now, self._retry_at) >= 0:
                self._try_connect()
            return
        self._read()
        if self._stream is None:
            return
        if self.monitor is not None and self.monitor.due(now):
            self.monitor.end(protocol.REQ_DONE)
        if self._waiting and time.ticks_diff(now, self._wait_since) >= self._ack_timeout_ms:
            self._drop("no ack within %d ms" % self._ack_timeout_ms)
            return
        if self._unsent and not self._live:
            self._resend()
        if self._status_due:
            self._send_status()

    def detected(self, model, score):
        """A detection: tell the receiver at once if connected (a notification, not
        queued: the clip's clip_start carries the same), then start a clip unless one is
        still being captured or sent. While monitoring, the model's outputs batched so far
        go first, so the detection follows the batch whose last value detected."""
        if self._stream is not None and self.monitor is not None:
            frame = self.monitor.flush(model)
            if frame is not None:
                self._write(frame)
        if self._stream is not None:
            self._write(protocol.encode_detection(model, score, self._clock() & _U32_MASK))
        if not self.recorder.start():
            return False
        self._begin_clip(model, score, protocol.CLIP_DETECTION, 0)
        return True

    def set_muted(self, muted):
        """The mute button: ends a monitor window and a recording (REQUEST_END muted)."""
        self._count_listened(self._clock())  # up to now, in the state it was in
        self.muted = muted
        if muted and self.monitor is not None and self.monitor.active:
            self.monitor.end(protocol.REQ_MUTED)
        self.recorder.set_muted(muted)
        self._drain()

    def close(self):
        """At the end of the input (sim): finish an open clip as it stands, send what is
        queued if connected, wait a moment for the acks, send a last status and close.
        Whatever is not acknowledged stays queued on flash for the next boot."""
        if self.monitor is not None and self.monitor.active:
            self.monitor.end(protocol.REQ_CANCELLED)
        if self._open and self.recorder.capturing:
            self.recorder.set_muted(True)
            self._drain()
        while self._stream is not None and self._unsent:
            self._resend()
        deadline = time.ticks_add(time.ticks_ms(), _CLOSE_WAIT_MS)
        while self._stream is not None and self._waiting:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                break
            self._poller.poll(left)
            self._read()
        stream = self._stream
        if stream is None:
            self.outbox.stop_reading()
            if self.outbox.ids:
                self._say("link: %d clips wait on flash for the receiver" % len(self.outbox.ids))
            return
        self._send_status()
        if self._stream is None:
            return  # that write failed: dropped
        self._stream = None
        self._poller.unregister(stream)
        self._out_poller.unregister(stream)
        _close_cleanly(stream, self._rx)

    # --- the owner's requests (request.py, which handles them) ----------------------------

    def send(self, data):
        """Write a frame to the receiver (request.py); False when the connection is gone."""
        return self._write(data)

    def record(self, request_id, seconds):
        """Start a recording for a request (request.py); False while a clip is captured or
        sent, or muted."""
        if self._open or not self.recorder.start_recording(seconds * RATE_HZ):
            return False
        self.recordings += 1
        self._begin_clip("", 0, protocol.CLIP_RECORDING, request_id)
        return True

    def stop_recording(self):
        """End a recording being captured (its request is cancelled, or the link dropped):
        its clip ends at the next frame, with what was captured."""
        if self._open and self._recording:
            self.recorder.stop(CANCELLED)

    # --- the clip being captured ---------------------------------------------------------

    def _begin_clip(self, model, score, kind, request_id):
        """The recorder has started a clip: a detection's, or a recording (kind)."""
        self._seq = 0
        self._open = True
        self._keep = True
        self._live = False
        self._recording = kind == protocol.CLIP_RECORDING
        self._record_id = request_id
        try:
            self.clip_id = self.outbox.begin()
        except OSError as e:
            self._say("link: clip not stored (%s): dropped" % e)
            self.outbox.dropped += 1
            self._keep = False
            self._drain()
            return
        pre_ms = self.recorder.pre_samples * 1000 // RATE_HZ
        start = protocol.encode_clip_start(
            self.clip_id, model, score, RATE_HZ, pre_ms, kind, request_id
        )
        self._store(start)
        self._live = self._stream is not None and not self._unsent
        if self._live:
            self._write(start)
        self._drain()

    def _store(self, data):
        if not self._keep:
            return
        try:
            self.outbox.write(data)
        except OSError as e:
            self._say("link: clip %d not stored (%s): dropped" % (self.clip_id, e))
            self._keep = False
            self.outbox.abandon()

    def _drain(self):
        if not self._open:
            return
        rec = self.recorder
        enc = self._encoder
        # whole chunks while capturing; whatever is left once the clip has ended
        while rec.ready() >= CHUNK_BYTES // 2 or (rec.ready() and not rec.capturing):
            n = rec.next_chunk(enc.pcm)
            frame = enc.frame(self.clip_id, self._seq, n)
            self._seq += 1
            self._store(frame)
            if self._live and self._write(frame):
                self.audio_bytes_sent += n
        if rec.pending:
            return
        self._open = False
        reason = protocol.REASONS.index(rec.reason)
        end = protocol.encode_clip_end(self.clip_id, rec.length, reason)
        self._store(end)
        stored = self._keep
        if stored:
            self._keep = False
            try:
                self.outbox.finish(rec.length)
            except OSError as e:
                self._say("link: clip %d not stored (%s): dropped" % (self.clip_id, e))
                stored = False
        if self._live and self._write(end):
            self._sent_upto = self.clip_id
            self._went_out(0)
        elif stored:
            self._unsent = True
        self._live = False
        if self._recording:
            self._recording = False
            done = _RECORD_ENDS.get(rec.reason or CANCELLED, protocol.REQ_CANCELLED)
            self._write(protocol.encode_request_end(self._record_id, done))

    # --- the connection ------------------------------------------------------------------

    def _try_connect(self):
        try:
            stream = self._connect()
        except OSError as e:
            self._say("link: cannot connect (%s); next try in %d ms" % (e, self._retry_ms))
            self._retry_at = time.ticks_add(self._clock(), self._retry_ms)
            self._retry_ms = min(2 * self._retry_ms, self._retry_max_ms)
            return
        self._stream = stream
        self._poller.register(stream, select.POLLIN)
        self._out_poller.register(stream, select.POLLOUT)
        self._decoder = protocol.Decoder()
        self._connected_at = self._clock()
        self._accepted = False
        self._sent_upto = 0
        self._resending = 0
        self._unsent = len(self.outbox.ids) > 0
        self._waiting = False
        self._say("link: connected, %d clips queued" % len(self.outbox.ids))
        if self._write(self._hello):
            self._send_status()

    def _drop(self, reason):
        stream = self._stream
        if stream is None:
            return
        self._stream = None
        self._poller.unregister(stream)
        self._out_poller.unregister(stream)
        self.outbox.stop_reading()
        self._resending = 0
        self._live = False
        self._waiting = False
        if self.monitor is not None:
            self.monitor.stop()  # a request ends with its link
        if self.player is not None:
            self.player.stop()  # and so does a play
        self.stop_recording()
        try:
            stream.close()
        except OSError:
            pass  # it is gone either way
        now = self._clock()
        wait_ms = self._retry_ms
        if self._accepted or time.ticks_diff(now, self._connected_at) >= self._retry_max_ms:
            wait_ms = self._retry_ms = self._retry_min_ms
        else:  # closed before the receiver acknowledged anything: a failed attempt
            self._retry_ms = min(2 * self._retry_ms, self._retry_max_ms)
        self._retry_at = time.ticks_add(now, wait_ms)
        self._say(
            "link: connection lost (%s), %d clips queued; next try in %d ms"
            % (reason, len(self.outbox.ids), wait_ms)
        )

    def _write(self, data):
        """Write all of data within write_timeout_ms; False (and the connection dropped)
        when that fails. What does not fit now waits for room (the stream is non-blocking);
        a write that took nothing (None: on TLS, a record only partly out) goes again with
        the same bytes, as mbedTLS requires."""
        stream = self._stream
        if stream is None:
            return False
        view = data
        deadline = None
        try:
            while True:
                n = stream.write(view)
                if n is not None:
                    if n == len(view):
                        return True
                    if n:
                        view = memoryview(view)[n:]  # a short write: the rest
                if deadline is None:
                    deadline = time.ticks_add(time.ticks_ms(), self._write_timeout_ms)
                left_ms = time.ticks_diff(deadline, time.ticks_ms())
                if left_ms <= 0:
                    self._drop("write timed out after %d ms" % self._write_timeout_ms)
                    return False
                for _ in self._out_poller.ipoll(left_ms):
                    pass
        except OSError as e:
            self._drop("write failed: %s" % e)
            return False

    def _read(self):
        """Whatever the receiver has sent (acks, requests, audio to play), without waiting
        for more: up to _RX_READS pieces."""
        reads = 0
        while reads < _RX_READS:
            ready = False
            for _ in self._poller.ipoll(0):
                ready = True
            stream = self._stream
            if not ready or stream is None:
                return
            reads += 1
            try:
                # recv: what has arrived (readinto would wait to fill the buffer)
                data = stream.recv(_RX_BYTES)
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    self._drop("read failed: %s" % e)
                return
            if data is None:
                return  # TLS: part of a record; the rest comes with a later frame
            if not data:
                self._drop("closed by the receiver")
                return
            decoder = self._decoder
            decoder.feed(data)
            for kind, msg in decoder:
                if kind == protocol.ERR and msg.version is not None:
                    import mismatch  # its code is heap only when it happens

                    mismatch.other_version(self, msg.version)
                    return
                if kind != protocol.MSG:
                    continue
                t = msg["type"]
                if t == "ack":
                    self._acked(msg["clip_id"])
                elif t == "play_data":
                    if self.player is not None:
                        self.player.data(msg)
                elif t == "play_start" or t == "play_end":
                    import play  # at the first play: its code is heap

                    play.handle(self, msg)
                elif t == "request":
                    import request  # at the first request: its code is heap

                    request.handle(self, msg)
                elif t == "error":
                    self._say("link: the receiver says: %s" % msg["message"])
                if self._stream is None:
                    return

    def _acked(self, clip_id):
        self._accepted = True  # the backoff starts again from retry_min_ms (_drop)
        if clip_id == self._resending and clip_id in self.outbox.ids:
            # all of it went out (the receiver acks a clip after its clip_end) before the
            # read that would have ended its resend: end that here, before the ack deletes it
            self._resent()
        if not self.outbox.ack(clip_id):
            return  # not queued (any more): acknowledged before, or dropped
        self.clips_acked += 1
        self._wait_since = self._clock()
        ids = self.outbox.ids
        self._waiting = len(ids) > 0 and ids[0] <= self._sent_upto

    def _went_out(self, audio_bytes):
        """A whole clip went out on this connection; its ack is awaited."""
        self.clips_sent += 1
        self.audio_bytes_sent += audio_bytes
        if not self._waiting:
            self._waiting = True
            self._wait_since = self._clock()

    def _resend(self):
        """The next whole frames (about _RESEND_BYTES) of the oldest queued clip that has
        not gone out on this connection."""
        box = self.outbox
        if not self._resending:
            clip_id = 0
            for queued in box.ids:
                if queued > self._sent_upto:
                    clip_id = queued
                    break
            if not clip_id:
                self._unsent = False
                return
            self._resending = clip_id
            try:
                box.start_reading(clip_id)
            except OSError as e:
                self._unreadable(e)
                return
        elif box.reading != self._resending:
            # dropped from the full queue while going out: its frames on the wire stop short
            self._drop("clip %d dropped from the full queue while sent" % self._resending)
            return
        sent = 0
        while sent < _RESEND_BYTES:
            try:
                frame = self._next_frame()
            except OSError as e:
                self._unreadable(e)
                return
            if frame is None:
                self._resent()
                return
            if not self._write(frame):
                return  # the connection is dropped
            sent += len(frame)

    def _next_frame(self):
        """The next frame of the clip being resent, as a view of _resend_buf; None at the
        end of the clip. Views are made once per frame size (a clip's data frames share
        one), so this allocates nothing per audio frame."""
        box = self.outbox
        got = box.read(self._resend_head)
        if not got:
            return None
        buf = self._resend_buf
        size = protocol.HEADER_SIZE + (buf[4] | buf[5] << 8) + protocol.CRC_SIZE
        if got < protocol.HEADER_SIZE or size > _RESEND_BYTES:
            raise OSError("not a frame of this device's")
        if size != self._resend_size:
            self._resend_size = size
            self._resend_body = self._resend_view[protocol.HEADER_SIZE : size]
            self._resend_frame = self._resend_view[:size]
        if box.read(self._resend_body) < size - protocol.HEADER_SIZE:
            raise OSError("its last frame is cut short")
        return self._resend_frame

    def _resent(self):
        """The clip being resent has gone out whole."""
        box = self.outbox
        clip_id = self._resending
        box.stop_reading()
        self._resending = 0
        self._sent_upto = clip_id
        self._went_out(2 * box.samples(clip_id))

    def _unreadable(self, error):
        """The flash fails to read the clip being resent: it is dropped (what of it went
        out is an unfinished clip the receiver does not keep)."""
        clip_id = self._resending
        self._resending = 0
        self.outbox.discard(clip_id, "cannot read it (%s)" % error)

    def _count_listened(self, now):
        """Add the time listened since the last count (none while muted)."""
        if not self.muted:
            ms = self._listened_rem_ms + time.ticks_diff(now, self._listen_at)
            self._listened_s += ms // _MS_PER_S
            self._listened_rem_ms = ms % _MS_PER_S
        self._listen_at = now

    def listened(self):
        """The time listened (not muted) since boot: (whole seconds, milliseconds past them)."""
        self._count_listened(self._clock())
        return self._listened_s, self._listened_rem_ms

    def _send_status(self):
        self._status_due = False
        box = self.outbox
        now = self._clock()
        uptime_ms = self._uptime_ms + time.ticks_diff(now, self._tick_at)
        listened_s, listened_rem_ms = self.listened()
        self._write(
            protocol.encode_status(
                uptime_ms % _U32_WRAP,
                self.clips_sent,
                self.clips_acked,
                box.dropped,
                min(len(box.ids), _QUEUED_MAX),
                self.muted,
                self.audio_bytes_sent % _U32_WRAP,
                gc.mem_free(),
                self.monitor.seconds() if self.monitor is not None else 0,
                self.recordings,
                listened_s,
                listened_rem_ms,
            )
        )


def _close_cleanly(stream, scratch):
    """Read what is left (acks) before closing, so the close is a clean FIN rather than a
    reset that could discard the last frames on their way."""
    try:
        stream.setblocking(False)
        while stream.readinto(scratch):
            pass
    except OSError:
        pass  # nothing more waiting, or the connection is gone
    stream.close()
