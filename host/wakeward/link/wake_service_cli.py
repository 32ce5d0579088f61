"""`wakeward wake-service`'s options (the command table's entry; the code is
wake_service.py, imported only when the command runs: wyoming, zeroconf and LiteRT load
with it)."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

from wakeward import models, trymodel
from wakeward.link import servicelog


def _cmd_wake_service(args: argparse.Namespace) -> int:
    from wakeward import hostmodel
    from wakeward.link.wake_service import WakeAddress, serve

    if args.uri is not None:
        address = WakeAddress.parse_uri(args.uri)
    else:
        address = WakeAddress.parse(args.wyoming)
    given = models.chosen(args, several=True, command="wake-service")
    specs = [hostmodel.model_spec(model, args.cutoff, args.window) for model in given]
    kernels = "optimized (XNNPACK)" if args.optimized else "reference"

    def run(say: Callable[[str], None], stop: threading.Event) -> None:
        for spec in specs:
            say(
                f"model {spec.name} ({spec.path}): cutoff {spec.probability_cutoff:g} (uint8 "
                f"{spec.cutoff_u8}), window {spec.window}; LiteRT {kernels} kernels"
            )
        serve(
            specs,
            address,
            optimized=args.optimized,
            zeroconf=not args.no_zeroconf,
            say=say,
            stop=stop,
        )

    return servicelog.run(args.log_file, run)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "wake-service",
        help="serve wake-word models to Home Assistant (a Wyoming wake-word service)",
        description=(
            "Run wake-word models on this PC as a Wyoming wake-word service, as "
            "wyoming-openwakeword does, so Home Assistant's other voice satellites wake on "
            "the owner's own wake word. Each model runs as `wakeward try` runs it: the "
            "device's frontend and detection rule, so it detects what the speaker would, at "
            "the times `wakeward sim` gives. Audio in any rate, width or channel count is "
            "converted to 16 kHz mono. Logs (--log-file), Ctrl-C and SIGTERM as for listen; "
            "`wakeward service install wake-service ARGS` makes it a systemd user service. "
            "See docs/wake-service.md."
        ),
        epilog=(
            "Home Assistant sends it the audio of each satellite that waits for a wake word, "
            "for as long as it waits: nothing is stored, but let only Home Assistant reach "
            "it (--wyoming 127.0.0.1 when Home Assistant runs on this PC)."
        ),
    )
    models.add_model_option(
        p, several=True, positional="*", help_extra="several: one service for them all"
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--wyoming",
        metavar="HOST[:PORT]",
        help="where Home Assistant connects (port 10400, wyoming-openwakeword's, unless "
        "given; 0.0.0.0 for every interface)",
    )
    where.add_argument(
        "--uri",
        metavar="tcp://HOST:PORT",
        help="the same, written as wyoming-openwakeword's --uri",
    )
    p.add_argument(
        "--no-zeroconf",
        action="store_true",
        help="do not advertise the service over zeroconf (_wyoming._tcp)",
    )
    trymodel.add_rule_options(p)
    servicelog.add_log_file_option(p)
    p.set_defaults(func=_cmd_wake_service)
