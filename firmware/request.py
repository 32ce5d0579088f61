# The owner's requests (protocol REQUEST, docs/protocol.md): sent by the receiver on the
# owner's PC, explicit and time-limited, honoured only where the owner is authenticated.
#
# Who may ask: link.requests in config.json (config.py).
#   "paired" (the default): over TLS with the paired secret (the device talks only to the
#            receiver whose certificate it pins, and proved with its secret that it is the
#            paired device), and over the USB serial console (the cable runs to the owner's
#            PC); refused over plain TCP, which anyone on the network can answer or read;
#   "any":   plain TCP too (`wakeward sim --allow-requests`, a test bench);
#   "none":  never.
#
# What may be asked (handle() decides, link.py and Monitor carry it out):
#   MONITOR  the models' outputs (uint8, one per invocation, 30 ms apart) in OUTPUTS
#            batches, for at most MAX_MONITOR_S per request; the host renews with a new
#            request, which replaces the active one (REQUEST_END "replaced");
#   RECORD   at most MAX_RECORD_S of audio from the next frame on, as a recording clip
#            (clip_start kind CLIP_RECORDING), queued on flash and acknowledged like any
#            clip.
# A request ends when its time is up, when the link drops, when the device is muted, or
# when the host cancels it (seconds 0). While one is active the LED blinks (listen.py), and
# status counts them: monitor_s (seconds monitored since boot) and recordings.
#
# Nothing here allocates per model output: each model's batch is a preallocated OUTPUTS
# frame (OutputsFrame), written out whole once it is full. Allocations happen once per
# event: a request, a batch cut short (a detection, the end of a window). This module runs
# on the device only, and link.py imports it at the first request (its code is heap).
import struct
import time

import protocol
from crc import crc32_into
from micropython import const

PAIRED = "paired"
ANY = "any"
NONE = "none"
POLICIES = (PAIRED, ANY, NONE)
MAX_MONITOR_S = const(600)
MAX_RECORD_S = const(10)
_CLOCK_MASK = const(0x3FFFFFFF)  # the device clock (ticks_ms) wraps at 2**30 anyway
_MS_PER_S = const(1000)
_NAME_AT = const(8)  # protocol.HEADER_SIZE + the name's u16 length
_TIME_BYTES = const(5)  # time_ms u32, then the values' u8 length


def refusal(policy, owner_link):
    """Why this link does not honour requests under `policy` (link.requests), or None when
    it does. owner_link: the link is TLS with the paired secret, or the USB serial console."""
    if policy == NONE:
        return 'requests are off on this device (link.requests is "none")'
    if policy == PAIRED and not owner_link:
        return (
            "this link is plain TCP, not the paired owner's (TLS with the device's secret, "
            'or USB); link.requests "any" in config.json allows it'
        )
    return None


def handle(link, msg):
    """A REQUEST from the receiver on `link` (link.Link): honoured, or refused with an
    ERROR saying why and its REQUEST_END."""
    request_id = msg["request_id"]
    what = msg["what"]
    seconds = msg["seconds"]
    if link.monitor is None:
        link.monitor = Monitor(link.model_names, link.clock, link.send)
    monitor = link.monitor
    if seconds == 0:  # cancels the active request of that kind
        if what == protocol.MONITOR and monitor.active:
            monitor.end(protocol.REQ_CANCELLED)
        elif what == protocol.RECORD:
            link.stop_recording()
        return
    why = refusal(link.requests, link.owner_link)
    reason = protocol.REQ_REFUSED
    if why is None and link.muted:
        why = "the speaker is muted"
        reason = protocol.REQ_MUTED
    elif why is None and what == protocol.MONITOR:
        why = monitor.refusal(seconds)
    elif why is None and seconds > MAX_RECORD_S:
        why = "record at most %d s per request (asked %d s)" % (MAX_RECORD_S, seconds)
    if why is None and what == protocol.MONITOR:
        link.say("link: request %d: monitor for %d s" % (request_id, seconds))
        replaced = monitor.start(request_id, seconds)
        if replaced is not None:
            link.send(protocol.encode_request_end(replaced, protocol.REQ_REPLACED))
        return
    if why is None:
        if link.record(request_id, seconds):
            link.say("link: request %d: record for %d s" % (request_id, seconds))
            return
        why = "a clip is being captured; ask again once it has gone"
        reason = protocol.REQ_BUSY
    message = "request %d refused: %s" % (request_id, why)
    link.say("link: " + message)
    link.send(protocol.encode_error(protocol.ERR_REFUSED, message))
    link.send(protocol.encode_request_end(request_id, reason))


