"""`wakeward try MODEL [WAV ...] [--mic]`: a wake-word model on the PC, over WAV files or
live on the PC's microphone, with the device's frontend numbers and detection rule
(wakeward.hostmodel), so a word can be tried before it is flashed."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wakeward.errors import WakewardError
from wakeward.wording import plural

if TYPE_CHECKING:  # numpy and LiteRT load only when the command runs
    import numpy as np

    from wakeward.hostmodel import Detection, Listener, ModelSpec

Say = Callable[[str], None]


def detection_line(d: Detection, spec: ModelSpec, prefix: str = "") -> str:
    return (
        f"{prefix}detected: {d.model} at {d.t:.2f} s (output {d.p / 255:.2f}, mean of the "
        f"last {spec.window} {d.mean / 255:.2f} > cutoff {spec.cutoff_u8 / 255:.2f})"
    )


def run_blocks(
    blocks: Iterable[np.ndarray], listener: Listener, say: Say, prefix: str = ""
) -> None:
    """Feed audio blocks through the listener, saying each detection."""
    for block in blocks:
        for d in listener.feed(block):
            say(detection_line(d, listener.spec, prefix))


def try_wavs(
    spec: ModelSpec, wavs: Sequence[Path], *, optimized: bool = False, say: Say = print
) -> int:
    """Each WAV from a fresh start (as a device that has just booted); returns detections."""
    from wakeward.audio import read_any_wav
    from wakeward.hostmodel import Listener

    audio = [(wav, read_any_wav(wav)) for wav in wavs]  # every file checked before any runs
    total = 0
    seconds = 0.0
    for wav, samples in audio:
        listener = Listener(spec, optimized=optimized)
        prefix = f"{wav}: " if len(wavs) > 1 else ""
        run_blocks([samples], listener, say, prefix)
        found = len(listener.detections)
        say(f"{wav}: {plural(found, 'detection')} in {listener.seconds:.2f} s of audio")
        total += found
        seconds += listener.seconds
    if len(wavs) > 1:
        say(
            f"{spec.name}: {plural(total, 'detection')} in {seconds:.2f} s of audio, "
            f"{plural(len(wavs), 'file')}"
        )
    return total


def try_mic(
    spec: ModelSpec,
    seconds: float | None,
    *,
    optimized: bool = False,
    say: Say = print,
) -> int:
    """Live on the PC microphone until `seconds` of audio, Ctrl-C or the capture's end."""
    from wakeward import mic
    from wakeward.hostmodel import Listener

    listener = Listener(spec, optimized=optimized)
    program = mic.capture()
    how = f"for {seconds:g} s" if seconds is not None else "until Ctrl-C"
    with mic.Microphone(program) as m:
        say(f"listening for {spec.name} on the microphone (`{program.shown}`) {how}")
        try:
            run_blocks(m.blocks(seconds), listener, say)
        except KeyboardInterrupt:
            say("stopped (Ctrl-C)")
        if m.ended and (seconds is None or listener.seconds < seconds):
            say("the capture command ended")
    found = len(listener.detections)
    say(f"microphone: {plural(found, 'detection')} in {listener.seconds:.2f} s of audio")
    return found


def _cmd_try(args: argparse.Namespace) -> int:
    from wakeward import hostmodel

    if args.mic == bool(args.wav):
        raise WakewardError("try: give WAV files, or --mic for the PC microphone")
    if args.seconds is not None and not args.mic:
        raise WakewardError("--seconds goes with --mic")
    if args.seconds is not None and not args.seconds > 0:
        raise WakewardError(f"--seconds {args.seconds:g}: must be more than 0")
    spec = hostmodel.model_spec(args.model, args.cutoff, args.window)
    kernels = "optimized (XNNPACK)" if args.optimized else "reference"
    print(
        f"model {spec.name} ({spec.path}): cutoff {spec.probability_cutoff:g} (uint8 "
        f"{spec.cutoff_u8}), window {spec.window}; LiteRT {kernels} kernels"
    )
    if args.mic:
        try_mic(spec, args.seconds, optimized=args.optimized)
    else:
        try_wavs(spec, args.wav, optimized=args.optimized)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "try",
        help="try a wake-word model on the PC: over WAV files or live on the microphone",
        description=(
            "Run a wake-word model over WAV files (16 kHz mono 16-bit) or live on the PC "
            "microphone, the way the device runs it: the device's frontend numbers "
            "(pymicro-features), three feature frames per invocation and its detection rule "
            "(sliding-window mean above the cutoff, hold-off after a detection), and print "
            "each detection (time in the audio, model, output) and a summary. The model runs "
            "on LiteRT (ai-edge-litert); its reference kernels, the default, gave TFLite "
            "Micro's outputs to the bit over the four pymicro-wakeword models, so what is "
            "printed is what the device would detect."
        ),
        epilog=(
            "--optimized uses LiteRT's fast kernels (XNNPACK), about ten times faster; their "
            "outputs differed from TFLite Micro's (and the device's) by up to 14 steps of "
            "255 on some invocations, so a detection right at the cutoff can come out "
            "differently. Microphone: arecord or sox, or $WAKEWARD_MIC_COMMAND (a shell "
            "command writing raw 16-bit little-endian 16 kHz mono to stdout)."
        ),
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="alexa, hey_jarvis, hey_mycroft, okay_nabu, a .tflite file with its manifest "
        ".json beside it, or a model folder written by `wakeward train` (models/NAME)",
    )
    p.add_argument("wav", nargs="*", type=Path, metavar="WAV", help="16 kHz mono 16-bit WAV")
    p.add_argument("--mic", action="store_true", help="listen on the PC microphone")
    p.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help="with --mic: stop after S seconds of audio (default: at Ctrl-C)",
    )
    p.add_argument(
        "--cutoff",
        type=float,
        metavar="P",
        help="probability cutoff 0..1 (default: the manifest's probability_cutoff)",
    )
    p.add_argument(
        "--window",
        type=int,
        metavar="N",
        help="sliding window, in invocations (default: the manifest's sliding_window_size)",
    )
    p.add_argument(
        "--optimized",
        action="store_true",
        help="LiteRT's fast kernels instead of its reference kernels (see below)",
    )
    p.set_defaults(func=_cmd_try)
