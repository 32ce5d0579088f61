"""`wakeward service install`: a systemd user unit for listen, satellite or wake-service,
checked with systemd-analyze where it runs; never enabled, never a different unit replaced silently.
Run through the real `wakeward` script, with HOME and XDG_CONFIG_HOME in the test's
folder."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

WAKEWARD = str(Path(sys.executable).parent / "wakeward")  # the entry point pip installed
WAIT_S = 60.0
HA_DOCS_FORM = ["satellite", "--tcp", "0.0.0.0:7000", "--tls", "--wyoming", "0.0.0.0"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder with a `systemctl` on PATH that records any call (there must be none)."""
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    spy = home / "bin" / "systemctl"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {home / "systemctl-called"}\n')
    spy.chmod(spy.stat().st_mode | stat.S_IXUSR)
    return home


def install(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("WAKEWARD_", "XDG_"))}
    done = subprocess.run(
        [WAKEWARD, "service", "install", *args],
        cwd=home,
        capture_output=True,
        text=True,
        env={
            **keep,
            "HOME": str(home),
            "PATH": f"{home / 'bin'}:{keep['PATH']}",
            "WAKEWARD_CONFIG_DIR": str(home / "wakeward-config"),
            **env,
        },
        timeout=WAIT_S,
        check=False,
    )
    assert not (home / "systemctl-called").exists()  # nothing enabled, started or reloaded
    return done


def unit(home: Path, command: str) -> Path:
    return home / ".config" / "systemd" / "user" / f"wakeward-{command}.service"


def verify(path: Path) -> None:
    """systemd-analyze's own check of the unit (its ExecStart's program must exist)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (systemd's tools)")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False
    )
    if "Failed to initialize manager" in done.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def test_the_home_assistant_docs_form_writes_a_unit_and_says_how_to_start_it(home):
    done = install(home, *HA_DOCS_FORM)
    assert done.returncode == 0, done.stderr
    path = unit(home, "satellite")
    text = path.read_text()
    assert f"ExecStart={WAKEWARD} satellite --tcp 0.0.0.0:7000 --tls --wyoming 0.0.0.0\n" in text
    assert f"WorkingDirectory={home}\n" in text
    assert f"Environment=WAKEWARD_CONFIG_DIR={home / 'wakeward-config'}\n" in text
    assert "WantedBy=default.target" in text
    assert done.stdout.splitlines()[0] == f"wrote {path}"
    assert (
        "  systemctl --user daemon-reload && systemctl --user enable --now "
        "wakeward-satellite.service"
    ) in done.stdout.splitlines()
    verify(path)


def test_a_listen_unit_passes_systemd_analyze(home):
    done = install(home, "listen", "--tcp", ":7000", "--store", "clips", "--log-file", "l.log")
    assert done.returncode == 0, done.stderr
    verify(unit(home, "listen"))


def test_a_wake_service_unit_serves_the_models_where_home_assistant_connects(home):
    args = ["alexa", "--wyoming", "0.0.0.0", "--log-file", "wake.log"]
    done = install(home, "wake-service", *args)
    assert done.returncode == 0, done.stderr
    path = unit(home, "wake-service")
    text = path.read_text()
    assert f"ExecStart={WAKEWARD} wake-service {' '.join(args)}\n" in text
    assert "Description=wakeward wake-service: serve wake-word models to Home Assistant" in text
    assert done.stdout.splitlines()[0] == f"wrote {path}"
    verify(path)


def test_awkward_arguments_are_quoted_as_systemd_reads_them(home):
    """A space, a quote, % (a specifier) and $ (a variable) stay what they were."""
    done = install(home, "listen", "--tcp", ":7000", "--store", 'my "clips" 100%$HOME')
    assert done.returncode == 0, done.stderr
    text = unit(home, "listen").read_text()
    assert ' --store "my \\"clips\\" 100%%$$HOME"\n' in text
    verify(unit(home, "listen"))


def test_the_shells_wakeward_folders_go_into_the_unit_as_they_are(home):
    data = str(home / "my data" / "100%$x")
    done = install(home, "listen", "--tcp", ":7000", WAKEWARD_DATA_DIR=data)
    assert done.returncode == 0, done.stderr
    text = unit(home, "listen").read_text()
    assert f'Environment="WAKEWARD_DATA_DIR={home}/my data/100%%$x"\n' in text  # no $ there
    verify(unit(home, "listen"))


def test_dry_run_prints_the_unit_and_writes_nothing(home):
    done = install(home, *HA_DOCS_FORM, "--dry-run")  # install's own flag, after the command
    assert done.returncode == 0, done.stderr
    assert not unit(home, "satellite").exists()
    assert "--dry-run: not written" in done.stdout.splitlines()[0]
    assert "ExecStart=" in done.stdout and "[Install]" in done.stdout


def test_a_different_unit_is_kept_unless_forced(home):
    assert install(home, "listen", "--tcp", ":7000").returncode == 0
    path = unit(home, "listen")
    first = path.read_text()
    again = install(home, "listen", "--tcp", ":7000")
    assert again.returncode == 0 and "unchanged" in again.stdout.splitlines()[0]
    other = install(home, "listen", "--tcp", ":7001")
    assert other.returncode == 1
    assert other.stderr == (
        f"wakeward: {path} exists and differs: see it with --dry-run, replace it with --force\n"
    )
    assert path.read_text() == first
    forced = install(home, "--force", "listen", "--tcp", ":7001")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.splitlines()[0] == f"replaced {path}"
    assert "--tcp :7001\n" in path.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["listen", "--tcp", ":7000", "--once"], "--once stops after one connection"),
        (["listen", "--tpc", ":7000"], "is not a command line listen takes"),
        (["listen"], "say where to listen: --tcp HOST:PORT or --serial PORT"),
        (["satellite", "--tcp", ":7000"], "is not a command line satellite takes"),
        (["wake-service", "alexa"], "is not a command line wake-service takes"),
    ],
)
def test_arguments_the_command_would_refuse_are_refused_now(home, args, message):
    done = install(home, *args)
    assert done.returncode == 1
    assert message in done.stderr.splitlines()[-1]
    assert done.stderr.splitlines()[-1].startswith("wakeward: ")
    assert not (home / ".config").exists()


def test_xdg_config_home_is_where_the_unit_goes(home):
    done = install(home, "listen", "--tcp", ":7000", XDG_CONFIG_HOME=str(home / "xdg"))
    assert done.returncode == 0, done.stderr
    assert (home / "xdg" / "systemd" / "user" / "wakeward-listen.service").is_file()
