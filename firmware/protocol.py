# The wakeward wire protocol, shared unmodified by the device (MicroPython) and the receiver
# on the PC (CPython, which loads this file by path). Schema and rules: docs/protocol.md.
#
# A frame on the serial line:
#
#   offset  size  field
#   0       2     sync F5 C1 (bytes that never occur in UTF-8 text, so not in log lines)
#   2       1     protocol version (VERSION)
#   3       1     message type
#   4       2     payload length n, little-endian, at most MAX_PAYLOAD
#   6       n     payload (the message's fields, little-endian, see SCHEMA)
#   6+n     4     CRC-32 (binascii.crc32) of bytes 0 .. 6+n-1, little-endian
#
# Malformed input never decodes to None: decode() raises ProtocolError, and the incremental
# Decoder yields ("error", ProtocolError) for a frame that arrived intact (CRC good) but
# cannot be understood (another version, unknown type, bad fields). Bytes that are not part
# of an intact frame (text logs, garbage, damaged or truncated frames) come out as
# ("log", line) items and the decoder resynchronises on the next sync.
import binascii
import struct

try:
    from micropython import const
except ImportError:  # CPython: the receiver loads this module by path

    def const(x):  # type: ignore[misc]
        return x


# 2: status gained clips_acked and audio_bytes; 3: hello gained auth; 4: the owner's requests
# (request, outputs, request_end), clip_start gained kind and request_id, clip_end the reason
# cancelled, status gained monitor_s and recordings; 5: audio to play on the speaker
# (play_start, play_data, play_end from the receiver, played from the device); 6: status gained
# listened_s and listened_rem_ms (an older receiver refuses trailing fields: a bump)
VERSION = const(6)
MAX_PAYLOAD = const(4096)
SYNC = b"\xf5\xc1"
_SYNC0 = const(0xF5)
_SYNC1 = const(0xC1)
HEADER_SIZE = const(6)
CRC_SIZE = const(4)
_MAX_LINE = const(1024)
_U8 = const(0xFF)
_U16 = const(0xFFFF)
_U32 = 0xFFFFFFFF  # not a const: a long int on 32-bit ports

# Message types (byte 3).
HELLO = const(1)
DETECTION = const(2)
CLIP_START = const(3)
CLIP_DATA = const(4)
CLIP_END = const(5)
STATUS = const(6)
ACK = const(7)
ERROR = const(8)
REQUEST = const(9)
OUTPUTS = const(10)
REQUEST_END = const(11)
# 12 .. 15, audio to play (PLAY_START, PLAY_DATA, PLAY_END, PLAYED): protocol_play.py's,
# merged into SCHEMA at the first one received or sent (_load_play), so a device that plays
# nothing keeps their heap; the receiver on the PC loads both files (receiver.load_protocol).
_PLAY_FIRST = const(12)
_PLAY_LAST = const(15)

# CLIP_END reasons.
END_OF_SPEECH = const(0)
MAX_LENGTH = const(1)
MUTED = const(2)
OVERRUN = const(3)
CANCELLED = const(4)  # a recording whose request ended early (the link dropped, or cancelled)
REASONS = ("end_of_speech", "max_length", "muted", "overrun", "cancelled")

# CLIP_START kinds.
CLIP_DETECTION = const(0)
CLIP_RECORDING = const(1)  # asked for by a REQUEST: no model, no score, no pre-roll
KINDS = ("detection", "recording")

# REQUEST: what the owner asks for (host -> device), and why a request ended (REQUEST_END).
MONITOR = const(1)  # the models' outputs (OUTPUTS) for `seconds`
RECORD = const(2)  # `seconds` of audio from now on, as a recording clip
WHATS = ("", "monitor", "record")
REQ_DONE = const(0)  # its time is up (a recording: its clip has ended)
REQ_REFUSED = const(1)  # not honoured (an ERROR with ERR_REFUSED says why)
REQ_BUSY = const(2)  # not honoured now: a clip is being captured; ask again later
REQ_CANCELLED = const(3)  # by the host (seconds 0), or the device stopped
REQ_MUTED = const(4)  # the mute button: at once, or while the request was active
REQ_REPLACED = const(5)  # a newer request of the same kind took over (a monitor renewal)
REQUEST_ENDS = ("done", "refused", "busy", "cancelled", "muted", "replaced")
OUTPUTS_BATCH = const(10)  # model outputs per OUTPUTS message (300 ms of invocations)
INVOCATION_MS = const(30)  # the time between a model's consecutive outputs

