"""`wakeward flash`: stock MicroPython onto an ESP32-S3 with esptool, then the firmware with
wakeward.deploy.

Every check comes before anything is written, so a refused board is left as it was:

1. the image: an ESP32 image header (magic 0xE9) whose extended header names the ESP32-S3
   (chip id 9), a partition table at 0x8000 and an application at 0x10000: the complete
   ``ESP32_GENERIC_S3`` build from micropython.org, written at offset 0;
2. the deploy bundle: firmware compiled, models found, config.json accepted by the
   firmware's own validation (wakeward.deploy.prepare);
3. the port: pyserial can open it (missing, busy and forbidden ports are named);
4. the chip: ``esptool read-mac`` with chip auto-detection must say ESP32-S3.

Then ``esptool --chip esp32s3 --port P --baud B erase-flash`` and ``write-flash 0 IMAGE``
(their progress shown as esptool prints it), a bounded wait for the MicroPython REPL, and
the deploy (copy, verify, reset).

No image is ever downloaded: without one, `image_instructions` says which official build to
get and where to put it (`images_dir`, where `flash` looks when --firmware is not given).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wakeward import deploy, unixport
from wakeward.errors import WakewardError
from wakeward.serialport import check_port

IMAGE_MAGIC = 0xE9
ESP32S3_CHIP_ID = 9  # esp_image_header_t.chip_id (ESP_CHIP_ID_ESP32S3)
FLASH_OFFSET = 0  # ESP32_GENERIC_S3 board.json: deploy_options.flash_offset
PARTITION_TABLE_OFFSET = 0x8000
PARTITION_MAGIC = b"\xaa\x50"
APP_OFFSET = 0x10000
_APP_DESC = APP_OFFSET + 24 + 8  # after the image header and the first segment's header
_APP_DESC_MAGIC = 0xABCD5432
DEFAULT_BAUD = 460800  # MicroPython's download page uses it for the S3
DOWNLOAD_PAGE = "https://micropython.org/download/ESP32_GENERIC_S3/"
_EXTENDED_HEADER_END = 24
# The official build's variants, by the board profiles of firmware/board/profiles.py:
# the standard build detects no or quad PSRAM; boards with octal PSRAM need SPIRAM_OCT.
OCTAL_PSRAM_PROFILES = {"xiao-esp32s3"}

Say = Callable[[str], None]
# Runs `python -m esptool ARGS`: (exit code, output). capture=False: the output goes to the
# terminal as esptool prints it (its progress), and "" comes back.
EsptoolRunner = Callable[[Sequence[str], bool], tuple[int, str]]


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    size: int
    chip_id: int
    app_version: str | None  # esp_app_desc_t.version, e.g. "v1.29.0"
    app_project: str | None  # esp_app_desc_t.project_name, e.g. "micropython"


def chip_name(chip_id: int) -> str:
    """The chip an image's chip id stands for (esptool's own table)."""
    from esptool.targets import CHIP_DEFS  # type: ignore[import-untyped]

    for cls in CHIP_DEFS.values():
        if getattr(cls, "IMAGE_CHIP_ID", None) == chip_id:
            return str(cls.CHIP_NAME)
    return f"chip id {chip_id}"


def _cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


def check_image(path: Path) -> ImageInfo:
    """The image's facts, or WakewardError naming the file when it is not a complete
    MicroPython image for the ESP32-S3."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WakewardError(f"{path}: no such file") from None
    except OSError as e:
        raise WakewardError(f"{path}: cannot be read ({e.strerror})") from None
    if len(data) < _EXTENDED_HEADER_END or data[0] != IMAGE_MAGIC:
        raise WakewardError(
            f"{path}: not an ESP32 firmware image (no 0x{IMAGE_MAGIC:02X} image header at "
            f"offset 0): download the .bin from {DOWNLOAD_PAGE}"
        )
    chip_id = int.from_bytes(data[12:14], "little")
    if chip_id != ESP32S3_CHIP_ID:
        raise WakewardError(
            f"{path}: a firmware image for the {chip_name(chip_id)}, not the ESP32-S3 (its "
            f"header's chip id is {chip_id}; the ESP32-S3's is {ESP32S3_CHIP_ID}): download "
            f"the ESP32_GENERIC_S3 build from {DOWNLOAD_PAGE}"
        )
    table = data[PARTITION_TABLE_OFFSET : PARTITION_TABLE_OFFSET + 2]
    app = data[APP_OFFSET : APP_OFFSET + _EXTENDED_HEADER_END]
    if table != PARTITION_MAGIC or len(app) < _EXTENDED_HEADER_END or app[0] != IMAGE_MAGIC:
        raise WakewardError(
            f"{path}: not a complete image to write at offset 0 (no partition table at "
            f"0x{PARTITION_TABLE_OFFSET:X} and application at 0x{APP_OFFSET:X}): use the "
            f"firmware .bin from {DOWNLOAD_PAGE}, not an application-only micropython.bin"
        )
    app_chip = int.from_bytes(app[12:14], "little")
    if app_chip != ESP32S3_CHIP_ID:
        raise WakewardError(
            f"{path}: its application is built for the {chip_name(app_chip)}, not the "
            f"ESP32-S3: download the ESP32_GENERIC_S3 build from {DOWNLOAD_PAGE}"
        )
    version = project = None
    desc = data[_APP_DESC : _APP_DESC + 80]
    if len(desc) == 80 and int.from_bytes(desc[0:4], "little") == _APP_DESC_MAGIC:
        version = _cstring(desc[16:48])
        project = _cstring(desc[48:80])
    return ImageInfo(path, len(data), chip_id, version, project)


