"""The `wakeward` command: a table of subcommands over the importable API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from wakeward import __version__, unixport
from wakeward.errors import WakewardError


def _cmd_sim(args: argparse.Namespace) -> int:
    from wakeward import sim

    button = [tuple(map(int, b.split("-", 1))) for b in args.button]
    return sim.run_sim(
        args.audio,
        realtime=args.realtime,
        events=args.events,
        button_ms=button,
        model_names=args.model,
        trace=args.json,
        link_tcp=args.link,
        heap=args.heap,
        say=sim.json_lines_stdout if args.json else sim.main_stdout,
    )


def _cmd_model_check(args: argparse.Namespace) -> int:
    import numpy as np

    from wakeward import modelcheck, models

    inputs = None
    if args.inputs is not None:
        shape, dtype = modelcheck.input_details(models.resolve(args.model))
        inputs = modelcheck.load_inputs(args.inputs, shape, dtype)
    report = modelcheck.check(
        args.model, inputs=inputs, invocations=args.invocations, seed=args.seed, heap=args.heap
    )
    for line in report.lines():
        print(line)
    if args.save_outputs is not None:
        np.save(args.save_outputs, report.outputs)
        print(f"device outputs saved to {args.save_outputs}")
    return 0 if report.bit_exact else 1


def _cmd_features(args: argparse.Namespace) -> int:
    from wakeward import features

    print(features.run(args.audio, args.out, reference=args.reference, heap=args.heap))
    return 0


def _cmd_listen(args: argparse.Namespace) -> int:
    from wakeward import receiver

    host, sep, port = args.tcp.rpartition(":")
    if not sep or not port.isdigit():
        raise WakewardError(f"--tcp {args.tcp!r} is not HOST:PORT")
    receiver.serve_tcp(
        host or "127.0.0.1", int(port), args.out, connections=1 if args.once else None
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from wakeward import demo

    return demo.run(args.workdir)


def _button_interval(text: str) -> str:
    start, sep, end = text.partition("-")
    if not sep or not start.isdigit() or not end.isdigit() or int(end) <= int(start):
        raise argparse.ArgumentTypeError(f"{text!r} is not START_MS-END_MS")
    return text


def _add_heap_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--heap",
        default=unixport.DEFAULT_HEAP_PROFILE,
        choices=sorted(unixport.HEAP_PROFILES),
        help="MicroPython heap limit profile (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wakeward", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wakeward {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("sim", help="run the firmware on the unix port, fed from a WAV file")
    p.add_argument("audio", type=Path, help="16 kHz mono 16-bit WAV")
    p.add_argument("--realtime", action="store_true", help="feed audio at real-time pace")
    p.add_argument("--events", type=Path, help="write LED/button/speaker events (JSON lines)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME_OR_PATH",
        help="a wake-word model to run (repeatable): a .tflite file with its manifest beside "
        "it, or alexa, hey_jarvis, hey_mycroft, okay_nabu",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON line per model invocation: {"t", "model", "p", "detected"}',
    )
    p.add_argument(
        "--link",
        metavar="HOST:PORT",
        help="stream detected clips to a receiver (`wakeward listen --tcp`) over TCP",
    )
    p.add_argument(
        "--button",
        action="append",
        default=[],
        type=_button_interval,
        metavar="START_MS-END_MS",
        help="hold the mute button during this stretch of audio (repeatable)",
    )
    _add_heap_option(p)
    p.set_defaults(func=_cmd_sim)

    p = sub.add_parser("model", help="wake-word model tools")
    model_sub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    p = model_sub.add_parser(
        "check",
        help="run a model on the device interpreter and on TFLite Micro and compare",
    )
    p.add_argument("model", help="a .tflite file or a pymicro-wakeword model name (alexa, ...)")
    p.add_argument(
        "--inputs",
        type=Path,
        help=".npy int8/uint8 array; the first axis is the invocation (default: random)",
    )
    p.add_argument("--invocations", type=int, default=200, help="random invocations to run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-outputs", type=Path, help="write the device outputs as .npy")
    _add_heap_option(p)
    p.set_defaults(func=_cmd_model_check)

    p = sub.add_parser(
        "features",
        help="compute a WAV file's int8 model-input features with the device frontend",
        description=(
            "Run the device frontend (firmware/frontend.py) on the MicroPython unix port over "
            "a WAV file and save its int8 model inputs (ESPHome's conversion of the uint16 "
            "features) as a .npy array of shape (frames, 40): one frame per 10 ms once the "
            "first 30 ms are in. --reference computes the same with pymicro-features on this "
            "PC, fed as pymicro-wakeword feeds it; the two are bit-exact."
        ),
        epilog=(
            "--out must be named .npy and is written atomically. An existing file there is "
            "replaced only if it is a .npy array; anything else is refused, never overwritten."
        ),
    )
    p.add_argument("audio", type=Path, help="16 kHz mono 16-bit WAV")
    p.add_argument(
        "--out", type=Path, required=True, metavar="FRAMES.npy", help="where to save the features"
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="compute them with pymicro-features on the PC instead of the device frontend",
    )
    _add_heap_option(p)
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("listen", help="receive clips from the speaker (TCP; no TLS yet)")
    p.add_argument("--tcp", required=True, metavar="HOST:PORT", help="address to listen on")
    p.add_argument("--out", type=Path, default=Path("clips"), help="folder for the clips")
    p.add_argument("--once", action="store_true", help="stop after one device connection")
    p.set_defaults(func=_cmd_listen)

    p = sub.add_parser("demo", help="the main job on one PC (what `make demo` runs)")
    p.add_argument("--workdir", type=Path, default=Path("build/demo"))
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WakewardError as e:
        print(f"wakeward: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("wakeward: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`wakeward sim ... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