# ERROR codes (either direction).
ERR_VERSION = const(1)
ERR_TYPE = const(2)
ERR_PAYLOAD = const(3)
ERR_QUEUE_FULL = const(4)
ERR_INTERNAL = const(5)
ERR_REFUSED = const(6)  # the receiver does not accept this device (not paired, revoked),
# or the device does not honour a request (the message says why)

# The longest clip a device sends, pre-roll included (config.py's clip.max_ms is at most
# this); a receiver refuses a clip that goes on longer.
MAX_CLIP_MS = const(60000)

# CLIP_DATA payload: clip_id u32, seq u32, then int16 LE samples.
_CLIP_DATA_HEAD = const(8)
MAX_PCM_BYTES = const(4088)  # MAX_PAYLOAD - _CLIP_DATA_HEAD

# Decoder item kinds.
LOG = "log"
MSG = "msg"
ERR = "error"

# Field kinds: B u8, H u16, I u32, s string (u16 byte length + UTF-8),
# L list of strings (u8 count + strings), y bytes (u8 length + raw bytes),
# p int16 PCM bytes (the rest of the payload).
SCHEMA = {
    HELLO: (
        "hello",
        (
            ("device_id", "s"),
            ("firmware", "s"),
            ("protocol", "B"),
            ("models", "L"),
            ("auth", "y"),
        ),
    ),
    DETECTION: ("detection", (("model", "s"), ("score", "B"), ("time_ms", "I"))),
    CLIP_START: (
        "clip_start",
        (
            ("clip_id", "I"),
            ("model", "s"),
            ("score", "B"),
            ("rate_hz", "I"),
            ("pre_roll_ms", "H"),
            ("kind", "B"),
            ("request_id", "I"),
        ),
    ),
    CLIP_DATA: ("clip_data", (("clip_id", "I"), ("seq", "I"), ("pcm", "p"))),
    CLIP_END: ("clip_end", (("clip_id", "I"), ("samples", "I"), ("reason", "B"))),
    STATUS: (
        "status",
        (
            ("uptime_ms", "I"),
            ("clips_sent", "I"),
            ("clips_acked", "I"),
            ("clips_dropped", "I"),
            ("queued", "B"),
            ("muted", "B"),
            ("audio_bytes", "I"),
            ("free_heap", "I"),
            ("monitor_s", "I"),
            ("recordings", "I"),
            ("listened_s", "I"),
            ("listened_rem_ms", "H"),
        ),
    ),
    ACK: ("ack", (("clip_id", "I"),)),
    ERROR: ("error", (("code", "B"), ("message", "s"))),
    REQUEST: ("request", (("what", "B"), ("seconds", "H"), ("request_id", "I"))),
    OUTPUTS: ("outputs", (("model", "s"), ("time_ms", "I"), ("values", "y"))),
    REQUEST_END: ("request_end", (("request_id", "I"), ("reason", "B"))),
}
# Fields that name one of a list of values: (type, field) -> the names, by value.
_NAMED = {
    (CLIP_END, "reason"): REASONS,
    (CLIP_START, "kind"): KINDS,
    (REQUEST, "what"): WHATS,
    (REQUEST_END, "reason"): REQUEST_ENDS,
}
_TYPES = {}
for _t in SCHEMA:
    _TYPES[SCHEMA[_t][0]] = _t
_LIMITS = {"B": _U8, "H": _U16, "I": _U32}


class ProtocolError(ValueError):
    version = None  # type: int | None  # a frame of another protocol version: the peer's


def _check_int(name, value, kind):
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError("%s: expected an integer, got %r" % (name, value))
    if value < 0 or value > _LIMITS[kind]:
        raise ProtocolError("%s: %d out of range 0..%d" % (name, value, _LIMITS[kind]))


def _check_str(name, value):
    if not isinstance(value, str):
        raise ProtocolError("%s: expected a string, got %r" % (name, value))
    return value.encode()


def _load_play():
    """Merge protocol_play.py's messages into SCHEMA (the device: at the first one received
    or sent; the receiver on the PC has them from the start)."""
    import protocol  # this module: the device loads these files by name
    import protocol_play

    protocol_play.register(protocol)


