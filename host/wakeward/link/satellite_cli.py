"""`wakeward satellite`'s options (the command table's entry; the code is satellite.py,
imported only when the command runs: wyoming and zeroconf load with it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from wakeward.errors import WakewardError
from wakeward.link import servicelog


def _cmd_satellite(args: argparse.Namespace) -> int:
    tcp = args.tcp if args.serial is not None else servicelog.tcp_address(args.tcp)
    pairing = None
    if args.tls:
        from wakeward.pairing import Pairing

        pairing = Pairing(args.pairing)
    elif args.pairing is not None:
        raise WakewardError("--pairing goes with --tls")
    from wakeward.devicerequests import ListenOptions
    from wakeward.link.satellite import WyomingAddress, serve

    options = ListenOptions.parse(
        tcp=tcp, serial=args.serial, baud=args.baud, pairing=pairing, store=args.store
    )
    addresses = [WyomingAddress.parse(text) for text in args.wyoming]
    return servicelog.run(
        args.log_file,
        lambda say, stop: serve(
            options, addresses, zeroconf=not args.no_zeroconf, say=say, stop=stop
        ),
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "satellite",
        help="receive clips as listen does, and serve each speaker to Home Assistant (Wyoming)",
        description=(
            "Receive from the speakers exactly as `wakeward listen` does (the same store, "
            "the same acks; stop listen first), and serve each speaker to Home Assistant as "
            "a Wyoming voice satellite: after each wake word, the speech that follows it "
            "streams to Home Assistant while the speaker still captures it. Logs, the config "
            "file, Ctrl-C and `wakeward service install satellite ARGS` as for listen. See "
            "docs/satellite.md."
        ),
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="the speakers connect here (as listen; default: the config file's listen)",
    )
    where.add_argument("--serial", metavar="PORT", help="the board's USB serial port (as listen)")
    p.add_argument("--baud", type=int, metavar="N", help="with --serial: the port's speed")
    p.add_argument("--tls", action="store_true", help="TLS; only paired devices (as listen)")
    p.add_argument("--pairing", type=Path, metavar="DIR", help="the pairing folder (with --tls)")
    p.add_argument("--store", type=Path, metavar="DIR", help="the clip store folder (as listen)")
    p.add_argument(
        "--wyoming",
        action="append",
        required=True,
        metavar="[DEVICE=]HOST[:PORT]",
        help="where Home Assistant connects (port 10700, Wyoming's usual, unless given); "
        "without DEVICE=, the first speaker to connect; several speakers: one each, "
        "e.g. --wyoming kitchen=0.0.0.0:10700 --wyoming hall=0.0.0.0:10701",
    )
    p.add_argument(
        "--no-zeroconf",
        action="store_true",
        help="do not advertise the satellites over zeroconf (_wyoming._tcp)",
    )
    servicelog.add_log_file_option(p)
    p.set_defaults(func=_cmd_satellite)
