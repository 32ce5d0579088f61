# Boot entry: the only module that touches hardware. Reads config.json, opens the board
# and runs the application on it.
import sys

import config
import console
import listen
from board import open_board
from micropython import const

_NETWORK_TIMEOUT_MS = const(15000)
_CPU_HZ = const(240_000_000)  # the ESP32-S3's top clock (the listening loop's budget)
_HZ_PER_MHZ = const(1_000_000)


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


def open_link(cfg, board, say=print):
    """The link to the receiver with its clip queue on flash, or None without one. It
    connects (and reconnects) by itself; clips wait on flash meanwhile. A TLS link's
    certificate is loaded here, once: a missing or broken one stops the boot (OSError,
    ValueError) like a bad config.json. A serial link takes the console (console.py)."""
    link_cfg = cfg["link"]
    if link_cfg is None:
        return None
    import binascii

    import link
    import outbox
    import transport

    try:
        context = transport.tls_context(link_cfg)
    except (OSError, ValueError) as e:
        raise ValueError("link.tls.cert: %s: %s" % (link_cfg["tls"], e)) from None
    secret = link_cfg["secret"]

    if link_cfg["serial"]:
        console.take()
    elif not board.network_up(_NETWORK_TIMEOUT_MS):
        say("wakeward: no network yet; clips wait on flash until there is")
    box = outbox.Outbox(link_cfg["queue_max_clips"], 1024 * link_cfg["queue_max_kb"], say=say)
    return link.Link(
        lambda: transport.open_stream(link_cfg, board, context),
        box,
        board.ticks_ms,
        cfg["device_id"],
        [m["name"] for m in cfg["models"]],
        pre_roll_ms=cfg["pre_roll_ms"],
        max_ms=cfg["max_clip_ms"],
        retry_min_ms=link_cfg["retry_min_ms"],
        retry_max_ms=link_cfg["retry_max_ms"],
        ack_timeout_ms=link_cfg["ack_timeout_ms"],
        status_interval_ms=link_cfg["status_interval_ms"],
        write_timeout_ms=link_cfg["timeout_ms"],
        auth=binascii.unhexlify(secret) if secret else b"",
        requests=link_cfg["requests"],
        owner_link=link_cfg["serial"] or link_cfg["tls"] is not None,
        speaker=board.speaker,
        say=say,
    )


def main():
    cfg = config.load()
    options = dict(cfg["board_options"])
    if cfg["board"] != "sim" and cfg["wifi"]:
        options["wifi_ssid"] = cfg["wifi"].get("ssid")
        options["wifi_password"] = cfg["wifi"].get("password")
    board = open_board(cfg["board"], **options)
    try:
        print(
            "wakeward: board %s, CPU at %d MHz"
            % (board.name, board.set_cpu_hz(_CPU_HZ) // _HZ_PER_MHZ)
        )
        if cfg["link"] is not None and cfg["link"]["serial"] and board.button.pressed():
            # the way back to the REPL once the serial link owns the console (console.py)
            print("wakeward: mute button held at boot: the console stays a REPL, no link")
            return
        # the link's clip ring (tens of KB) first, while the heap is still in one piece
        clip_link = open_link(cfg, board)
        wakewords = load_wakewords(cfg)
        # on the serial link the console goes to the PC: what was heard only if asked
        serial = cfg["link"] is not None and cfg["link"]["serial"]
        listen.run(
            board, wakewords=wakewords, trace=cfg["trace"], link=clip_link, speech_log=not serial
        )
    finally:
        console.release()  # Ctrl-C interrupts again, whatever ended the run
        board.close()


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:
        print("wakeward: %s" % e)
        sys.exit(1)