def encode(msg_type, payload, version=VERSION):
    """One frame (bytes) carrying payload (bytes) as message type msg_type (in another
    protocol version's header: encode_error only)."""
    if msg_type not in SCHEMA:
        raise ProtocolError("type: unknown message type %r" % (msg_type,))
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ProtocolError("length: payload %d bytes exceeds the maximum %d" % (n, MAX_PAYLOAD))
    frame = bytearray(HEADER_SIZE + n + CRC_SIZE)
    frame[0] = _SYNC0
    frame[1] = _SYNC1
    struct.pack_into("<BBH", frame, 2, version, msg_type, n)
    frame[HEADER_SIZE : HEADER_SIZE + n] = payload
    crc = binascii.crc32(payload, binascii.crc32(frame[0:HEADER_SIZE]))
    struct.pack_into("<I", frame, HEADER_SIZE + n, crc)
    return bytes(frame)


def encode_payload(msg_type, fields):
    """The payload bytes of a message from a dict of its fields (names as in SCHEMA)."""
    if msg_type not in SCHEMA:
        raise ProtocolError("type: unknown message type %r" % (msg_type,))
    name, spec = SCHEMA[msg_type]
    parts = []
    for field, kind in spec:
        if field not in fields:
            raise ProtocolError("%s.%s: missing" % (name, field))
        value = fields[field]
        where = name + "." + field
        if kind == "s":
            raw = _check_str(where, value)
            _check_int(where + " length", len(raw), "H")
            parts.append(struct.pack("<H", len(raw)))
            parts.append(raw)
        elif kind == "L":
            if not isinstance(value, (list, tuple)):
                raise ProtocolError("%s: expected a list of strings, got %r" % (where, value))
            _check_int(where + " count", len(value), "B")
            parts.append(struct.pack("<B", len(value)))
            for item in value:
                raw = _check_str(where, item)
                _check_int(where + " length", len(raw), "H")
                parts.append(struct.pack("<H", len(raw)))
                parts.append(raw)
        elif kind == "y":
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise ProtocolError("%s: expected bytes, got %r" % (where, value))
            _check_int(where + " length", len(value), "B")
            parts.append(struct.pack("<B", len(value)))
            parts.append(bytes(value))
        elif kind == "p":
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise ProtocolError("%s: expected bytes of int16 samples" % where)
            if len(value) & 1:
                raise ProtocolError(
                    "%s: odd length %d, expected int16 samples" % (where, len(value))
                )
            parts.append(bytes(value))
        else:
            _check_int(where, value, kind)
            _check_named(msg_type, field, where, value)
            parts.append(struct.pack("<" + kind, value))
    for field in fields:
        if field != "type" and not _has_field(spec, field):
            raise ProtocolError("%s.%s: not a field of this message" % (name, field))
    payload = b"".join(parts)
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(
            "%s: payload %d bytes exceeds the maximum %d" % (name, len(payload), MAX_PAYLOAD)
        )
    return payload


def _has_field(spec, field):
    for f, _ in spec:
        if f == field:
            return True
    return False


def encode_message(msg):
    """One frame from a message dict: {"type": "clip_end", "clip_id": 7, ...}."""
    name = msg.get("type")
    if name not in _TYPES:
        raise ProtocolError("type: unknown message type %r" % (name,))
    t = _TYPES[name]
    return encode(t, encode_payload(t, msg))


def decode_payload(msg_type, payload):
    """The message dict of a payload; ProtocolError when it does not fit the schema."""
    if msg_type not in SCHEMA:
        if msg_type < _PLAY_FIRST or msg_type > _PLAY_LAST or _PLAY_FIRST in SCHEMA:
            raise ProtocolError("type: unknown message type %d" % msg_type)
        _load_play()
    name, spec = SCHEMA[msg_type]
    msg = {"type": name}  # type: dict
    at = 0
    n = len(payload)
    for field, kind in spec:
        where = name + "." + field
        if kind == "p":
            if (n - at) & 1:
                raise ProtocolError("%s: odd length %d, expected int16 samples" % (where, n - at))
            msg[field] = bytes(payload[at:])
            at = n
        elif kind == "s":
            msg[field], at = _read_str(payload, at, where)
        elif kind == "y":
            if at + 1 > n:
                raise ProtocolError("%s: truncated" % where)
            size = payload[at]
            at += 1
            if at + size > n:
                raise ProtocolError("%s: truncated" % where)
            msg[field] = bytes(payload[at : at + size])
            at += size
        elif kind == "L":
            if at + 1 > n:
                raise ProtocolError("%s: truncated" % where)
            count = payload[at]
            at += 1
            items = []
            for _ in range(count):
                item, at = _read_str(payload, at, where)
                items.append(item)
            msg[field] = items
        else:
            size = struct.calcsize("<" + kind)
            if at + size > n:
                raise ProtocolError("%s: truncated" % where)
            msg[field] = struct.unpack_from("<" + kind, payload, at)[0]
            at += size
    if at != n:
        raise ProtocolError("%s: %d bytes after the last field" % (name, n - at))
    for field, _ in spec:
        _check_named(msg_type, field, name + "." + field, msg[field])
    return msg


