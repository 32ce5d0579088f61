# A receiver that speaks another protocol version (link.py, at its first such frame): kept
# out of link.py so that its code is heap only when it happens (an older or newer wakeward
# on the PC), not on every device.
import protocol


def other_version(link, version):
    """The receiver speaks another protocol version: said, told (in its version's ERROR,
    which it can read), and the connection ends (retried with the backoff)."""
    why = "the receiver speaks protocol version %d, this device %d: update %s" % (
        version,
        protocol.VERSION,
        "wakeward on the PC" if version < protocol.VERSION else "this device's firmware",
    )
    link._say("link: " + why)
    link._write(protocol.encode_error(protocol.ERR_VERSION, why, version))
    link._drop("protocol version %d" % version)
