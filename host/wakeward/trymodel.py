"""`wakeward try --model MODEL [WAV ...] [--mic]`: wake-word models on the PC, over WAV
files or live on the PC's microphone, with the device's frontend numbers and detection rule
(wakeward.hostmodel), so a word can be tried before it is flashed."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wakeward import models
from wakeward.errors import WakewardError
from wakeward.wording import plural

if TYPE_CHECKING:  # numpy and LiteRT load only when the command runs
    import numpy as np

    from wakeward.hostmodel import Detection, Listener, ModelSpec

Say = Callable[[str], None]
MIC_SOURCE = "microphone"
U8_MAX = 255  # the models' uint8 output scale: output / 255 is the probability


def detection_line(d: Detection, spec: ModelSpec, prefix: str = "") -> str:
    return (
        f"{prefix}detected: {d.model} at {d.t:.2f} s (output {d.p / U8_MAX:.2f}, mean of the "
        f"last {spec.window} {d.mean / U8_MAX:.2f} > cutoff {spec.cutoff_u8 / U8_MAX:.2f})"
    )


@dataclass
class Heard:
    """What the models heard in one source (a WAV file or the microphone)."""

    source: str
    seconds: float = 0.0
    detections: list[Detection] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "seconds": round(self.seconds, 3),
            "detections": [
                {
                    "model": d.model,
                    "t": round(d.t, 3),
                    "output": round(d.p / U8_MAX, 3),
                    "mean": round(d.mean / U8_MAX, 3),
                }
                for d in self.detections
            ],
        }


def run_blocks(
    blocks: Iterable[np.ndarray], listeners: Sequence[Listener], say: Say, prefix: str = ""
) -> None:
    """Feed audio blocks through every model's listener, saying each detection in time
    order."""
    for block in blocks:
        found = [(d, li.spec) for li in listeners for d in li.feed(block)]
        for d, spec in sorted(found, key=lambda x: x[0].t):
            say(detection_line(d, spec, prefix))


def _summary(heard: Heard, specs: Sequence[ModelSpec]) -> str:
    found = plural(len(heard.detections), "detection")
    text = f"{heard.source}: {found} in {heard.seconds:.2f} s of audio"
    if len(specs) > 1:
        each = [f"{s.name} {sum(d.model == s.name for d in heard.detections)}" for s in specs]
        text += f" ({', '.join(each)})"
    return text


def try_wavs(
    specs: Sequence[ModelSpec], wavs: Sequence[Path], *, optimized: bool = False, say: Say = print
) -> list[Heard]:
    """Each WAV from a fresh start (as a device that has just booted), every model on it."""
    from wakeward.audio import read_any_wav
    from wakeward.hostmodel import Listener

    audio = [(wav, read_any_wav(wav)) for wav in wavs]  # every file checked before any runs
    heard = []
    for wav, samples in audio:
        listeners = [Listener(spec, optimized=optimized) for spec in specs]
        prefix = f"{wav}: " if len(wavs) > 1 else ""
        run_blocks([samples], listeners, say, prefix)
        one = Heard(str(wav), listeners[0].seconds, _in_time_order(listeners))
        say(_summary(one, specs))
        heard.append(one)
    if len(wavs) > 1:
        seconds = sum(h.seconds for h in heard)
        for spec in specs:
            found = sum(d.model == spec.name for h in heard for d in h.detections)
            say(
                f"{spec.name}: {plural(found, 'detection')} in {seconds:.2f} s of audio, "
                f"{plural(len(wavs), 'file')}"
            )
    return heard


def _in_time_order(listeners: Sequence[Listener]) -> list[Detection]:
    return sorted((d for li in listeners for d in li.detections), key=lambda d: d.t)


def try_mic(
    specs: Sequence[ModelSpec],
    seconds: float | None,
    *,
    optimized: bool = False,
    say: Say = print,
) -> Heard:
    """Live on the PC microphone until `seconds` of audio, Ctrl-C or the capture's end."""
    from wakeward import mic
    from wakeward.hostmodel import Listener

    listeners = [Listener(spec, optimized=optimized) for spec in specs]
    program = mic.capture()
    how = f"for {seconds:g} s" if seconds is not None else "until Ctrl-C"
    names = ", ".join(spec.name for spec in specs)
    with mic.Microphone(program) as m:
        say(f"listening for {names} on the microphone (`{program.shown}`) {how}")
        try:
            run_blocks(m.blocks(seconds), listeners, say)
        except KeyboardInterrupt:
            say("stopped (Ctrl-C)")
        if m.ended and (seconds is None or listeners[0].seconds < seconds):
            say("the capture command ended")
    heard = Heard(MIC_SOURCE, listeners[0].seconds, _in_time_order(listeners))
    say(_summary(heard, specs))
    return heard


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _wavs_and_models(args: argparse.Namespace) -> tuple[list[Path], list[str]]:
    """try's words: WAV files after --model; without --model the first word is the model
    (the older form `wakeward try MODEL WAV ...`)."""
    words = list(args.inputs)
    if args.model:
        return [Path(w) for w in words], list(args.model)
    if not words:
        raise WakewardError(
            f"try: give a model: --model {models.MODEL_METAVAR} ({models.model_help()})"
        )
    return [Path(w) for w in words[1:]], [words[0]]