def _check_named(msg_type, field, where, value):
    """A field that names one of a list of values (_NAMED) must hold one of them."""
    names = _NAMED.get((msg_type, field))
    if names is not None and (value >= len(names) or not names[value]):
        raise ProtocolError("%s: unknown %s %d" % (where, field, value))


def _read_str(payload, at, where):
    if at + 2 > len(payload):
        raise ProtocolError("%s: truncated" % where)
    size = struct.unpack_from("<H", payload, at)[0]
    at += 2
    if at + size > len(payload):
        raise ProtocolError("%s: truncated" % where)
    try:
        text = bytes(payload[at : at + size]).decode()
    except UnicodeError:
        raise ProtocolError("%s: not UTF-8" % where) from None
    return text, at + size


def decode(frame):
    """The message dict of exactly one complete frame; ProtocolError otherwise."""
    n = len(frame)
    if n < HEADER_SIZE + CRC_SIZE:
        raise ProtocolError("frame: %d bytes, shorter than a header and CRC" % n)
    if frame[0] != _SYNC0 or frame[1] != _SYNC1:
        raise ProtocolError("sync: frame does not start with F5 C1")
    version, msg_type, length = struct.unpack_from("<BBH", frame, 2)
    if length > MAX_PAYLOAD:
        raise ProtocolError("length: %d exceeds the maximum %d" % (length, MAX_PAYLOAD))
    if n != HEADER_SIZE + length + CRC_SIZE:
        raise ProtocolError("length: header says %d payload bytes, frame has %d" % (length, n - 10))
    want = struct.unpack_from("<I", frame, n - CRC_SIZE)[0]
    if binascii.crc32(bytes(frame[0 : n - CRC_SIZE])) != want:
        raise ProtocolError("crc: frame damaged (CRC-32 mismatch)")
    return _message(version, msg_type, frame[HEADER_SIZE : HEADER_SIZE + length])


def _message(version, msg_type, payload):
    if version != VERSION:
        e = ProtocolError(
            "version: frame is protocol version %d, this end speaks %d" % (version, VERSION)
        )
        e.version = version
        raise e
    return decode_payload(msg_type, payload)


# Typed helpers (allocate; fine for control messages, not for streaming audio).


def encode_hello(device_id, firmware, models, auth=b""):
    """auth: the device's secret (TLS links only; docs/protocol.md), else empty."""
    return encode_message(
        {
            "type": "hello",
            "device_id": device_id,
            "firmware": firmware,
            "protocol": VERSION,
            "models": models,
            "auth": auth,
        }
    )


def encode_detection(model, score, time_ms):
    return encode_message({"type": "detection", "model": model, "score": score, "time_ms": time_ms})


def encode_clip_start(
    clip_id, model, score, rate_hz, pre_roll_ms, kind=CLIP_DETECTION, request_id=0
):
    """A detection clip's start (kind CLIP_DETECTION, request_id 0), or a recording's
    (CLIP_RECORDING: model "", score 0, pre_roll_ms 0, the request's id)."""
    return encode_message(
        {
            "type": "clip_start",
            "clip_id": clip_id,
            "model": model,
            "score": score,
            "rate_hz": rate_hz,
            "pre_roll_ms": pre_roll_ms,
            "kind": kind,
            "request_id": request_id,
        }
    )


def encode_clip_data(clip_id, seq, pcm):
    return encode_message({"type": "clip_data", "clip_id": clip_id, "seq": seq, "pcm": pcm})


def encode_clip_end(clip_id, samples, reason):
    return encode_message(
        {"type": "clip_end", "clip_id": clip_id, "samples": samples, "reason": reason}
    )


