"""wakeward deploy against a real MicroPython: the unix port's raw REPL on a pseudo-terminal
(tests/host/ptyboard.py), its working directory standing for the board's flash. mpremote
talks to it as to a serial board; deploy runs with soft_reset=False (a soft reset hangs on
the unix port) and without the ESP32-S3 check (it is linux), which the CLI test shows."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wakeward import deploy
from wakeward.errors import WakewardError

from tests.conftest import REPO
from tests.host.ptyboard import PtyBoard

LINK = "192.168.1.5:7000"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[PtyBoard]:
    b = PtyBoard(tmp_path / "flash")
    yield b
    b.close()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[deploy.Bundle]:
    with deploy.prepare(
        models=["alexa"],
        wifi_ssid="Home",
        wifi_password="correct horse",
        link=LINK,
        insecure=True,  # not paired: plain TCP (tests/host/test_tls.py deploys a paired one)
        pairing_dir=tmp_path_factory.mktemp("no-pairing"),
    ) as b:
        yield b


def run(board: PtyBoard, bundle: deploy.Bundle, **kw) -> tuple[deploy.DeployReport, list[str]]:
    said: list[str] = []
    options = {"soft_reset": False, "reset": False, "expect_esp32s3": False, **kw}
    report = deploy.deploy(board.port, bundle, say=said.append, **options)
    return report, said


def board_files(board: PtyBoard) -> dict[str, bytes]:
    return {
        p.relative_to(board.root).as_posix(): p.read_bytes()
        for p in board.root.rglob("*")
        if p.is_file()
    }


def test_the_bundle_is_what_a_device_runs(bundle: deploy.Bundle):
    dests = {f.dest for f in bundle.files}
    assert {"main.py", "config.mpy", "listen.mpy", "board/esp32s3.mpy"} <= dests
    assert {"board/__init__.mpy", "tflm/interpreter.mpy", "models/alexa.tflite"} <= dests
    assert "main.mpy" not in dests and "board/sim.mpy" not in dests
    assert not any(d.endswith(".py") for d in dests - {"main.py"})
    for f in bundle.files:
        if f.dest.endswith(".mpy"):
            assert f.source.read_bytes()[:2] == b"M\x06"
    assert bundle.mpy_version == (6, 3)
    assert bundle.config == {
        "board": "esp32-s3-devkitc-1",
        "models": [
            {
                "name": "alexa",
                "path": "models/alexa.tflite",
                "probability_cutoff": 0.9,
                "sliding_window_size": 5,
            }
        ],
        "link": {"tcp": LINK},
        "wifi": {"ssid": "Home", "password": "correct horse"},
    }
    config = bundle.file("config.json").source
    assert config.stat().st_mode & 0o077 == 0  # the Wi-Fi password: readable by the user alone


def test_deploy_lands_every_file_and_verifies_its_hash(board: PtyBoard, bundle: deploy.Bundle):
    report, said = run(board, bundle)
    landed = board_files(board)
    assert set(landed) == {f.dest for f in bundle.files}
    for f in bundle.files:
        assert hashlib.sha256(landed[f.dest]).hexdigest() == f.sha256, f.dest
    assert json.loads(landed["config.json"]) == bundle.config
    assert report.copied == tuple(f.dest for f in bundle.files)
    assert report.verified == len(bundle.files)
    n = len(bundle.files)
    assert f"deploy: [1/{n}] main.py ({bundle.file('main.py').size:,} bytes)" in said
    assert f"deploy: [{n}/{n}] config.json ({bundle.file('config.json').size:,} bytes)" in said
    assert f"deploy: verified {n} files (sha256 read back from the board)" in said


def test_a_second_deploy_copies_only_what_changed(board: PtyBoard, bundle: deploy.Bundle):
    run(board, bundle)
    report, said = run(board, bundle)
    assert report.copied == ()
    assert len(report.unchanged) == len(bundle.files)
    n = len(bundle.files)
    assert f"deploy: {n} files ({bundle.total_bytes:,} bytes): 0 to copy, {n} unchanged" in said

    board.path("frontend.mpy").write_bytes(b"M\x06 changed on the board")
    with deploy.prepare(
        models=["alexa"],
        link=LINK,
        device_id="kitchen",
        insecure=True,
        pairing_dir=board.root.parent / "no-pairing",
    ) as other:
        report, said = run(board, other)
    assert report.copied == ("frontend.mpy", "config.json")
    assert json.loads(board.path("config.json").read_text())["device_id"] == "kitchen"
    fixed = board.path("frontend.mpy").read_bytes()
    assert fixed == bundle.file("frontend.mpy").source.read_bytes()


# the firmware's clip queue folder, read from firmware/outbox.py (DIR = "...")
OUTBOX_DIR = re.search(
    r'^DIR = "([^"]+)"', (REPO / "firmware" / "outbox.py").read_text(), re.M
).group(1)


def test_the_clip_queue_is_what_clean_keeps():
    assert f"{OUTBOX_DIR}/" in deploy.KEPT_ON_CLEAN


def test_files_it_does_not_deploy_stay_unless_clean(board: PtyBoard, bundle: deploy.Bundle):
    board.path("boot.py").write_text("# boot\n")
    board.path("notes.txt").write_text("mine\n")
    board.path("old").mkdir()
    board.path("old/stale.mpy").write_bytes(b"M\x06")
    board.path(OUTBOX_DIR).mkdir()
    board.path(f"{OUTBOX_DIR}/7.clip").write_bytes(b"a clip not yet sent")
    report, said = run(board, bundle)
    assert report.left == ("notes.txt", "old/stale.mpy")
    assert (
        "deploy: left 2 other file(s) on the board (notes.txt, old/stale.mpy); --clean removes them"
    ) in said
    assert board.path("notes.txt").is_file()

    report, said = run(board, bundle, clean=True)
    assert report.removed == ("notes.txt", "old/stale.mpy")
    assert report.copied == ()
    assert not board.path("notes.txt").exists() and not board.path("old").exists()
    assert board.path("boot.py").is_file()
    assert board.path(f"{OUTBOX_DIR}/7.clip").read_bytes() == b"a clip not yet sent"


def test_verification_catches_a_file_that_landed_corrupted(
    board: PtyBoard, bundle: deploy.Bundle, monkeypatch: pytest.MonkeyPatch
):
    real_copy = deploy.Board.copy

    def copy_then_corrupt(self, files, say):
        real_copy(self, files, say)
        target = board.path("tflm/conv.mpy")
        data = bytearray(target.read_bytes())
        data[100] ^= 0x01
        target.write_bytes(bytes(data))

    monkeypatch.setattr(deploy.Board, "copy", copy_then_corrupt)
    with pytest.raises(WakewardError) as e:
        run(board, bundle)
    assert str(e.value) == (
        f"{board.port}: verification failed: tflm/conv.mpy (sha256 differs): run `wakeward "
        f"deploy --port {board.port}` again (it copies only these); if it fails again, the "
        "board's flash may be failing"
    )
    monkeypatch.setattr(deploy.Board, "copy", real_copy)
    report, _ = run(board, bundle)  # and the next run repairs exactly that file
    assert report.copied == ("tflm/conv.mpy",)


def test_a_stale_py_that_would_shadow_a_module_is_refused_before_writing(
    board: PtyBoard, bundle: deploy.Bundle
):
    board.path("config.py").write_text("# an old copy\n")
    with pytest.raises(WakewardError, match=r"the board has config\.py, which MicroPython would"):
        run(board, bundle)
    assert board_files(board) == {"config.py": b"# an old copy\n"}
    report, _ = run(board, bundle, clean=True)
    assert report.removed == ("config.py",)


def test_a_dry_run_writes_nothing(board: PtyBoard, bundle: deploy.Bundle):
    report, said = run(board, bundle, dry_run=True)
    assert board_files(board) == {}
    assert "deploy: would copy models/alexa.tflite (55,856 bytes)" in said
    assert report.copied == () and report.verified == 0


def test_the_cli_refuses_a_board_that_is_not_an_esp32s3(board: PtyBoard, tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", "deploy", "--port", board.port, "--no-soft-reset"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"wakeward: {board.port}: the board runs MicroPython on 'linux' (linux), not an "
        "ESP32-S3: nothing was written\n"
    )
    assert board_files(board) == {}


def test_wait_for_repl_finds_micropython(board: PtyBoard):
    said: list[str] = []
    deploy.wait_for_repl(board.port, tries=2, delay_s=0, soft_reset=False, say=said.append)
    assert said == []


def test_wait_for_repl_gives_up_after_its_tries_and_says_what_to_do(tmp_path: Path):
    port = str(tmp_path / "ttyACM9")
    said: list[str] = []
    with pytest.raises(WakewardError) as e:
        deploy.wait_for_repl(port, tries=3, delay_s=0, say=said.append)
    assert str(e.value) == (
        f"no MicroPython REPL on {port} after 3 tries: press RESET on the board, then run "
        f"`wakeward deploy --port {port}` (MicroPython is written; only the deploy is left)"
    )
    assert [s[: s.index(")") + 1] for s in said] == [
        f"flash: waiting for MicroPython on {port} ({i}/3)" for i in (1, 2, 3)
    ]


# -- checks without a board -----------------------------------------------------------------


def info(**kw) -> deploy.BoardInfo:
    fields = {
        "platform": "esp32",
        "machine": "Generic ESP32S3 module with Octal-SPIRAM with ESP32S3",
        "version": "1.29.0",
        "mpy": 6 | 3 << 8 | 10 << 10,
        "free": 6_000_000,
    }
    return deploy.BoardInfo(**{**fields, **kw})


def test_an_esp32s3_with_matching_micropython_passes(bundle: deploy.Bundle):
    deploy.check_target(info(), bundle, port="P", expect_esp32s3=True)


def test_a_board_that_is_not_an_esp32s3_is_refused(bundle: deploy.Bundle):
    with pytest.raises(WakewardError) as e:
        deploy.check_target(
            info(machine="Generic ESP32 module with ESP32"), bundle, port="P", expect_esp32s3=True
        )
    assert str(e.value) == (
        "P: the board runs MicroPython on 'Generic ESP32 module with ESP32' (esp32), not an "
        "ESP32-S3: nothing was written"
    )


def test_micropython_that_cannot_load_the_mpy_files_is_refused(bundle: deploy.Bundle):
    old = info(version="1.22.2", mpy=6 | 2 << 8 | 10 << 10)
    with pytest.raises(WakewardError) as e:
        deploy.check_target(old, bundle, port="P", expect_esp32s3=True)
    assert "the board runs MicroPython 1.22.2, which loads .mpy v6.2; the firmware is " in str(
        e.value
    )
    assert "compiled to .mpy v6.3 by mpy-cross 1.29.0: flash a matching" in str(e.value)


def test_a_board_without_room_is_refused(bundle: deploy.Bundle):
    inventory = deploy.Inventory(info(free=40_000), {}, {})
    plan = deploy.make_plan(bundle, inventory, clean=False)
    with pytest.raises(WakewardError, match=r"the board has 40,000 bytes free and this deploy"):
        deploy.check_plan(plan, inventory, port="P")


def test_inventory_lines_are_parsed():
    text = (
        "noise\r\n"
        'WKW I {"platform": "esp32", "machine": "ESP32S3", "version": "1.29.0", "mpy": 10758,'
        ' "free": 100, "hashlib": true}\r\n'
        "WKW F 12 models/my model.tflite\r\n"
        "WKW H " + "ab" * 32 + " models/my model.tflite\r\n"
    )
    inv = deploy.parse_inventory(text)
    assert inv.files == {"models/my model.tflite": 12}
    assert inv.hashes == {"models/my model.tflite": "ab" * 32}
    assert inv.info.mpy_version == (6, 2) and inv.info.arch == 10


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"board": "esp32-s3-nope"},
            "config.json: field 'board': 'esp32-s3-nope' is not 'sim' or a board profile",
        ),
        ({"board": "sim"}, "board 'sim' is the PC simulator, not a device: choose one of"),
        ({"link": "no-port"}, "config.json: field 'link.tcp': 'no-port' is not HOST:PORT"),
        ({"models": ["nope.tflite"]}, "nope.tflite: no such model file"),
    ],
)
def test_a_config_the_device_would_refuse_is_refused_here(options: dict, message: str):
    with pytest.raises(WakewardError, match=message), deploy.prepare(**options):
        pass


def test_a_model_that_is_not_tflite_is_refused(tmp_path: Path):
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(WakewardError, match="fake.tflite: not a TensorFlow Lite model"):
        deploy.model_file(str(fake))


def test_the_wifi_password_comes_from_the_environment_for_scripts(monkeypatch):
    from wakeward import cli

    monkeypatch.setenv(deploy.WIFI_PASSWORD_ENV, "from env")
    assert cli._wifi_password("Home") == "from env"


def test_the_wifi_password_is_asked_without_echo(monkeypatch):
    import getpass

    from wakeward import cli

    asked: list[str] = []
    monkeypatch.delenv(deploy.WIFI_PASSWORD_ENV, raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or "typed")
    assert cli._wifi_password("Home") == "typed"
    assert asked == ["Wi-Fi password for Home (empty for an open network): "]


def test_without_a_terminal_or_the_variable_the_cli_says_how(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != deploy.WIFI_PASSWORD_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", "deploy", "--port", "/dev/ttyACM0", "--wifi", "Home"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "wakeward: --wifi Home: no terminal to ask the password on: set WAKEWARD_WIFI_PASSWORD\n"
    )
