# The wire protocol's messages for audio to play (protocol version 5: play_start, play_data,
# play_end from the receiver, played from the device; docs/protocol.md): part of the one
# schema of protocol.py, kept in a file of its own so that a device nobody sends audio keeps
# their heap (about 2 KB of schema and code). protocol.py merges them into its SCHEMA at the
# first one sent or received (protocol._load_play calls register); the receiver on the PC loads
# both files by path and registers this one at once (receiver.load_protocol), so both ends
# encode and decode every message from the same definitions.
try:
    from micropython import const
except ImportError:  # CPython: the receiver loads this module by path

    def const(x):  # type: ignore[misc]
        return x


# Message types (byte 3 of a frame), after protocol.py's (its _PLAY_FIRST .. _PLAY_LAST).
PLAY_START = const(12)
PLAY_DATA = const(13)
PLAY_END = const(14)
PLAYED = const(15)

# PLAY_START: the one audio format the speaker plays (16 kHz mono int16 LE).
PLAY_RATE_HZ = const(16000)
# PLAYED reasons: how a play ended.
PLAY_DONE = const(0)  # all of it played
PLAY_OVERFLOW = const(1)  # played, but audio that overflowed the buffer was dropped
PLAY_REFUSED = const(2)  # not played (an ERROR says why)
PLAY_CANCELLED = const(3)  # a newer play_start, or the device stopped, cut it short
PLAY_ENDS = ("done", "overflow", "refused", "cancelled")

# Field kinds as in protocol.py's SCHEMA.
SCHEMA = {
    PLAY_START: (
        "play_start",
        (("play_id", "I"), ("rate_hz", "I"), ("channels", "B"), ("sample_bytes", "B")),
    ),
    PLAY_DATA: ("play_data", (("play_id", "I"), ("seq", "I"), ("pcm", "p"))),
    PLAY_END: ("play_end", (("play_id", "I"), ("samples", "I"))),
    PLAYED: (
        "played",
        (("play_id", "I"), ("samples", "I"), ("dropped", "I"), ("reason", "B")),
    ),
}
# Fields that name one of a list of values (protocol.py's _NAMED).
NAMED = {(PLAYED, "reason"): PLAY_ENDS}

_protocol = None  # the protocol module these messages are part of (register)


def register(protocol):
    """Merge these messages into the protocol module's schema (once)."""
    global _protocol
    _protocol = protocol
    for t in SCHEMA:
        protocol.SCHEMA[t] = SCHEMA[t]
        protocol._TYPES[SCHEMA[t][0]] = t
    for key in NAMED:
        protocol._NAMED[key] = NAMED[key]


def _encode(msg):
    if _protocol is None:  # the device imported this module before protocol.py needed it
        import protocol

        protocol._load_play()  # registers this module
    return _protocol.encode_message(msg)  # type: ignore[union-attr]  # set by register


# Typed helpers (allocate), as protocol.py's.


def encode_play_start(play_id, rate_hz=PLAY_RATE_HZ, channels=1, sample_bytes=2):
    """Audio to play follows (receiver -> device): the device plays PLAY_RATE_HZ mono
    int16 only and refuses any other format."""
    return _encode(
        {
            "type": "play_start",
            "play_id": play_id,
            "rate_hz": rate_hz,
            "channels": channels,
            "sample_bytes": sample_bytes,
        }
    )


def encode_play_data(play_id, seq, pcm):
    return _encode({"type": "play_data", "play_id": play_id, "seq": seq, "pcm": pcm})


def encode_play_end(play_id, samples):
    return _encode({"type": "play_end", "play_id": play_id, "samples": samples})


def encode_played(play_id, samples, dropped, reason):
    return _encode(
        {
            "type": "played",
            "play_id": play_id,
            "samples": samples,
            "dropped": dropped,
            "reason": reason,
        }
    )