def encode_status(
    uptime_ms,
    clips_sent,
    clips_acked,
    clips_dropped,
    queued,
    muted,
    audio_bytes,
    free_heap,
    monitor_s=0,
    recordings=0,
    listened_s=0,
    listened_rem_ms=0,
):
    """listened_s, listened_rem_ms: the time listened (not muted) since boot, as whole seconds
    and the milliseconds past them (0..999)."""
    return encode_message(
        {
            "type": "status",
            "uptime_ms": uptime_ms,
            "clips_sent": clips_sent,
            "clips_acked": clips_acked,
            "clips_dropped": clips_dropped,
            "queued": queued,
            "muted": 1 if muted else 0,
            "audio_bytes": audio_bytes,
            "free_heap": free_heap,
            "monitor_s": monitor_s,
            "recordings": recordings,
            "listened_s": listened_s,
            "listened_rem_ms": listened_rem_ms,
        }
    )


def encode_ack(clip_id):
    return encode_message({"type": "ack", "clip_id": clip_id})


def encode_error(code, message, version=VERSION):
    """An ERROR frame; `version`: another protocol version's header (a refusal of an
    older or newer peer, which can decode it: ERROR's fields are the same in every
    version)."""
    return encode(ERROR, encode_payload(ERROR, {"code": code, "message": message}), version)


def encode_request(what, seconds, request_id):
    """The owner's request (host -> device): MONITOR or RECORD for `seconds`; 0 cancels
    the active request of that kind."""
    return encode_message(
        {"type": "request", "what": what, "seconds": seconds, "request_id": request_id}
    )


def encode_outputs(model, time_ms, values):
    return encode_message({"type": "outputs", "model": model, "time_ms": time_ms, "values": values})


def encode_request_end(request_id, reason):
    return encode_message({"type": "request_end", "request_id": request_id, "reason": reason})


class ClipDataEncoder:
    """CLIP_DATA frames in one preallocated buffer, without allocating per frame.

    Fill `pcm` (a memoryview of the payload's sample area, max_bytes long) with int16 LE
    samples, e.g. `mic.readinto(enc.pcm)`, or copy them in with `put`; then
    `frame(clip_id, seq, nbytes)` returns a memoryview of the whole frame to write out.
    The view stays valid until the next call; a new nbytes costs one view allocation.
    On MicroPython the CRC is written by crc.crc32_into (binascii.crc32 returns a long int,
    a heap allocation on the 32-bit device, when the CRC is >= 2**30); on CPython, where
    that module's viper code cannot run, binascii does it.
    """

    def __init__(self, max_bytes=MAX_PCM_BYTES):
        if max_bytes <= 0 or max_bytes > MAX_PCM_BYTES or max_bytes & 1:
            raise ProtocolError(
                "max_bytes: %d, expected an even size 2..%d" % (max_bytes, MAX_PCM_BYTES)
            )
        self.max_bytes = max_bytes
        self.buf = bytearray(HEADER_SIZE + _CLIP_DATA_HEAD + max_bytes + CRC_SIZE)
        self._mv = memoryview(self.buf)
        start = HEADER_SIZE + _CLIP_DATA_HEAD
        self.pcm = self._mv[start : start + max_bytes]
        self.buf[0] = _SYNC0
        self.buf[1] = _SYNC1
        self._nbytes = -1
        self._body = self._mv[0:0]
        self._frame = self._mv[0:0]
        self._crc32_into = None
        try:
            import crc

            self._crc32_into = crc.crc32_into
        except ImportError:  # CPython: no viper
            pass

    def put(self, samples):
        """Copy int16 LE sample bytes into the payload; returns their length."""
        n = len(samples)
        if n > self.max_bytes:
            raise ProtocolError("pcm: %d bytes exceeds this encoder's %d" % (n, self.max_bytes))
        start = HEADER_SIZE + _CLIP_DATA_HEAD
        self.buf[start : start + n] = samples
        return n

    def frame(self, clip_id, seq, nbytes):
        """The frame for clip_id/seq carrying the first nbytes of `pcm`."""
        if nbytes < 0 or nbytes > self.max_bytes or nbytes & 1:
            raise ProtocolError(
                "pcm: %d bytes, expected an even size 0..%d" % (nbytes, self.max_bytes)
            )
        if clip_id < 0 or clip_id > _U32:
            raise ProtocolError("clip_data.clip_id: %d out of range" % clip_id)
        if seq < 0 or seq > _U32:
            raise ProtocolError("clip_data.seq: %d out of range" % seq)
        if nbytes != self._nbytes:
            end = HEADER_SIZE + _CLIP_DATA_HEAD + nbytes
            self._body = self._mv[0:end]
            self._frame = self._mv[0 : end + CRC_SIZE]
            self._nbytes = nbytes
        buf = self.buf
        struct.pack_into(
            "<BBHII", buf, 2, VERSION, CLIP_DATA, _CLIP_DATA_HEAD + nbytes, clip_id, seq
        )
        end = HEADER_SIZE + _CLIP_DATA_HEAD + nbytes
        if self._crc32_into is not None:
            self._crc32_into(buf, end, end)
        else:
            struct.pack_into("<I", buf, end, binascii.crc32(self._body))
        return self._frame


