"""`wakeward record "PHRASE" --out DIR`: the owner's own takes of the wake phrase, for
`wakeward train --owner DIR` (and `train-data --owner DIR`).

Each take: a prompt, a beep (a printed marker and the terminal bell), capture, a check
(`wakeward_train.clips.take_problem`: not empty, not silent, not clipped, speech present and
not cut off by the end of the take); a bad take is said why and asked again, at most
MAX_TRIES times. A good one is written as DIR/take-NNN.wav (16 kHz mono 16-bit, atomically),
numbered after the takes already there; nothing in DIR is overwritten, and DIR/takes.json
lists the takes (phrase, file, source, capture command, time).

Where the audio comes from is a `TakeSource`: the PC microphone (`MicTakes`, wakeward.mic;
the capture is tried before the first prompt, and each beep waits for its audio to flow),
or with --from-speaker the speaker's own microphone (`SpeakerTakes`): this command is then
the receiver the speaker connects to (--tcp HOST:PORT or --serial PORT, --tls with the
pairing, as `wakeward listen`; detection clips that arrive meanwhile go to the clip store,
--store DIR as listen's), and asks it for each take (wakeward.devicerequests: the
device records only for its paired owner, with its LED blinking). Takes through the
speaker's microphone and its room are the closest to what it will hear.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from wakeward.errors import WakewardError
from wakeward.files import write_text_atomic

if TYPE_CHECKING:  # numpy and the capture code load only when recording
    import numpy as np

    from wakeward import devicerequests, mic

TAKES_FILE = "takes.json"
FORMAT = "wakeward-takes/1"
DEFAULT_TAKES = 10
DEFAULT_SECONDS = 2.5
MAX_SECONDS = 10.0
MAX_TRIES = 3  # per take, before giving up
PAUSE_S = 1.0  # between a take's prompt and its beep
# Read before the beep: audio flowing is what shows the capture works (a program without a
# sound card exits at once); they stay at the take's start.
FIRST_SAMPLES = 1
_MIC_HELP = (
    "check that a microphone is plugged in and not in use (`arecord -l` lists them), or set "
    "WAKEWARD_MIC_COMMAND to a shell command that writes raw 16-bit little-endian 16 kHz "
    "mono samples to its standard output"
)
BELL = "\a"
_TAKE_NAME = re.compile(r"^take-(\d+)\.wav$")

Say = Callable[[str], None]


class TakeSource(Protocol):
    """Where takes come from: `take` records `seconds` of int16 16 kHz mono audio and
    calls `started()` once it is capturing (so the beep never comes before the audio)."""

    name: str  # in takes.json: "pc-microphone", "speaker:<device id>"
    shown: str  # for the owner: which microphone, through what

    def take(self, seconds: float, started: Callable[[], None]) -> np.ndarray: ...


class MicTakes:
    """Takes from the PC's microphone (a capture program per take; see wakeward.mic)."""

    name = "pc-microphone"

    def __init__(self, program: mic.Capture | None = None) -> None:
        from wakeward import mic

        self.program = program or mic.capture()
        self.shown = f"the PC microphone (`{self.program.shown}`)"

    def check(self) -> None:
        """Start the capture and see audio come, before any prompt or beep."""
        from wakeward import mic

        try:
            with mic.Microphone(self.program) as m:
                got = len(m.read(FIRST_SAMPLES))
        except WakewardError as e:
            raise WakewardError(f"{e}; {_MIC_HELP}") from None
        if got < FIRST_SAMPLES:
            raise WakewardError(
                f"the capture command `{self.program.shown}` gave no audio; {_MIC_HELP}"
            )

    def take(self, seconds: float, started: Callable[[], None]) -> np.ndarray:
        import numpy as np

        from wakeward import mic
        from wakeward.audio import RATE_HZ

        want = round(seconds * RATE_HZ)
        with mic.Microphone(self.program) as m:
            first = m.read(min(FIRST_SAMPLES, want))  # the beep only once audio comes
            if len(first):
                started()
            samples = np.concatenate([first, m.read(want - len(first))])
        if len(samples) < want:
            raise WakewardError(
                f"the capture command `{self.program.shown}` ended after "
                f"{len(samples) / RATE_HZ:.2f} s of a {seconds:g} s take"
            )
        return samples