def micropython_version() -> tuple[int, int]:
    """(major, minor) of the MicroPython whose mpy-cross compiles the firmware: the build to
    flash is the same release."""
    release = unixport.mpy_cross_release()
    if release is None:
        raise WakewardError(f"cannot tell the version of {unixport.mpy_cross_exe()}")
    return release[0], release[1]


def images_dir() -> Path:
    """Where `wakeward flash` looks for a downloaded MicroPython image."""
    import platformdirs

    return Path(platformdirs.user_data_dir("wakeward")) / "micropython"


_IMAGE_NAME = re.compile(
    r"^ESP32_GENERIC_S3(?:-(?P<variant>[A-Z][A-Z0-9_]*))?-(?P<date>\d{8})-v(?P<ver>\d+\.\d+)"
)


def _variants(board: str) -> tuple[str | None, ...]:
    """Acceptable build variants for a board profile (None: the standard build)."""
    if board in OCTAL_PSRAM_PROFILES:
        return ("SPIRAM_OCT",)
    return (None, "SPIRAM_OCT")


def image_instructions(board: str) -> str:
    """Which official MicroPython build to download, and where to put it."""
    major, minor = micropython_version()
    version = f"v{major}.{minor}.x"
    standard = f"ESP32_GENERIC_S3-<date>-{version}.bin"
    octal = f"ESP32_GENERIC_S3-SPIRAM_OCT-<date>-{version}.bin"
    if board in OCTAL_PSRAM_PROFILES:
        which = f"  {octal}   ({board} has octal PSRAM)"
    else:
        which = (
            f"  {standard}   (no PSRAM or quad PSRAM, e.g. modules marked N8, N8R2)\n"
            f"  or {octal}   (octal PSRAM: modules marked N8R8, N16R8)"
        )
    return (
        "no MicroPython image given (wakeward never downloads one). Download the official "
        f"ESP32-S3 build, MicroPython {version} (the release of this mpy-cross, so the "
        f"compiled firmware loads), from\n  {DOWNLOAD_PAGE}\nthe file\n{which}\n"
        f"and put it in {images_dir()}/ (wakeward flash finds it there), or pass "
        "--firmware FILE"
    )


def find_image(board: str, say: Say = print) -> Path:
    """The one downloaded image in images_dir() for this board and MicroPython release;
    otherwise WakewardError with the download instructions (or the choice to make)."""
    major, minor = micropython_version()
    folder = images_dir()
    found = sorted(folder.glob("ESP32_GENERIC_S3*.bin")) if folder.is_dir() else []
    fitting = []
    for path in found:
        match = _IMAGE_NAME.match(path.name)
        if match and match["ver"] == f"{major}.{minor}" and match["variant"] in _variants(board):
            fitting.append(path)
    if len(fitting) == 1:
        say(f"flash: using {fitting[0]}")
        return fitting[0]
    if len(fitting) > 1:
        names = ", ".join(p.name for p in fitting)
        raise WakewardError(
            f"several MicroPython images in {folder} fit: {names}: pass --firmware FILE "
            "(SPIRAM_OCT for a board with octal PSRAM)"
        )
    message = image_instructions(board)
    if found:
        message += f"\n(in {folder} now, none for this board and release: "
        message += ", ".join(p.name for p in found) + ")"
    raise WakewardError(message)


def run_esptool(args: Sequence[str], capture: bool) -> tuple[int, str]:
    """`python -m esptool ARGS` (the pinned esptool of this environment)."""
    argv = [sys.executable, "-m", "esptool", *args]
    if not capture:
        return subprocess.run(argv, check=False).returncode, ""
    done = subprocess.run(
        argv, capture_output=True, text=True, errors="replace", timeout=120, check=False
    )
    return done.returncode, done.stdout + done.stderr


def esptool_args(
    port: str,
    baud: int,
    command: str,
    *rest: str,
    chip: str = "esp32s3",
    before: str | None = None,
    after: str | None = None,
) -> list[str]:
    """esptool 5's documented command line: global options, then the command and its
    arguments. `before`/`after`: the reset esptool does around it (default: its own)."""
    argv = ["--chip", chip, "--port", port, "--baud", str(baud)]
    if before is not None:
        argv += ["--before", before]
    if after is not None:
        argv += ["--after", after]
    return [*argv, command, *rest]


