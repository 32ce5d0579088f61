# config.json, validated at boot: every bad field gets a message that names it, before any
# hardware is touched. Fields (all but "board" optional):
#   board          a board profile name (board/profiles.py) or "sim"
#   board_options  object passed to the board (sim: wav, pcm_socket, realtime, events, button,
#                  speaker; an ESP32-S3 board takes none)
#   device_id      string sent to the receiver (default: the board name)
#   models         list of {"path", "name", "probability_cutoff" 0..1, "sliding_window_size"}
#   trace          true: one JSON line per model invocation
#   link           {"tcp": "HOST:PORT", ...} or {"serial": true, ...}: where to stream clips
#                  (Wi-Fi to a receiver's address, or the USB serial console: console.py),
#                  and how (_LINK_INTS: the clip queue on flash, reconnect backoff, timeouts,
#                  status interval); "tls": {"cert": FILE} pins the receiver's certificate
#                  (DER, a file on flash; transport.py) and "secret": 64 hex digits is the
#                  device's secret (`wakeward pair`). The two come together: a secret never
#                  goes over plain TCP, where anyone on the network could read it, and a TLS
#                  receiver refuses a device without one. Neither goes with "serial": the
#                  USB cable runs straight to the owner's PC, whose receiver takes the device
#                  on the port it was told to open, and checks no secret there.
#                  "requests": who may ask for the models' outputs or a recording
#                  (request.py): "paired" (default: over TLS with the secret, or USB serial),
#                  "any" (plain TCP too) or "none".
#   wifi           {"ssid", "password"}
#   clip           {"pre_roll_ms", "max_ms"}
import json

from micropython import const
from protocol import MAX_CLIP_MS

PATH = "config.json"
DEFAULT_CUTOFF = 0.9
_DEFAULT_WINDOW = const(5)
_DEFAULT_PRE_ROLL_MS = const(1000)
_DEFAULT_MAX_MS = const(8000)
_MAX_PRE_ROLL_MS = const(5000)
# link fields: (name, default, lowest, highest). The queue defaults suit an ESP32-S3's flash
# (a few MB; the file system also holds the models): 1 MB is 32 s of audio, four clips of the
# longest default length (8 s).
_LINK_INTS = (
    ("queue_max_clips", 16, 1, 255),  # status.queued is a u8
    ("queue_max_kb", 1024, 1, 65536),
    ("retry_min_ms", 1000, 10, 600000),
    ("retry_max_ms", 60000, 10, 3600000),
    ("timeout_ms", 200, 10, 60000),  # a connect or a write; see transport.py
    ("ack_timeout_ms", 10000, 100, 600000),
    ("status_interval_ms", 30000, 100, 600000),
)
_CLIP_FRAME_BYTES = const(1042)  # one CLIP_DATA frame of link.CHUNK_BYTES (1024) of audio
_CLIP_OVERHEAD_BYTES = const(1024)  # clip_start and clip_end, with room to spare
_SECRET_HEX = const(64)  # 32 bytes (host/wakeward/pairing.py, SECRET_BYTES)
# link.requests: who may ask for the models' outputs or a recording (request.POLICIES)
_REQUESTS = ("paired", "any", "none")
_DEFAULT_REQUESTS = "paired"
_FIELDS = ("board", "board_options", "device_id", "models", "trace", "link", "wifi", "clip")
# board_options of the sim board (board/sim.py SimBoard); an ESP32-S3 board takes none (its
# Wi-Fi comes from "wifi"). An unknown one stops the boot naming it, like any unknown field
# (and `wakeward deploy`, which runs validate() on the PC, refuses it before the board).
_SIM_OPTIONS = ("wav", "pcm_socket", "realtime", "events", "button", "speaker")
_MAX_BUTTON_MS = const(0x3FFFFFFF)  # a small int on the device


class ConfigError(ValueError):
    pass


def _fail(path, field, why):
    raise ConfigError("%s: field '%s': %s" % (path, field, why))


def _object(path, config, field):
    value = config.get(field, {})
    if not isinstance(value, dict):
        _fail(path, field, "must be an object")
    return value


