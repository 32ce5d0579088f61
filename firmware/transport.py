# The one place the stream to the receiver is opened: plain TCP, TLS with the receiver's
# certificate pinned (link.tls in config.json), or the USB serial console (link.serial:
# console.py; there is nothing to connect, so it always opens).
#
# TLS: the receiver's self-signed certificate (`wakeward pair` makes it; `wakeward deploy`
# puts it on flash as a DER file) is the only trust anchor, CERT_REQUIRED, and the name in
# it must be RECEIVER_HOSTNAME, so the device talks to that receiver and no other, whatever
# answers at the address. The device's secret goes in the hello (link.py) inside this
# session, and the receiver refuses a device without a paired one. The certificate is valid
# from 1970 (pairing.py): the ESP32 port's mbedTLS checks validity dates
# (CONFIG_MBEDTLS_HAVE_TIME_DATE) against a clock that nobody has set after a boot.
#
# The link calls open_stream from the audio loop (link.py), at most once per backoff step:
# 1 s, then doubling to 60 s by default while the receiver is unreachable. On the device an
# attempt blocks the loop for up to link.timeout_ms (default 200 ms; on the ESP32,
# MicroPython honours a socket timeout in connect since 1.22, micropython PR #12923), and
# with TLS each wait of the handshake is bounded the same way, plus the handshake's own
# computing (ECDHE and an ECDSA verify on P-256, in software on the ESP32-S3), once per
# connection. Meanwhile the microphone's I2S DMA buffer (250 ms, board/esp32s3.py) keeps
# filling, so the audio is late, not lost, and the loop catches up over the following
# frames. An attempt that outlasts the buffer loses the oldest samples of that stretch, so
# the link makes none while a clip is captured. A host name rather than an IP address adds
# a DNS lookup that the timeout does not bound.
#
# Once connected the stream is non-blocking: the link polls it for acks and bounds every
# write by link.timeout_ms itself (link.py), so a receiver that stops reading ends the
# connection instead of stalling the loop (the link then resends from flash). A TLS stream
# has what the link uses (write, recv, setblocking, close, select.poll); its recv returns
# None while a record has only partly arrived. On the device mbedTLS keeps its buffers
# outside the MicroPython heap (ESP-IDF's allocator).
import socket

RECEIVER_HOSTNAME = "wakeward-receiver"  # the name in the receiver's certificate


def tls_context(cfg):
    """The TLS client context of cfg (config.py's validated "link"), pinned to the
    receiver's certificate, or None for a plain link. Made once at boot: OSError when the
    certificate file cannot be read, ValueError when it holds no certificate."""
    if cfg["tls"] is None:
        return None
    import tls

    with open(cfg["tls"], "rb") as f:
        der = f.read()
    context = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    context.verify_mode = tls.CERT_REQUIRED  # type: ignore[attr-defined]  # stubs lack it
    context.load_verify_locations(der)  # positional: this port refuses cadata=
    return context


def open_stream(cfg, board, context=None):
    """A non-blocking stream connected to the receiver of cfg, over TLS with `context`
    (tls_context); OSError when there is no network, the receiver cannot be reached within
    cfg["timeout_ms"], or it is not the receiver whose certificate is pinned. A serial
    link's stream is the console (console.py)."""
    if cfg["serial"]:
        import console

        return console.Console()
    if not board.network_up(0):
        raise OSError("no network")
    address = socket.getaddrinfo(cfg["host"], cfg["port"])[0][-1]
    sock = socket.socket()
    try:
        sock.settimeout(cfg["timeout_ms"] / 1000)
        sock.connect(address)
        stream = sock
        if context is not None:
            stream = context.wrap_socket(sock, server_hostname=RECEIVER_HOSTNAME)
        stream.setblocking(False)
    except OSError:
        sock.close()
        raise
    except ValueError as e:  # mbedTLS: the certificate does not verify
        sock.close()
        raise OSError("not the paired receiver: %s" % str(e).strip()) from None
    return stream
