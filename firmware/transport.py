# The one place the stream to the receiver is opened. Today a plain TCP socket; TLS (the
# receiver's certificate pinned, the device's secret) wraps it here, in open_stream, and
# nothing else changes.
#
# The link calls open_stream from the audio loop (link.py), at most once per backoff step:
# 1 s, then doubling to 60 s by default while the receiver is unreachable. On the device an
# attempt blocks the loop for up to link.timeout_ms (default 200 ms; on the ESP32,
# MicroPython honours a socket timeout in connect since 1.22, micropython PR #12923).
# Meanwhile the microphone's I2S DMA buffer (250 ms, board/esp32s3.py) keeps filling, so the
# audio is late, not lost, and the loop catches up over the following frames. An attempt
# that outlasts the buffer loses the oldest samples of that stretch. A host name rather than
# an IP address adds a DNS lookup that the timeout does not bound. The same timeout bounds
# every write, so a receiver that stops reading ends the connection instead of stalling the
# loop (the link then resends from flash).
import socket


def open_stream(cfg, board):
    """A stream connected to the receiver of cfg (config.py's validated "link"); OSError
    when there is no network or the receiver cannot be reached within cfg["timeout_ms"]."""
    if not board.network_up(0):
        raise OSError("no network")
    address = socket.getaddrinfo(cfg["host"], cfg["port"])[0][-1]
    sock = socket.socket()
    try:
        sock.settimeout(cfg["timeout_ms"] / 1000)
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock

