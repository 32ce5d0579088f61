# Boot entry: the only module that touches hardware. Reads config.json, opens the board
# and runs the application on it.
import json
import sys

import listen
from board import open_board

CONFIG_PATH = "config.json"
_DEFAULT_CUTOFF = 0.9
_DEFAULT_WINDOW = 5
_NETWORK_TIMEOUT_MS = 15000
_ACK_DRAIN_BYTES = 256


class ConfigError(ValueError):
    pass


def load_config(path=CONFIG_PATH):
    try:
        with open(path) as f:
            config = json.load(f)
    except OSError:
        raise ConfigError("%s: cannot be read" % path) from None
    except ValueError as e:
        raise ConfigError("%s: not valid JSON (%s)" % (path, e)) from None
    if not isinstance(config, dict):
        raise ConfigError("%s: the top level must be an object" % path)
    board = config.get("board")
    if not isinstance(board, str):
        raise ConfigError("%s: field 'board' must be a board profile name or \"sim\"" % path)
    options = config.get("board_options", {})
    if not isinstance(options, dict):
        raise ConfigError("%s: field 'board_options' must be an object" % path)
    return config


def load_wakewords(config, say=print):
    """The configured models; a missing or broken one is reported and left out."""
    models = config.get("models", [])
    if not isinstance(models, list):
        raise ConfigError("%s: field 'models' must be a list" % CONFIG_PATH)
    if not models:
        return []
    import wakeword  # the interpreter's code costs heap: only when there are models

    loaded = []
    for i, entry in enumerate(models):
        where = "%s: models[%d]" % (CONFIG_PATH, i)
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ConfigError("%s: needs a 'path' to a .tflite file" % where)
        name = entry.get("name", entry["path"])
        cutoff = entry.get("probability_cutoff", _DEFAULT_CUTOFF)
        window = entry.get("sliding_window_size", _DEFAULT_WINDOW)
        if not isinstance(cutoff, (int, float)) or not 0 <= cutoff <= 1:
            raise ConfigError("%s: 'probability_cutoff' must be a number from 0 to 1" % where)
        if not isinstance(window, int) or window < 1:
            raise ConfigError("%s: 'sliding_window_size' must be a positive integer" % where)
        try:
            cutoff_u8 = wakeword.cutoff_u8(cutoff)
            loaded.append(wakeword.WakeWord(name, entry["path"], cutoff_u8, window))
        except (ValueError, OSError, MemoryError) as e:
            say("wakeward: model %s not loaded: %s" % (name, e))
    return loaded


def open_link(config, board):
    """The link to the receiver: config "link": {"tcp": "HOST:PORT"} (no TLS yet)."""
    spec = config.get("link")
    if spec is None:
        return None, None
    where = "%s: field 'link'" % CONFIG_PATH
    if not isinstance(spec, dict) or not isinstance(spec.get("tcp"), str):
        raise ConfigError('%s must be {"tcp": "HOST:PORT"}' % where)
    host, sep, port = spec["tcp"].rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError("%s: %r is not HOST:PORT" % (where, spec["tcp"]))
    if not board.network_up(_NETWORK_TIMEOUT_MS):
        raise OSError("no network for the link to %s" % spec["tcp"])
    import socket

    import link

    sock = socket.socket()
    sock.connect(socket.getaddrinfo(host, int(port))[0][-1])
    names = [m.get("name", m.get("path")) for m in config.get("models", []) if isinstance(m, dict)]
    return link.Link(sock, config.get("device_id", board.name), names), sock


def main():
    config = load_config()
    board = open_board(config["board"], **config.get("board_options", {}))
    sock = None
    try:
        # the link's clip ring (tens of KB) first, while the heap is still in one piece
        clip_link, sock = open_link(config, board)
        wakewords = load_wakewords(config)
        listen.run(
            board, wakewords=wakewords, trace=bool(config.get("trace", False)), link=clip_link
        )
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