def _string(path, field, value):
    if not isinstance(value, str) or not value:
        _fail(path, field, "must be a non-empty string")
    return value


def _int(path, field, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        _fail(path, field, "must be a whole number from %d to %d" % (lo, hi))
    return value


def _board_options(path, config, board):
    options = _object(path, config, "board_options")
    for key in options:
        field = "board_options." + key
        if board != "sim":
            _fail(path, field, "unknown field (an ESP32-S3 board takes none; Wi-Fi goes in 'wifi')")
        if key not in _SIM_OPTIONS:
            _fail(path, field, "unknown field (known: %s)" % ", ".join(_SIM_OPTIONS))
        value = options[key]
        if key == "realtime":
            if not isinstance(value, bool):
                _fail(path, field, "must be true or false")
        elif key == "button":
            _button_script(path, field, value)
        else:
            _string(path, field, value)
    return options


def _button_script(path, field, value):
    ok = isinstance(value, list)
    for press in value if ok else ():
        if not isinstance(press, list) or len(press) != 2:
            ok = False
            break
        for ms in press:
            if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= _MAX_BUTTON_MS:
                ok = False
    if not ok:
        _fail(path, field, "must be a list of [press_ms, release_ms] (whole numbers from 0)")


def _models(path, config):
    models = config.get("models", [])
    if not isinstance(models, list):
        _fail(path, "models", "must be a list")
    out = []
    for i, entry in enumerate(models):
        field = "models[%d]" % i
        if not isinstance(entry, dict):
            _fail(path, field, "must be an object")
        model_path = _string(path, field + ".path", entry.get("path"))
        name = _string(path, field + ".name", entry.get("name", model_path))
        cutoff = entry.get("probability_cutoff", DEFAULT_CUTOFF)
        if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not 0 <= cutoff <= 1:
            _fail(path, field + ".probability_cutoff", "must be a number from 0 to 1")
        window = _int(
            path,
            field + ".sliding_window_size",
            entry.get("sliding_window_size", _DEFAULT_WINDOW),
            1,
            100,
        )
        out.append(
            {
                "path": model_path,
                "name": name,
                "probability_cutoff": cutoff,
                "sliding_window_size": window,
            }
        )
    return out


def _link(path, config, max_clip_ms):
    link = config.get("link")
    if link is None:
        return None
    if not isinstance(link, dict) or ("tcp" not in link and "serial" not in link):
        _fail(path, "link", 'must be {"tcp": "HOST:PORT", ...} or {"serial": true, ...}')
    if "tcp" in link and "serial" in link:
        _fail(path, "link.serial", "not with link.tcp: one link, Wi-Fi (tcp) or USB (serial)")
    names = ["tcp", "tls", "secret", "serial", "requests"] + [field[0] for field in _LINK_INTS]
    for key in link:
        if key not in names:
            _fail(path, "link." + key, "unknown field (known: %s)" % ", ".join(names))
    if "serial" in link:
        out = _serial(path, link)
    else:
        out = _tcp(path, link)
    for name, default, lo, hi in _LINK_INTS:
        out[name] = _int(path, "link." + name, link.get(name, default), lo, hi)
    out["requests"] = link.get("requests", _DEFAULT_REQUESTS)
    if out["requests"] not in _REQUESTS:
        _fail(
            path,
            "link.requests",
            'must be "paired" (TLS with the secret, or USB serial), "any" or "none"',
        )
    if out["retry_max_ms"] < out["retry_min_ms"]:
        _fail(path, "link.retry_max_ms", "must be at least link.retry_min_ms")
    clip_kb = _clip_kb(max_clip_ms)
    if out["queue_max_kb"] < clip_kb:
        _fail(
            path,
            "link.queue_max_kb",
            "must hold one clip of clip.max_ms (%d ms needs %d)" % (max_clip_ms, clip_kb),
        )
    return out


def _tcp(path, link):
    host, sep, port = _string(path, "link.tcp", link["tcp"]).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        _fail(path, "link.tcp", "%r is not HOST:PORT" % link["tcp"])
    out = {"serial": False, "host": host, "port": int(port)}
    out["tls"], out["secret"] = _security(path, link)
    return out


def _serial(path, link):
    if link["serial"] is not True:
        _fail(path, "link.serial", "must be true (the USB serial console), or no link.serial")
    for key in ("tls", "secret"):
        if key in link:
            _fail(
                path,
                "link." + key,
                "not with link.serial: the USB cable is a direct link, without TLS or secret",
            )
    return {"serial": True, "host": None, "port": None, "tls": None, "secret": None}


def _security(path, link):
    """(certificate file, secret in hex) of a TLS link, (None, None) of a plain one."""
    tls = link.get("tls")
    secret = link.get("secret")
    if tls is None and secret is None:
        return None, None
    if tls is None:
        _fail(path, "link.secret", "needs link.tls: a secret never goes over plain TCP")
    if not isinstance(tls, dict) or "cert" not in tls or len(tls) != 1:
        _fail(path, "link.tls", 'must be {"cert": FILE}, the receiver\'s certificate (DER)')
    cert = _string(path, "link.tls.cert", tls["cert"])
    if secret is None:
        _fail(path, "link.secret", "missing: a TLS link needs the device's secret (wakeward pair)")
    if not isinstance(secret, str) or len(secret) != _SECRET_HEX or not _is_hex(secret):
        _fail(path, "link.secret", "must be %d hex digits (wakeward pair)" % _SECRET_HEX)
    return cert, secret


def _is_hex(text):
    for c in text:
        if c not in "0123456789abcdefABCDEF":
            return False
    return True


def _clip_kb(max_ms):
    """KB of flash one clip of max_ms takes in the queue, framing included."""
    frames = (max_ms * 32 + 1023) // 1024  # 32 bytes of audio per ms
    return (frames * _CLIP_FRAME_BYTES + _CLIP_OVERHEAD_BYTES + 1023) // 1024


def validate(config, path=PATH):
    """The config with defaults filled in; ConfigError naming the first bad field."""
    if not isinstance(config, dict):
        raise ConfigError("%s: the top level must be an object" % path)
    for field in config:
        if field not in _FIELDS:
            _fail(path, field, "unknown field (known: %s)" % ", ".join(_FIELDS))
    board = config.get("board")
    if board != "sim":
        from board import profiles

        if not isinstance(board, str) or board not in profiles.PROFILES:
            known = ", ".join(sorted(profiles.PROFILES))
            _fail(path, "board", "%r is not 'sim' or a board profile (%s)" % (board, known))
    options = _board_options(path, config, board)
    wifi = _object(path, config, "wifi")
    for key in wifi:
        if key not in ("ssid", "password"):
            _fail(path, "wifi." + key, "unknown field (known: ssid, password)")
        _string(path, "wifi." + key, wifi[key])
    clip = _object(path, config, "clip")
    pre_roll = _int(
        path, "clip.pre_roll_ms", clip.get("pre_roll_ms", _DEFAULT_PRE_ROLL_MS), 0, _MAX_PRE_ROLL_MS
    )
    max_ms = _int(path, "clip.max_ms", clip.get("max_ms", _DEFAULT_MAX_MS), 1, MAX_CLIP_MS)
    if max_ms <= pre_roll:
        _fail(path, "clip.max_ms", "must be longer than clip.pre_roll_ms")
    trace = config.get("trace", False)
    if not isinstance(trace, bool):
        _fail(path, "trace", "must be true or false")
    return {
        "board": board,
        "board_options": options,
        "device_id": _string(path, "device_id", config.get("device_id", board)),
        "models": _models(path, config),
        "trace": trace,
        "link": _link(path, config, max_ms),
        "wifi": wifi,
        "pre_roll_ms": pre_roll,
        "max_clip_ms": max_ms,
    }


def load(path=PATH):
    try:
        with open(path) as f:
            config = json.load(f)
    except OSError:
        raise ConfigError("%s: cannot be read" % path) from None
    except ValueError as e:
        raise ConfigError("%s: not valid JSON (%s)" % (path, e)) from None
    except MemoryError:  # a huge or very deeply nested file: refused like any bad one
        raise ConfigError("%s: too large or too deeply nested to read" % path) from None
    return validate(config, path)
