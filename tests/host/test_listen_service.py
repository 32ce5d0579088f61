"""`wakeward listen` and `satellite` as a service: timestamped lines with levels,
--log-file, the config file's defaults (flags win; a bad file is named), and Ctrl-C or
SIGTERM saying what was received and exiting 0. Run through the real `wakeward` script."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from wakeward.store import ClipStore

from tests.host.loglines import LOG_PREFIX, plain
from tests.host.test_listen import Device

WAKEWARD = str(Path(sys.executable).parent / "wakeward")  # the entry point pip installed
WAIT_S = 30.0


def env(tmp_path: Path, **more: str) -> dict[str, str]:
    """An environment whose config folder is the test's (no owner's config file read)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WAKEWARD_", "JOURNAL"))}
    return {**base, "WAKEWARD_CONFIG_DIR": str(tmp_path / "config"), **more}


def run(tmp_path: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`wakeward ARGV` run to its end in `tmp_path`, with the test's config folder."""
    return subprocess.run(
        [WAKEWARD, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env(tmp_path),
        timeout=WAIT_S,
        check=False,
    )


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


class Running:
    """The command in its own process, up to its first line (where it listens)."""

    def __init__(self, tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [WAKEWARD, *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(tmp_path, **(extra_env or {})),
        )
        assert self.proc.stdout is not None
        self.said: list[str] = []  # up to its receiver's first line (satellite's come first)
        found = None
        while found is None:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.kill()
                raise AssertionError("".join(self.said) + self.proc.communicate()[1])
            self.said.append(line.rstrip("\n"))
            found = re.search(r"listening on [^ ]+:(\d+),", line)
        self.first = line
        self.port = int(found.group(1))

    def device(self, device_id: str = "kitchen") -> Device:
        import socket

        return Device(socket.create_connection(("127.0.0.1", self.port), WAIT_S), device_id)

    def stop(self, sig: int = signal.SIGINT) -> tuple[list[str], str]:
        self.proc.send_signal(sig)
        self.proc.wait(WAIT_S)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        # through the readers readline() used: communicate() would lose what they hold
        return [*self.said, *self.proc.stdout.read().splitlines()], self.proc.stderr.read()


def test_each_line_has_its_time_and_level_and_ctrl_c_says_what_came(tmp_path):
    rx = Running(tmp_path, "listen", "--tcp", "127.0.0.1:0", "--store", str(tmp_path / "clips"))
    dev = rx.device()
    dev.clip(7)
    assert dev.ack() == 7
    dev.clip(7)  # a resend: acknowledged again, stored once
    assert dev.ack() == 7
    lines, err = rx.stop(signal.SIGINT)
    assert rx.proc.returncode == 0, err
    assert err == ""
    assert all(LOG_PREFIX.match(x) for x in lines), lines
    assert plain(lines[0]).startswith("listening on 127.0.0.1:")
    assert " INFO hello from kitchen " in "\n".join(lines)
    assert plain(lines[-1]) == (
        "stopped (Ctrl-C): 1 new clip stored (kitchen: 1), 1 resend of clips already "
        "stored; 1 device: kitchen said hello"
    )


def test_sigterm_stops_it_as_ctrl_c_does(tmp_path):
    """`systemctl stop` sends SIGTERM: the same clean stop, exit 0."""
    rx = Running(tmp_path, "listen", "--tcp", "127.0.0.1:0", "--store", str(tmp_path / "clips"))
    lines, err = rx.stop(signal.SIGTERM)
    assert rx.proc.returncode == 0, err
    assert plain(lines[-1]) == "stopped (SIGTERM): 0 new clips stored; no device said hello"


def test_warnings_are_at_warning_level_and_said_once(tmp_path):
    rx = Running(tmp_path, "listen", "--tcp", ":0", "--store", str(tmp_path / "clips"))
    lines, err = rx.stop()
    warning = [x for x in lines if " WARNING " in x]
    assert len(warning) == 1 and LOG_PREFIX.match(warning[0]), (lines, err)
    assert " WARNING plain TCP, no TLS: any device" in warning[0]  # not "WARNING WARNING:"


def test_the_log_file_gets_every_line_appended(tmp_path):
    log = tmp_path / "wakeward.log"
    log.write_text("an older line\n")
    rx = Running(
        tmp_path,
        "listen",
        "--tcp",
        "127.0.0.1:0",
        "--store",
        str(tmp_path / "clips"),
        "--log-file",
        str(log),
    )
    lines, _ = rx.stop()
    assert log.read_text().splitlines() == ["an older line", *lines]


def test_a_log_file_that_cannot_be_written_is_refused_at_start(tmp_path):
    done = run(tmp_path, ["listen", "--tcp", "127.0.0.1:0", "--log-file", "nodir/x.log"])
    assert done.returncode == 1
    assert done.stderr == (
        "wakeward: --log-file nodir/x.log: cannot write (No such file or directory)\n"
    )


def test_the_journal_gets_levels_and_no_time_of_ours(tmp_path):
    """Under systemd, stdout is the journal's (JOURNAL_STREAM): it keeps the time itself
    and reads a level from each line's <N> prefix."""
    out = tmp_path / "journal"
    with out.open("w") as f:
        st = os.fstat(f.fileno())
        proc = subprocess.Popen(
            [WAKEWARD, "listen", "--tcp", ":0", "--once", "--store", str(tmp_path / "clips")],
            cwd=tmp_path,
            stdout=f,
            stderr=subprocess.PIPE,
            env=env(tmp_path, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"),
        )
        while "listening on" not in out.read_text():
            assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        proc.wait(WAIT_S)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("<6>listening on 0.0.0.0:")
    assert lines[1].startswith("<4>plain TCP, no TLS: ")
    assert lines[-1].startswith("<6>stopped (Ctrl-C): ")


def test_the_config_file_gives_the_defaults_and_flags_win(tmp_path):
    config(tmp_path, 'listen = "127.0.0.1:0"\nstore = "my clips"\n')
    rx = Running(tmp_path, "listen")
    dev = rx.device()
    dev.clip(3)
    assert dev.ack() == 3
    rx.stop()
    with ClipStore(tmp_path / "config" / "my clips", create=False) as store:
        assert [c.device_clip_id for c in store.clips()] == [3]  # relative: the file's folder
    rx = Running(tmp_path, "listen", "--tcp", "127.0.0.1:0", "--store", str(tmp_path / "flag"))
    rx.stop()
    assert f"clip store in {tmp_path / 'flag'} " in rx.first  # --store won over `store`


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('listen = "127.0.0.1:7000"\nstor = "x"\n', "stor: not a setting (the settings: "),
        ("listen = 7000\n", "listen: must be a non-empty string in quotes, not 7000"),
        ('listen = "7000"\n', "listen: '7000' is not HOST:PORT (e.g. listen = \"0.0.0.0:7000\")"),
        ('store = ""\n', "store: must be a non-empty string in quotes, not ''"),
        ('listen = "127.0.0.1:7000\n', "not valid TOML: "),
    ],
)
def test_a_bad_config_file_is_named_with_its_field(tmp_path, text, message):
    path = config(tmp_path, text)
    done = run(tmp_path, ["listen"])
    assert done.returncode == 1
    assert done.stderr.startswith(f"wakeward: {path}: {message}"), done.stderr
    assert done.stdout == ""


def test_without_an_address_or_a_config_it_says_what_to_give(tmp_path):
    done = run(tmp_path, ["listen"])
    assert done.returncode == 1
    assert done.stderr == (
        "wakeward: say where to listen: --tcp HOST:PORT or --serial PORT (or a default in "
        f'{tmp_path / "config" / "config.toml"}: listen = "HOST:PORT")\n'
    )


def test_the_clips_commands_read_the_configured_store(tmp_path):
    """`store` is every command's default, so `clips list` sees what listen stored."""
    config(tmp_path, 'store = "clips"\n')
    done = run(tmp_path, ["clips", "list"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"no clips yet in {tmp_path / 'config' / 'clips'}"


def test_satellite_logs_and_stops_as_listen_does(tmp_path):
    config(tmp_path, 'listen = "127.0.0.1:0"\n')
    rx = Running(
        tmp_path,
        "satellite",
        "--store",
        str(tmp_path / "clips"),
        "--wyoming",
        "127.0.0.1:0",
        "--no-zeroconf",
        "--log-file",
        str(tmp_path / "sat.log"),
    )
    lines, err = rx.stop()
    assert rx.proc.returncode == 0, err
    assert all(LOG_PREFIX.match(x) for x in lines), lines
    assert plain(lines[-1]) == "stopped (Ctrl-C): 0 new clips stored; no device said hello"
    assert (tmp_path / "sat.log").read_text().splitlines() == lines


def test_the_error_it_stops_with_is_in_the_log_file_too(tmp_path):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run(
            tmp_path,
            ["listen", "--tcp", f"127.0.0.1:{port}", "--log-file", "l.log"]
            + ["--store", str(tmp_path / "clips")],
        )
    assert done.returncode == 1
    message = done.stderr.rstrip("\n")
    assert message.startswith(f"wakeward: cannot listen on 127.0.0.1:{port}: Address already")
    logged = (tmp_path / "l.log").read_text().splitlines()
    assert len(logged) == 1 and LOG_PREFIX.match(logged[0]), logged
    assert logged[0].endswith(f" ERROR {message}")