def _esptool_failure(port: str, output: str, rc: int) -> str:
    match = re.search(r"A fatal error occurred: (.+)", output)
    lines = output.strip().splitlines() or [f"esptool exit code {rc}"]
    reason = match.group(1).strip() if match else lines[-1]
    if "No serial data received" in reason or "Failed to connect" in reason:
        return (
            f"{port}: no Espressif chip answered ({reason}): hold BOOT, press and release RESET, "
            "release BOOT (download mode), then run again"
        )
    if "busy or doesn't exist" in reason:
        return f"{port}: esptool cannot open the port ({reason})"
    return f"{port}: esptool failed: {reason}"


def detect_chip(port: str, baud: int, runner: EsptoolRunner = run_esptool) -> str:
    """The chip on `port`, as esptool describes it ("ESP32-S3 (QFN56) (revision v0.2)");
    WakewardError when it is not an ESP32-S3. Reads only (read-mac). The chip stays in its
    bootloader for the erase and write that follow (a board put in download mode by hand
    stays there); one that is refused is reset, so it runs what it ran before."""
    rc, output = runner(esptool_args(port, baud, "read-mac", chip="auto", after="no-reset"), True)
    if rc != 0:
        raise WakewardError(_esptool_failure(port, output, rc))
    name = re.search(r"Connected to (\S+) on", output)
    if name is None:
        raise WakewardError(f"{port}: esptool did not say which chip answered:\n{output.strip()}")
    described = re.search(r"Chip type:\s+(.+)", output)
    description = described.group(1).strip() if described else name.group(1)
    if name.group(1) != "ESP32-S3":
        # back to its own firmware (RTS hard reset; a board without that line needs RESET)
        runner(esptool_args(port, baud, "read-mac", chip="auto", before="no-reset"), True)
        raise WakewardError(
            f"{port}: the board is an {description}, not an ESP32-S3: nothing was written"
        )
    return description


def flash(
    port: str,
    *,
    firmware: Path | None,
    board: str = deploy.DEFAULT_BOARD,
    models: Sequence[str] = (),
    wifi_ssid: str | None = None,
    wifi_password: str | None = None,
    link: str | None = None,
    device_id: str | None = None,
    pairing_dir: Path | None = None,
    insecure: bool = False,
    baud: int = DEFAULT_BAUD,
    erase: bool = True,
    runner: EsptoolRunner = run_esptool,
    repl_tries: int = deploy.REPL_TRIES,
    repl_delay_s: float = deploy.REPL_DELAY_S,
    repl_probe_s: float = deploy.REPL_PROBE_S,
    soft_reset: bool = True,
    expect_esp32s3: bool = True,
    say: Say = print,
) -> deploy.DeployReport:
    """Write MicroPython to the ESP32-S3 on `port` and deploy the firmware onto it.

    `soft_reset` and `expect_esp32s3` are passed to the deploy (False for the unix port in
    tests); everything before the first write is a check that leaves the board untouched."""
    image_path = firmware if firmware is not None else find_image(board, say)
    image = check_image(image_path)
    release = f"{image.app_project or 'image'} {image.app_version or '(version unknown)'}"
    say(f"flash: {image.path} ({image.size:,} bytes): ESP32-S3, {release}")
    major, minor = micropython_version()
    if image.app_version and not re.match(rf"v?{major}\.{minor}(\D|$)", image.app_version):
        say(
            f"flash: note: the image is {image.app_version}; the firmware is compiled for "
            f"MicroPython {major}.{minor}: the deploy checks that the board loads it"
        )
    say("flash: compiling the firmware and checking config.json")
    with deploy.prepare(
        board=board,
        models=models,
        wifi_ssid=wifi_ssid,
        wifi_password=wifi_password,
        link=link,
        device_id=device_id,
        pairing_dir=pairing_dir,
        insecure=insecure,
    ) as bundle:
        check_port(port)
        say(f"flash: asking the chip on {port} what it is (esptool read-mac)")
        say(f"flash: {port}: {detect_chip(port, baud, runner)}")
        # -- the board is written from here on --
        if erase:
            say("flash: erasing the flash (the board's files go too)")
            rc, _ = runner(esptool_args(port, baud, "erase-flash"), False)
            if rc != 0:
                raise WakewardError(
                    f"{port}: esptool erase-flash failed (exit {rc}): the board may be "
                    "half-erased: run `wakeward flash` again"
                )
        say(f"flash: writing {image.path.name} at 0x{FLASH_OFFSET:X}")
        rc, _ = runner(
            esptool_args(port, baud, "write-flash", f"0x{FLASH_OFFSET:x}", str(image.path)),
            False,
        )
        if rc != 0:
            raise WakewardError(
                f"{port}: esptool write-flash failed (exit {rc}): MicroPython is not (fully) "
                "written: run `wakeward flash` again"
            )
        say("flash: MicroPython written; waiting for it to start")
        deploy.wait_for_repl(
            port,
            tries=repl_tries,
            delay_s=repl_delay_s,
            probe_timeout_s=repl_probe_s,
            soft_reset=soft_reset,
            say=say,
        )
        return deploy.deploy(
            port, bundle, soft_reset=soft_reset, expect_esp32s3=expect_esp32s3, say=say
        )