def _cmd_try(args: argparse.Namespace) -> int:
    from wakeward import hostmodel

    wavs, given = _wavs_and_models(args)
    if args.mic == bool(wavs):
        raise WakewardError("try: give WAV files, or --mic for the PC microphone")
    if args.seconds is not None and not args.mic:
        raise WakewardError("--seconds goes with --mic")
    if args.seconds is not None and not args.seconds > 0:
        raise WakewardError(f"--seconds {args.seconds:g}: must be more than 0")
    specs = [hostmodel.model_spec(m, args.cutoff, args.window) for m in given]
    names = [spec.name for spec in specs]
    if len(set(names)) < len(names):
        raise WakewardError(f"two models have the same name: {', '.join(names)}")
    say: Say = _stderr if args.json else print  # --json: stdout holds the JSON alone
    kernels = "optimized" if args.optimized else "reference"
    for spec in specs:
        say(
            f"model {spec.name} ({spec.path}): cutoff {spec.probability_cutoff:g} (uint8 "
            f"{spec.cutoff_u8}), window {spec.window}; LiteRT "
            f"{'optimized (XNNPACK)' if args.optimized else 'reference'} kernels"
        )
    if args.mic:
        heard = [try_mic(specs, args.seconds, optimized=args.optimized, say=say)]
    else:
        heard = try_wavs(specs, wavs, optimized=args.optimized, say=say)
    if args.json:
        report = {
            "models": [
                {
                    "name": spec.name,
                    "path": str(spec.path),
                    "probability_cutoff": spec.probability_cutoff,
                    "sliding_window_size": spec.window,
                }
                for spec in specs
            ],
            "kernels": kernels,
            "sources": [h.to_json() for h in heard],
        }
        print(json.dumps(report, indent=1))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "try",
        help="try a wake-word model on the PC: over WAV files or live on the microphone",
        description=(
            "Run wake-word models over WAV files or live on the PC "
            "microphone, the way the device runs them: the device's frontend numbers "
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
    models.add_model_option(p, several=True, help_extra="all run on the same audio")
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="WAV",
        help="WAV files (any common format, converted as sim converts them); without "
        "--model the first word is the model (the older form: try MODEL WAV ...)",
    )
    p.add_argument("--mic", action="store_true", help="listen on the PC microphone")
    p.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help="with --mic: stop after S seconds (default: at Ctrl-C)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the models and their detections as one JSON object on stdout at the end "
        "(outputs as probabilities 0..1; the other lines go to stderr)",
    )
    add_rule_options(p)
    p.set_defaults(func=_cmd_try)


def add_rule_options(p: argparse.ArgumentParser) -> None:
    """--cutoff, --window and --optimized, as every command that runs models on the PC
    (try, wake-service) takes them."""
    p.add_argument(
        "--cutoff",
        type=float,
        metavar="P",
        help="probability cutoff 0..1 for every model (default: each manifest's)",
    )
    p.add_argument(
        "--window",
        type=int,
        metavar="N",
        help="sliding window, in invocations, for every model (default: each manifest's)",
    )
    p.add_argument(
        "--optimized",
        action="store_true",
        help="LiteRT's fast kernels instead of its reference kernels (`wakeward try --help` "
        "says how they differ)",
    )