class SpeakerTakes:
    """Takes from the speaker's own microphone, one record request each (whole seconds,
    at most the device's limit; the take is cut to the seconds asked for)."""

    name = "speaker"

    def __init__(
        self, options: devicerequests.ListenOptions, say: Callable[[str], None] = print
    ) -> None:
        self.options = options
        self.say = say
        self.shown = "the speaker's microphone (through the receiver)"

    def take(self, seconds: float, started: Callable[[], None]) -> np.ndarray:
        from wakeward import devicerequests
        from wakeward.audio import RATE_HZ

        whole = math.ceil(seconds)
        (samples,) = devicerequests.record_from_speaker(
            self.options, whole, 1, before_take=lambda _index: started(), say=self.say
        )
        return samples[: round(seconds * RATE_HZ)]


def check_out(out: Path, phrase: str) -> dict[str, Any]:
    """Refuse an --out we must not write into; returns its takes.json (or a new one)."""
    if out.exists() and not out.is_dir():
        raise WakewardError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WakewardError(f"--out {out}: cannot make the folder ({e.strerror})") from None
    path = out / TAKES_FILE
    if not path.exists():
        return {"format": FORMAT, "phrase": phrase, "takes": []}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WakewardError(f"{path}: not a readable takes file ({e}); not touching it") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise WakewardError(f"{path}: not a takes file of `wakeward record`; not touching it")
    if str(info.get("phrase", "")).strip().lower() != phrase.strip().lower():
        raise WakewardError(
            f"--out {out}: its takes are of {info.get('phrase')!r}, not {phrase!r} "
            "(one folder per phrase: choose another --out)"
        )
    if not isinstance(info.get("takes"), list):
        raise WakewardError(f"{path}: its 'takes' is not a list; not touching it")
    return info


def next_number(out: Path) -> int:
    """One more than the highest take-NNN.wav in the folder (1 in an empty one)."""
    numbers = [int(m.group(1)) for p in out.iterdir() if (m := _TAKE_NAME.match(p.name))]
    return max(numbers, default=0) + 1


def _free_take_path(out: Path) -> Path:
    n = next_number(out)
    while (out / f"take-{n:03d}.wav").exists():  # a file another program just put there
        n += 1
    return out / f"take-{n:03d}.wav"


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def record(
    phrase: str,
    out: Path,
    source: TakeSource,
    *,
    takes: int = DEFAULT_TAKES,
    seconds: float = DEFAULT_SECONDS,
    pause_s: float | None = None,
    say: Say = print,
    bell: bool = False,
) -> list[Path]:
    """Record `takes` good takes into `out` (pausing `pause_s`, default PAUSE_S, between
    each prompt and its beep); returns their files."""
    from wakeward_train import clips  # numpy only: the checks the trainer applies

    from wakeward.audio import RATE_HZ, write_wav

    if not phrase.strip():
        raise WakewardError("the wake phrase is empty")
    if takes < 1:
        raise WakewardError(f"--takes {takes}: record at least 1")
    if not clips.MIN_DURATION_S < seconds <= MAX_SECONDS:
        raise WakewardError(
            f"--take-seconds {seconds:g}: a take lasts more than {clips.MIN_DURATION_S} s and at "
            f"most {MAX_SECONDS:g} s"
        )
    made = not out.exists()
    info = check_out(out, phrase)
    what = "take" if takes == 1 else "takes"
    say(f"recording {takes} {what} of {phrase!r} from {source.shown}, {seconds:g} s each")
    pause = PAUSE_S if pause_s is None else pause_s
    written: list[Path] = []
    try:
        for k in range(1, takes + 1):
            samples = _good_take(phrase, source, k, takes, seconds, pause, say, bell)
            path = write_wav(_free_take_path(out), samples)
            info["takes"].append(
                {
                    "file": path.name,
                    "source": source.name,
                    "shown": source.shown,
                    "seconds": round(len(samples) / RATE_HZ, 3),
                    "recorded_at": _utc_now(),
                }
            )
            info["updated_at"] = _utc_now()
            write_text_atomic(out / TAKES_FILE, json.dumps(info, indent=1) + "\n")
            written.append(path)
            say(f"take {k}/{takes}: kept as {path}")
    except BaseException:
        if made and not written:  # no trace of a session that kept nothing
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    return written


def _good_take(
    phrase: str,
    source: TakeSource,
    k: int,
    takes: int,
    seconds: float,
    pause_s: float,
    say: Say,
    bell: bool,
) -> np.ndarray:
    from wakeward_train import clips

    problem = ""
    for attempt in range(1, MAX_TRIES + 1):
        again = f" (try {attempt} of {MAX_TRIES})" if attempt > 1 else ""
        say(f"take {k}/{takes}{again}: say {phrase!r} after the beep")
        time.sleep(pause_s)

        def started() -> None:
            say(f"{BELL if bell else ''}>>> beep: speak now ({seconds:g} s)")

        samples = source.take(seconds, started)
        problem = clips.take_problem(samples) or ""
        if not problem:
            return samples
        say(f"take {k}/{takes}: not kept: {problem}")
    raise WakewardError(
        f"take {k}: {MAX_TRIES} tries were not usable (the last: {problem}); the takes kept "
        "so far stay"
    )


