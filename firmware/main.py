# Boot entry: the only module that touches hardware. Reads config.json, opens the board
# and runs the application on it.
import sys

import config
import listen
from board import open_board

_NETWORK_TIMEOUT_MS = 15000
_ACK_DRAIN_BYTES = 256


def load_wakewords(cfg, say=print):
    """The configured models; a missing or broken one is reported and left out."""
    if not cfg["models"]:
        return []
    import wakeword  # the interpreter's code costs heap: only when there are models

    loaded = []
    for entry in cfg["models"]:
        try:
            cutoff_u8 = wakeword.cutoff_u8(entry["probability_cutoff"])
            loaded.append(
                wakeword.WakeWord(
                    entry["name"], entry["path"], cutoff_u8, entry["sliding_window_size"]
                )
            )
        except (ValueError, OSError, MemoryError) as e:
            say("wakeward: model %s not loaded: %s" % (entry["name"], e))
    return loaded


def open_link(cfg, board):
    """The link to the receiver (plain TCP for now), or (None, None) without one."""
    if cfg["link"] is None:
        return None, None
    host, port = cfg["link"]
    if not board.network_up(_NETWORK_TIMEOUT_MS):
        raise OSError("no network for the link to %s:%d" % (host, port))
    import socket

    import link

    sock = socket.socket()
    sock.connect(socket.getaddrinfo(host, port)[0][-1])
    names = [m["name"] for m in cfg["models"]]
    stream = link.Link(
        sock, cfg["device_id"], names, pre_roll_ms=cfg["pre_roll_ms"], max_ms=cfg["max_clip_ms"]
    )
    return stream, sock


def main():
    cfg = config.load()
    options = dict(cfg["board_options"])
    if cfg["board"] != "sim" and cfg["wifi"]:
        options["wifi_ssid"] = cfg["wifi"].get("ssid")
        options["wifi_password"] = cfg["wifi"].get("password")
    board = open_board(cfg["board"], **options)
    sock = None
    try:
        # the link's clip ring (tens of KB) first, while the heap is still in one piece
        clip_link, sock = open_link(cfg, board)
        wakewords = load_wakewords(cfg)
        listen.run(board, wakewords=wakewords, trace=cfg["trace"], link=clip_link)
    finally:
        if sock is not None:
            _close_quietly(sock)
        board.close()


def _close_quietly(sock):
    """Read what the receiver sent (its acks) before closing, so the close is a clean FIN
    rather than a reset that could discard the last clip's frames on the way."""
    sock.setblocking(False)
    try:
        while sock.recv(_ACK_DRAIN_BYTES):
            pass
    except OSError:
        pass  # nothing more waiting
    sock.close()


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:
        print("wakeward: %s" % e)
        sys.exit(1)
