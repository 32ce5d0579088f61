"""`wakeward service install {listen,satellite,wake-service} [ARGS...]`: the receiver (or
the wake-word service) as a systemd user service. It writes
~/.config/systemd/user/wakeward-COMMAND.service (under $XDG_CONFIG_HOME when that is set)
whose ExecStart is this wakeward's absolute path and the command with ARGS, checked as the
command would check them; it runs in the folder the unit was installed from (relative paths
mean what they meant), with this shell's WAKEWARD_* folders, and restarts when it fails.

It changes nothing else: it never enables or starts the unit (it prints the systemctl
commands for that), and never replaces a different unit of that name without --force.
--dry-run prints the unit and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import textwrap
from pathlib import Path

from wakeward import __version__
from wakeward.errors import WakewardError
from wakeward.files import write_text_atomic
from wakeward.link import servicelog

# what each command is, for the unit's Description
COMMANDS = {
    "listen": "receive the speakers' clips into the clip store",
    "satellite": "receive the speakers' clips and serve them to Home Assistant (Wyoming)",
    "wake-service": "serve wake-word models to Home Assistant (a Wyoming wake-word service)",
}
RECEIVERS = ("listen", "satellite")  # take --tcp (or the config file's listen) or --serial
# the environment that says where wakeward keeps things: carried into the unit
CARRIED_ENV = ("WAKEWARD_CONFIG_DIR", "WAKEWARD_DATA_DIR")
RESTART_S = 10  # after a failure (e.g. the address is not up yet at login), try again
# a word systemd reads as it is, unquoted (after % and $ are doubled)
_BARE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_OWN_FLAGS = ("--force", "--dry-run")
HELP_WIDTH = 78  # the description is wrapped here (its examples keep their lines)


def unit_name(command: str) -> str:
    return f"wakeward-{command}.service"


def unit_dir() -> Path:
    """Where systemd's user manager reads the user's own units."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def program() -> list[str]:
    """This wakeward, as an absolute command: the `wakeward` script that runs now, else
    the one beside this Python (a virtual environment's), else this Python with -m."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "wakeward" and argv0.is_file():
        return [str(argv0.absolute())]
    beside = Path(os.path.abspath(sys.executable)).parent / "wakeward"
    if beside.is_file():
        return [str(beside)]
    return [os.path.abspath(sys.executable), "-m", "wakeward"]


def _plain(text: str) -> str:
    """`text`, refused if it holds a control character (a unit's line would break)."""
    if any(ord(c) < ord(" ") or c == "\x7f" for c in text):
        raise WakewardError(f"{text!r}: a control character cannot go into a systemd unit")
    return text


def _escape(text: str) -> str:
    """% as systemd reads it literally (it starts a specifier in every setting)."""
    return _plain(text).replace("%", "%%")


def _word(escaped: str) -> str:
    """One word as systemd splits a line: bare, or in double quotes with C escapes."""
    if _BARE_WORD.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_word(word: str) -> str:
    """One word of an ExecStart= line as systemd.service(5) reads it back ($ starts an
    environment variable there: doubled)."""
    return _word(_escape(word).replace("$", "$$"))


def environment_word(key: str, value: str) -> str:
    """One KEY=VALUE of an Environment= line (systemd.exec(5): no $ expansion there)."""
    return _word(_escape(f"{key}={value}"))


def unit_text(command: str, args: list[str], *, workdir: Path, env: dict[str, str]) -> str:
    words = [*program(), command, *args]
    lines = [
        f"# Written by `wakeward service install {command}` (wakeward {__version__}).",
        f"# Reinstall with: wakeward service install --force {command} {shlex.join(args)}",
        "[Unit]",
        f"Description=wakeward {command}: {COMMANDS[command]}",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={_escape(str(workdir))}",
    ]
    for key in CARRIED_ENV:
        if env.get(key):
            lines.append(f"Environment={environment_word(key, env[key])}")
    lines += [
        "ExecStart=" + " ".join(exec_word(w) for w in words),
        "Restart=on-failure",
        f"RestartSec={RESTART_S}",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def _check_args(command: str, args: list[str]) -> None:
    """ARGS as the command reads them (argparse says what is wrong, then this refuses)."""
    from wakeward import cli

    try:
        parsed = cli.build_parser().parse_args([command, *args])
    except SystemExit:
        raise WakewardError(
            f"service install: `wakeward {command} {shlex.join(args)}` is not a command "
            f"line {command} takes (see above, and `wakeward {command} --help`)"
        ) from None
    if getattr(parsed, "once", False):
        raise WakewardError("service install: --once stops after one connection; leave it out")
    if command in RECEIVERS and parsed.serial is None:
        servicelog.tcp_address(parsed.tcp)  # where: --tcp, or the config file's default


def _split(rest: list[str]) -> tuple[list[str], set[str]]:
    """ARGS without install's own --force/--dry-run (they may come after the command too;
    after `--`, every word is the command's)."""
    args: list[str] = []
    own: set[str] = set()
    for i, word in enumerate(rest):
        if word == "--":
            args += rest[i + 1 :]
            break
        if word in _OWN_FLAGS:
            own.add(word)
        else:
            args.append(word)
    return args, own


def _cmd_install(args: argparse.Namespace) -> int:
    rest, own = _split(args.args)
    dry_run = args.dry_run or "--dry-run" in own
    force = args.force or "--force" in own
    _check_args(args.command, rest)
    text = unit_text(args.command, rest, workdir=Path.cwd(), env=dict(os.environ))
    name = unit_name(args.command)
    path = unit_dir() / name
    if dry_run:
        print(f"# {path} (--dry-run: not written)")
        print(text, end="")
        return 0
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else None
    except OSError as e:
        raise WakewardError(f"{path}: cannot read ({e.strerror})") from None
    if old == text:
        print(f"{path}: already installed as it is (unchanged)")
    elif old is not None and not force:
        raise WakewardError(
            f"{path} exists and differs: see it with --dry-run, replace it with --force"
        )
    else:
        write_text_atomic(path, text)
        print(f"{'replaced' if old is not None else 'wrote'} {path}")
    print("It is not enabled or started. To start it now and at each login:")
    print(f"  systemctl --user daemon-reload && systemctl --user enable --now {name}")
    print(f"Its log: journalctl --user -u {name} -f")
    print(
        "To keep it running while you are logged out (changes the system's login "
        "settings): loginctl enable-linger $USER"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "service",
        help="run listen, satellite or wake-service as a systemd user service",
        description="Write a systemd user unit that runs `wakeward listen`, "
        "`wakeward satellite` or `wakeward wake-service` with your arguments.",
    )
    service_sub = p.add_subparsers(dest="service_command", required=True, metavar="ACTION")
    text = "write ~/.config/systemd/user/wakeward-COMMAND.service (not enabled: it says how)"
    i = service_sub.add_parser(
        "install",
        help=text,
        description=textwrap.fill(
            text + ". ARGS are the command's own, checked as it checks them; the unit runs "
            "this wakeward, in this folder, with this shell's WAKEWARD_CONFIG_DIR and "
            "WAKEWARD_DATA_DIR, and restarts it when it fails. An existing different unit is "
            "kept unless --force. --force and --dry-run may also come after the command.",
            HELP_WIDTH,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("--force", action="store_true", help="replace a different unit of that name")
    i.add_argument("--dry-run", action="store_true", help="print the unit; write nothing")
    i.add_argument("command", choices=sorted(COMMANDS), help="the command to run")
    i.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="its arguments")
    i.set_defaults(func=_cmd_install)