def _source(args: argparse.Namespace) -> TakeSource:
    """The PC microphone, or with --from-speaker the speaker's."""
    speaker_only = (args.tcp, args.serial, args.baud, args.pairing, args.store)
    if not args.from_speaker:
        if args.tls or any(x is not None for x in speaker_only):
            raise WakewardError(
                "--tcp, --serial, --baud, --tls, --pairing and --store go with --from-speaker"
            )
        takes = MicTakes()
        takes.check()
        return takes
    from wakeward import devicerequests, pairing

    if args.pairing is not None and not args.tls:
        raise WakewardError("--pairing goes with --tls")
    if args.seconds > devicerequests.MAX_RECORD_S:
        raise WakewardError(
            f"--take-seconds {args.seconds:g}: the speaker records at most "
            f"{devicerequests.MAX_RECORD_S} s a take"
        )
    options = devicerequests.ListenOptions.parse(
        tcp=args.tcp,
        serial=args.serial,
        baud=args.baud,
        pairing=pairing.Pairing(args.pairing) if args.tls else None,
        store=args.store,
    )
    return SpeakerTakes(options)


def _cmd_record(args: argparse.Namespace) -> int:
    source = _source(args)
    written = record(
        args.phrase,
        args.out,
        source,
        takes=args.takes,
        seconds=args.seconds,
        bell=sys.stdout.isatty(),
    )
    total = len(list(args.out.glob("take-*.wav")))
    what = "take" if len(written) == 1 else "takes"
    print(
        f"recorded {len(written)} {what} into {args.out} ({total} there now); train with "
        f"`wakeward train {args.phrase!r} --owner {args.out} --out models/NAME`"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="record your own takes of the wake phrase for training",
        description=(
            "Record takes of the wake phrase from the PC microphone (arecord or sox, or "
            "$WAKEWARD_MIC_COMMAND: a shell command writing raw 16-bit little-endian 16 kHz "
            "mono to stdout). Each take is checked (not silent, not clipped, speech in it, not "
            "cut off) and asked again when it is not usable. Good takes are written as "
            "DIR/take-NNN.wav, numbered after those already there (nothing is overwritten), "
            "and listed in DIR/takes.json. Use them with `wakeward train PHRASE --owner DIR`."
        ),
    )
    p.add_argument("phrase", help='the wake phrase, e.g. "hey wakeward"')
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="the takes' folder")
    p.add_argument(
        "--takes",
        type=int,
        default=DEFAULT_TAKES,
        metavar="N",
        help="good takes to record (default: %(default)s)",
    )
    p.add_argument(
        "--take-seconds",
        dest="seconds",
        type=float,
        default=DEFAULT_SECONDS,
        metavar="S",
        help="length of each take, in seconds (default: %(default)s)",
    )
    # record's --seconds was each take's length, while --seconds elsewhere (try, monitor) is
    # how long the command runs: the old spelling still works, unlisted (README, "Changed")
    p.add_argument(
        "--seconds", dest="seconds", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    g = p.add_argument_group(
        "takes through the speaker's own microphone",
        "Wait for the speaker as `wakeward listen` does (it connects here; stop `listen` "
        "first) and ask it for each take. It records only for its paired owner (--tls "
        "with the pairing, or its USB serial port) unless its config.json says "
        'link.requests "any".',
    )
    g.add_argument("--from-speaker", action="store_true", help="record on the speaker")
    g.add_argument("--tcp", metavar="HOST:PORT", help="listen on this address (as listen)")
    g.add_argument("--serial", metavar="PORT", help="the board's USB serial port (as listen)")
    g.add_argument("--baud", type=int, metavar="N", help="with --serial: the port's speed")
    g.add_argument("--tls", action="store_true", help="TLS with the receiver's identity")
    g.add_argument("--pairing", type=Path, metavar="DIR", help="the pairing folder (with --tls)")
    g.add_argument(
        "--store",
        type=Path,
        metavar="DIR",
        help="the clip store for detection clips that arrive meanwhile (as listen; default: "
        "$WAKEWARD_DATA_DIR/clips, else the user data folder)",
    )
    p.set_defaults(func=_cmd_record)