class Monitor:
    """The window of a monitor request: each model's outputs, batched per model, written
    with `write` (link.Link.send)."""

    def __init__(self, model_names, clock_ms, write):
        self._clock = clock_ms
        self._write = write
        self._batches = {}
        for name in model_names:
            self._batches[name] = OutputsFrame(name)
        self.active = False
        self.request_id = 0  # the active request's
        self._since = 0  # device clock at the start of the window
        self._until = 0  # device clock at its end
        self._total_ms = 0  # of the windows that have ended, since boot

    def refusal(self, seconds):
        """Why a monitor request for `seconds` is not honoured, or None."""
        if not self._batches:
            return "there are no wake-word models on this device"
        if seconds > MAX_MONITOR_S:
            return "monitor for at most %d s per request (asked %d s)" % (MAX_MONITOR_S, seconds)
        return None

    def start(self, request_id, seconds):
        """Monitor for `seconds` from now; the id of the request this one replaces, or
        None. A renewal keeps the batches going."""
        now = self._clock()
        replaced = self.request_id if self.active else None
        if not self.active:
            self.active = True
            self._since = now
        self.request_id = request_id
        self._until = time.ticks_add(now, seconds * _MS_PER_S)
        return replaced

    def due(self, now):
        """The window's time is up."""
        return self.active and time.ticks_diff(now, self._until) >= 0

    def add(self, model, p):
        """A model's output at an invocation: the batch's frame once it is full, else
        None. Allocates nothing."""
        batch = self._batches.get(model)
        if batch is None or not self.active:
            return None
        if batch.add(p, self._clock() & _CLOCK_MASK):
            return batch.frame()
        return None

    def flush(self, model):
        """The frame of the model's batch so far (a detection: its last value is the
        output that detected), or None when it is empty."""
        batch = self._batches.get(model)
        if batch is None or not batch.count:
            return None
        return batch.frame()

    def end(self, reason):
        """The window ends: what is batched goes out, then its REQUEST_END."""
        if not self.active:
            return
        request_id = self.request_id
        for batch in self._batches.values():
            if batch.count:
                self._write(batch.frame())
        self.stop()
        self._write(protocol.encode_request_end(request_id, reason))

    def stop(self):
        """The window is over; batches not flushed are dropped."""
        if not self.active:
            return
        self.active = False
        self._total_ms += time.ticks_diff(self._clock(), self._since)
        for batch in self._batches.values():
            batch.count = 0

    def seconds(self):
        """Seconds monitored since boot, the active window's so far included."""
        total = self._total_ms
        if self.active:
            total += time.ticks_diff(self._clock(), self._since)
        return total // _MS_PER_S


class OutputsFrame:
    """One model's OUTPUTS frame (protocol.py's layout), preallocated: `add(value, time_ms)`
    puts the model's next output (0..255) into the batch and keeps time_ms (the device
    clock, below 2**30) when it is the batch's first; it returns True once the batch holds
    max_values. `frame()` then returns a memoryview of the whole frame to write out (valid
    until the next call) and starts the next batch. Full batches allocate nothing; a batch
    cut short (frame() with fewer values: the end of a window, a detection) costs one view.
    """

    def __init__(self, model, max_values=protocol.OUTPUTS_BATCH):
        name = model.encode()
        self.max_values = max_values
        self._time_at = _NAME_AT + len(name)
        self._values_at = self._time_at + _TIME_BYTES
        size = self._values_at + max_values
        if size - protocol.HEADER_SIZE > protocol.MAX_PAYLOAD:
            raise protocol.ProtocolError("outputs.model: %d bytes, too long" % len(name))
        self.buf = bytearray(size + protocol.CRC_SIZE)
        self._mv = memoryview(self.buf)
        buf = self.buf
        buf[0:2] = protocol.SYNC
        struct.pack_into("<BBHH", buf, 2, protocol.VERSION, protocol.OUTPUTS, 0, len(name))
        buf[_NAME_AT : self._time_at] = name
        self.count = 0  # values in the batch so far
        self.time_ms = 0  # the device clock at the batch's first value
        self._n = max_values  # the values in the frame its view is cut for
        self._frame = self._mv[0 : size + protocol.CRC_SIZE]

    def add(self, value, time_ms):
        """The model's next output; True when the batch is full (send frame())."""
        if self.count == 0:
            self.time_ms = time_ms
        self.buf[self._values_at + self.count] = value
        self.count += 1
        return self.count >= self.max_values

    def frame(self):
        """The OUTPUTS frame of the batch so far; the next add() starts a new batch."""
        n = self.count
        end = self._values_at + n
        if n != self._n:
            self._frame = self._mv[0 : end + protocol.CRC_SIZE]
            self._n = n
        buf = self.buf
        struct.pack_into("<H", buf, 4, end - protocol.HEADER_SIZE)
        struct.pack_into("<IB", buf, self._time_at, self.time_ms, n)
        crc32_into(buf, end, end)
        self.count = 0
        return self._frame
