"""`wakeward completion SHELL`: a shell completion script, made from the command table by
PyPI shtab. It prints the script and changes nothing: where to put it is the user's call
(the examples say where bash and zsh look)."""

from __future__ import annotations

import argparse

import shtab

from wakeward.errors import WakewardError

SHELLS = ("bash", "zsh", "tcsh")


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `shell` over every command and option of `parser`."""
    if shell not in SHELLS:
        raise WakewardError(f"completion for {shell!r}: the shells are {', '.join(SHELLS)}")
    return shtab.complete(parser, shell=shell)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or tcsh)",
        description="Print a completion script for every wakeward command and option. "
        "Nothing is installed: redirect it where your shell loads completions, e.g. "
        "~/.local/share/bash-completion/completions/wakeward for bash (bash-completion), a "
        "folder of your $fpath as _wakeward for zsh, or `source` it from your shell's startup "
        "file.",
    )
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=_cmd_completion)


def _cmd_completion(args: argparse.Namespace) -> int:
    from wakeward import cli

    print(script(cli.build_parser(), args.shell), end="")
    return 0