class Decoder:
    """Incremental decoder: feed(data) bytes as they arrive, then iterate over the items
    completed so far, in stream order:

    ("msg", dict)              an intact frame's message, e.g. {"type": "ack", "clip_id": 7}
    ("log", bytes)             a line of bytes between frames (newline and CR stripped):
                               device log text, or garbage and damaged frames
    ("error", ProtocolError)   an intact frame (CRC good) this end cannot understand:
                               another protocol version, an unknown type, bad fields

    A candidate frame whose length exceeds MAX_PAYLOAD or whose CRC fails is not a frame:
    its first byte goes to the text and the search for the next sync resumes one byte on,
    so no intact frame after it is lost. Call finish() at the end of the stream to flush a
    held partial line and give up on a frame that will never complete.
    """

    def __init__(self):
        self._buf = bytearray()
        self._pos = 0
        self._line = bytearray()
        self._out = []
        self._final = False
        self.rejected = 0  # sync bytes that did not start an intact frame

    def feed(self, data):
        buf = self._buf
        if self._pos > 4096 and self._pos * 2 > len(buf):
            buf[0 : self._pos] = b""
            self._pos = 0
        buf.extend(data)

    def finish(self):
        self._final = True

    def __iter__(self):
        return self

    def __next__(self):
        if not self._out:
            self._parse()
            if not self._out:
                raise StopIteration
        return self._out.pop(0)

    def _text(self, start, end):
        # Bytes buf[start:end] are not a frame: add them to the current line.
        buf = self._buf
        while start < end:
            nl = buf.find(b"\n", start, end)
            if nl < 0:
                self._line.extend(buf[start:end])
                if len(self._line) >= _MAX_LINE:
                    self._flush_line()
                return
            self._line.extend(buf[start:nl])
            self._flush_line(True)
            start = nl + 1

    def _flush_line(self, newline=False):
        line = self._line
        if not line and not newline:
            return
        if line and line[-1] == 0x0D:
            line = line[:-1]
        self._out.append((LOG, bytes(line)))
        self._line = bytearray()

    def _parse(self):
        buf = self._buf
        final = self._final
        while not self._out:
            pos = self._pos
            end = len(buf)
            p = buf.find(SYNC, pos)
            if p < 0:
                # Keep a trailing first sync byte: its second byte may be on its way.
                keep = 1 if end > pos and buf[end - 1] == _SYNC0 and not final else 0
                self._text(pos, end - keep)
                self._pos = end - keep
                if final:
                    self._flush_line()
                return
            if p > pos:
                self._text(pos, p)
                self._pos = p
                continue
            if end - p < HEADER_SIZE:
                if final:
                    self._reject(p)
                    continue
                return
            version, msg_type, length = struct.unpack_from("<BBH", buf, p + 2)
            if length > MAX_PAYLOAD:
                self._reject(p)
                continue
            stop = p + HEADER_SIZE + length
            if end < stop + CRC_SIZE:
                if final:
                    self._reject(p)
                    continue
                return
            want = struct.unpack_from("<I", buf, stop)[0]
            if binascii.crc32(buf[p:stop]) != want:
                self._reject(p)
                continue
            self._flush_line()
            self._pos = stop + CRC_SIZE
            try:
                msg = _message(version, msg_type, buf[p + HEADER_SIZE : stop])
            except ProtocolError as e:
                self._out.append((ERR, e))
            else:
                self._out.append((MSG, msg))

    def _reject(self, p):
        self.rejected += 1
        self._text(p, p + 1)
        self._pos = p + 1
