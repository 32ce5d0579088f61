"""Every command's --help ends with examples that parse with the real parser, and
`wakeward completion` prints a completion script that completes commands and options."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest
from wakeward import cli, examples

from tests.conftest import REPO

WAKEWARD = [sys.executable, "-m", "wakeward"]
MIN_EXAMPLES = 2
COMMANDS = examples.commands(cli.build_parser())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WAKEWARD, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def command_words(line: str) -> list[str]:
    """An example's arguments: after `wakeward`, before any shell redirection."""
    words = shlex.split(line)
    assert words[0] == "wakeward", line
    return [w for w in words[1 : words.index(">") if ">" in words else None]]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_shows_examples_that_parse(name):
    parser = COMMANDS[name]
    shown = examples.shown(parser)
    assert len(shown) >= MIN_EXAMPLES, f"wakeward {name} --help shows {len(shown)} examples"
    assert examples.HEADING in parser.format_help()
    for line in shown:
        args = cli.build_parser().parse_args(command_words(line))
        assert " ".join(name.split()) in line and callable(args.func), line


def test_help_through_the_entry_point_keeps_the_example_lines_whole():
    done = run("clips", "purge", "--help")
    assert done.returncode == 0, done.stderr
    tail = done.stdout.split(examples.HEADING, 1)[1].splitlines()
    assert "  wakeward clips purge --older-than 30d --dry-run" in tail


def test_completion_scripts_complete_commands_and_options(tmp_path):
    done = run("completion", "bash")
    assert done.returncode == 0, done.stderr
    script = tmp_path / "wakeward.bash"
    script.write_text(done.stdout)
    probe = (
        f"source {shlex.quote(str(script))}\n"
        'ask() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _shtab_wakeward; '
        'echo "${COMPREPLY[*]}"; }\n'
        "ask wakeward sat\nask wakeward clips pu\nask wakeward clips purge --ol\n"
    )
    said = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60)
    assert said.returncode == 0, said.stderr
    assert said.stdout.splitlines() == ["satellite", "purge", "--older-than"]
    zsh = run("completion", "zsh")
    assert zsh.returncode == 0 and "#compdef wakeward" in zsh.stdout
    if shutil.which("zsh"):
        assert subprocess.run(["zsh", "-n"], input=zsh.stdout, text=True).returncode == 0


def test_completion_refuses_an_unknown_shell():
    done = run("completion", "fish")
    assert done.returncode == 2 and "invalid choice: 'fish'" in done.stderr
