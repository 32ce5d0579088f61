"""Two or three examples at the end of every command's --help, in one table.

`attach(parser)` adds them to each command's epilog (after any text it already has; a
command whose epilog already shows examples keeps its own). Each example is a whole
command line; tests/host/test_help.py parses every one with the real parser, so an example
that no longer parses fails there.
"""

from __future__ import annotations

import argparse
import re

HEADING = "examples:"

EXAMPLES: dict[str, tuple[str, ...]] = {
    "sim": (
        "wakeward sim build/demo/demo.wav --model alexa",
        "wakeward sim speech.wav --model hey_wakeward --json",
        "wakeward sim speech.wav --model alexa --link 127.0.0.1:7000 --realtime",
    ),
    "model check": (
        "wakeward model check --model alexa",
        "wakeward model check --model hey_wakeward --inputs frames.npy --save-outputs out.npy",
        "wakeward model check --model models/mine --json",
    ),
    "features": (
        "wakeward features speech.wav --out frames.npy",
        "wakeward features speech.wav --out ref.npy --reference",
    ),
    "listen": (
        "wakeward listen --tcp :7000 --tls",
        "wakeward listen --serial /dev/ttyACM0 --store ~/clips",
        "wakeward listen --tcp 127.0.0.1:7000 --exec 'aplay {wav}'",
    ),
    "demo": (
        "wakeward demo",
        "wakeward demo --workdir /tmp/wakeward-demo",
    ),
    "clips list": (
        "wakeward clips list",
        "wakeward clips list --label false-wake --since 7d",
        "wakeward clips list --device kitchen --json",
    ),
    "clips show": (
        "wakeward clips show 12",
        "wakeward clips show 12 --json",
    ),
    "clips play": (
        "wakeward clips play 12",
        "wakeward clips play 12 --player 'mpv --no-video'",
    ),
    "clips label": (
        "wakeward clips label 12 false-wake",
        "wakeward clips label 12 wake",
        "wakeward clips label 12 --clear",
    ),
    "clips delete": (
        "wakeward clips delete 12",
        "wakeward clips delete 12 13 14",
    ),
    "clips purge": (
        "wakeward clips purge --older-than 30d --dry-run",
        "wakeward clips purge --older-than 12h --yes",
    ),
    "clips retention": (
        "wakeward clips retention",
        "wakeward clips retention --max-age 90d --max-mb 500 --apply",
    ),
    "monitor": (
        "wakeward monitor --sim speech.wav --model alexa --save alexa.png",
        "wakeward monitor --tcp :7000 --tls --seconds 60 --save kitchen.png",
    ),
    "pair": (
        "wakeward pair kitchen",
        "wakeward pair kitchen --renew",
    ),
    "devices": (
        "wakeward devices",
        "wakeward devices --json",
        "wakeward devices --revoke kitchen",
    ),
    "flash": (
        "wakeward flash --port /dev/ttyACM0 --board xiao-esp32s3 --model alexa --wifi home",
        "wakeward flash --port /dev/ttyACM0 --model models/hey_wakeward --link serial",
    ),
    "deploy": (
        "wakeward deploy --port /dev/ttyACM0 --model models/hey_wakeward",
        "wakeward deploy --port /dev/ttyACM0 --model alexa --dry-run",
    ),
    "train-data": (
        'wakeward train-data "hey wakeward" --out build/train/hey_wakeward/data',
        "wakeward train-data alexa --out data/alexa --engine piper --engine flite",
    ),
    "train": (
        'wakeward train "hey wakeward" --out models/hey_wakeward',
        'wakeward train "hey wakeward" --out models/mine --owner takes/ --false-wakes-from-store',
        "wakeward train alexa --out /tmp/alexa --quick",
    ),
    "evaluate": (
        "wakeward evaluate --model alexa --data build/train/alexa/data",
        "wakeward evaluate --model wakeward_alexa --data build/train/alexa/data --save ev.json",
        "wakeward evaluate --model models/mine --data data/mine --eval-hours 1 --json",
        "wakeward evaluate --model models/mine --data data/mine --update-manifest",
    ),
    "try": (
        "wakeward try --model alexa speech.wav",
        "wakeward try --model hey_wakeward --model alexa a.wav b.wav --json",
        "wakeward try --model models/mine --mic --seconds 30",
    ),
    "record": (
        'wakeward record "hey wakeward" --out takes/hey_wakeward --takes 10 --take-seconds 2.5',
        'wakeward record "hey wakeward" --out takes/hey_wakeward --from-speaker --tcp :7000',
    ),
    "satellite": (
        "wakeward satellite --tcp :7000 --tls --wyoming 0.0.0.0",
        "wakeward satellite --tcp :7000 --tls --wyoming kitchen=0.0.0.0:10700",
    ),
    "wake-service": (
        "wakeward wake-service --model hey_wakeward --wyoming 0.0.0.0",
        "wakeward wake-service --model alexa --model hey_jarvis --wyoming 127.0.0.1:10400 "
        "--no-zeroconf",
    ),
    "review": (
        "wakeward review",
        "wakeward review --store ~/clips --no-browser --port 8080",
    ),
    "service install": (
        "wakeward service install listen --tcp :7000 --tls",
        "wakeward service install satellite --tcp 0.0.0.0:7000 --tls --wyoming 0.0.0.0",
        "wakeward service install wake-service hey_wakeward --wyoming 0.0.0.0",
        "wakeward service install --dry-run listen --serial /dev/ttyACM0",
    ),
    "completion": (
        "wakeward completion bash > ~/.local/share/bash-completion/completions/wakeward",
        'wakeward completion zsh > "${fpath[1]}/_wakeward"',
    ),
}


class ExamplesFormatter(argparse.HelpFormatter):
    """argparse's formatter, but the examples block of an epilog keeps its lines."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        head, found, tail = text.partition(HEADING)
        if not found:
            return super()._fill_text(text, width, indent)
        filled = super()._fill_text(head, width, indent) + "\n\n" if head.strip() else ""
        return filled + indent + HEADING + tail


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[str, argparse.ArgumentParser]:
    """Every leaf command's parser by its words ("clips list")."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {" ".join(path): parser}
    out: dict[str, argparse.ArgumentParser] = {}
    for name, sub in subs[0].choices.items():
        out.update(commands(sub, (*path, name)))
    return out


def shown(parser: argparse.ArgumentParser) -> list[str]:
    """The example command lines a parser's epilog shows."""
    _, found, tail = (parser.epilog or "").partition(HEADING)
    if not found:
        return []
    return [m.group(1) for m in re.finditer(r"^\s+(wakeward .+)$", tail, re.MULTILINE)]


def attach(parser: argparse.ArgumentParser) -> None:
    for name, sub in commands(parser).items():
        if shown(sub) or name not in EXAMPLES:
            continue
        block = HEADING + "\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])
        sub.epilog = f"{sub.epilog}\n\n{block}" if sub.epilog else block
        if sub.formatter_class is argparse.HelpFormatter:
            sub.formatter_class = ExamplesFormatter
