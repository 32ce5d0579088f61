"""Copy the firmware to a board that runs MicroPython (with mpremote) and update only what
changed.

What lands on the board (paths relative to its working directory, "/" on a device):

- ``main.py``: the boot entry, as source (MicroPython runs main.py at boot, never main.mpy);
- every other firmware/ module compiled to .mpy for the ESP32-S3 (``mpy-cross
  -march=xtensawin``), except ``board/sim.py``, the simulator board of the PC;
- ``models/NAME.tflite``: the chosen wake-word models (names as in wakeward.models);
- ``config.json``: generated from the options and accepted by firmware/config.py's own
  ``validate()`` run on the unix port, so the board will accept it too;
- ``receiver.der``: for a paired device (``wakeward pair DEVICE_ID``) with a link, the
  receiver's certificate, which the device pins; its secret goes into config.json's link
  and the link is TLS. A link for a device that is not paired is refused unless
  ``insecure`` (``--insecure``: plain TCP, which anyone on the network can read and any
  device can send to).

A deploy (each step one ``python -m mpremote connect PORT ...`` run):

1. inventory, read only: the board's MicroPython (``sys.platform``, ``os.uname().machine``,
   ``sys.implementation._mpy``), its free space, the name of every file, and the sha256 of
   each file we deploy, computed on the board;
2. checks, before anything is written: an ESP32-S3, the .mpy version mpy-cross emits, no
   stale ``X.py`` that MicroPython would import instead of a deployed ``X.mpy``, room enough;
3. copy the files whose hash differs (``fs cp``); with ``clean`` remove every file we do not
   deploy (``boot.py`` and the clip queue ``outbox.d/`` stay), otherwise leave them;
4. verify: the sha256 of every deployed file, read back from the board;
5. reset (``machine.reset()``), so the board boots into main.py.

The first mpremote run soft-resets the board: the running program is interrupted and its
heap freed, and main.py does not run in the raw REPL. Later runs ``resume``. Where a soft
reset hangs (the MicroPython unix port behind a pseudo-terminal, used by the tests) deploy
with ``soft_reset=False``: every run then resumes, interrupting the program with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from wakeward import unixport
from wakeward.errors import WakewardError
from wakeward.serialport import check_port
from wakeward.wording import plural

DEVICE_ARCH = "xtensawin"
_XTENSAWIN = 10  # py/persistentcode.h MP_NATIVE_ARCH_XTENSAWIN
SOURCE_MODULES = ("main.py",)  # MicroPython runs main.py from source at boot
HOST_ONLY = ("board/sim.py",)  # the simulated board of `wakeward sim`
CONFIG = "config.json"
CERT_FILE = "receiver.der"  # the receiver's certificate on the board (config.json link.tls)
SERIAL_LINK = "serial"  # --link serial: the USB serial console (`wakeward listen --serial`)
MODELS_DIR = "models"
# never removed by clean: MicroPython's boot.py, and the clip queue (firmware/outbox.py:
# clips not yet sent, and the state that keeps clip ids unique)
KEPT_ON_CLEAN = ("boot.py", "outbox.d/")
DEFAULT_BOARD = "esp32-s3-devkitc-1"
WIFI_PASSWORD_ENV = "WAKEWARD_WIFI_PASSWORD"
_BLOCK = 4096  # littlefs block: the free-space estimate rounds each file up to one
_TAG = "WKW"
REPL_TRIES = 8
REPL_DELAY_S = 2.0
REPL_PROBE_S = 20.0
_EXEC_TIMEOUT_S = 120.0
_COPY_BYTES_PER_S = 4000  # a pessimistic mpremote fs cp rate, for the copy's time limit

Say = Callable[[str], None]


@dataclass(frozen=True)
class BoardFile:
    """One file to put on the board: its path there and the local file with its bytes."""

    dest: str
    source: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Bundle:
    """Everything one deploy puts on the board, hashed, and the config.json it carries."""

    files: tuple[BoardFile, ...]
    config: dict[str, Any]
    # (.mpy version, sub-version) of the compiled modules; the sub-version (None without
    # native code) must match only for modules with native (viper) code
    mpy_version: tuple[int, int | None]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, dest: str) -> BoardFile:
        for f in self.files:
            if f.dest == dest:
                return f
        raise KeyError(dest)


@dataclass(frozen=True)
class BoardInfo:
    platform: str  # sys.platform: "esp32" on the device
    machine: str  # os.uname().machine, e.g. "Generic ESP32S3 module with ESP32S3"
    version: str  # MicroPython version, e.g. "1.29.0"
    mpy: int  # sys.implementation._mpy: version | sub-version << 8 | native arch << 10
    free: int  # bytes free on the filesystem (-1: unknown)

    @property
    def mpy_version(self) -> tuple[int, int]:
        return self.mpy & 0xFF, (self.mpy >> 8) & 3

    @property
    def arch(self) -> int:
        return self.mpy >> 10


@dataclass(frozen=True)
class Inventory:
    info: BoardInfo
    files: dict[str, int]  # every file on the board: path -> size
    hashes: dict[str, str]  # each deployed path present on the board -> sha256 (hex)


@dataclass(frozen=True)
class Plan:
    copy: tuple[BoardFile, ...]
    unchanged: tuple[BoardFile, ...]
    remove: tuple[str, ...]  # only with clean
    extra: tuple[str, ...]  # files on the board wakeward does not deploy (KEPT_ON_CLEAN aside)
    shadowing: tuple[str, ...]  # X.py on the board that would be imported instead of X.mpy


@dataclass(frozen=True)
class DeployReport:
    copied: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    left: tuple[str, ...]  # files on the board that wakeward does not deploy, left alone
    verified: int  # files whose hash was read back and matched


# -- the bundle -----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def board_file(dest: str, source: Path) -> BoardFile:
    return BoardFile(dest, source, source.stat().st_size, _sha256(source))


def compile_firmware(out_dir: Path | None = None) -> Path:
    """The firmware modules compiled to .mpy for the ESP32-S3 (build/device-xtensawin),
    rebuilt per module when its source is newer. main.py and board/sim.py are not compiled."""
    src = unixport.firmware_dir()
    out = out_dir or unixport.repo_root() / "build" / f"device-{DEVICE_ARCH}"
    wanted: set[Path] = set()
    for py in sorted(src.rglob("*.py")):
        rel = py.relative_to(src)
        if rel.as_posix() in SOURCE_MODULES + HOST_ONLY:
            continue
        mpy = (out / rel).with_suffix(".mpy")
        wanted.add(mpy)
        if mpy.is_file() and mpy.stat().st_mtime_ns >= py.stat().st_mtime_ns:
            continue
        mpy.parent.mkdir(parents=True, exist_ok=True)
        tmp = mpy.with_name(f".{mpy.name}.{os.getpid()}.tmp")
        done = subprocess.run(
            [
                str(unixport.mpy_cross_exe()),
                f"-march={DEVICE_ARCH}",
                "-s",
                rel.as_posix(),
                "-o",
                str(tmp),
                str(py),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise WakewardError(f"{py}: does not compile for the ESP32-S3:\n{done.stderr.strip()}")
        os.replace(tmp, mpy)
    for mpy in out.rglob("*.mpy"):
        if mpy not in wanted:
            mpy.unlink()
    return out


def mpy_version_of(mpys: Sequence[Path]) -> tuple[int, int | None]:
    """(.mpy version, sub-version) of compiled modules, from their headers: byte 1 is the
    version; byte 2 holds the native arch (top 6 bits) and, only in a module with native
    code, the sub-version (low 2 bits) a loading MicroPython must match."""
    version, sub = None, None
    for mpy in mpys:
        header = mpy.read_bytes()[:4]
        if len(header) < 4 or header[0:1] != b"M":
            raise WakewardError(f"{mpy}: not a .mpy file")
        version = header[1]
        if header[2] >> 2:
            sub = header[2] & 3
    if version is None:
        raise WakewardError("no compiled firmware modules")
    return version, sub


def model_file(name_or_path: str) -> tuple[str, Path, dict[str, Any]]:
    """(path on the board, local file, config.json entry) of a model name or .tflite path."""
    from wakeward.sim import model_entry

    entry = model_entry(name_or_path)
    local = Path(entry["path"])
    head = local.read_bytes()[:8]
    if head[4:8] != b"TFL3":
        raise WakewardError(f"{local}: not a TensorFlow Lite model (no TFL3 identifier)")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", local.stem):
        raise WakewardError(
            f"{local}: rename the model to letters, digits, '.', '_' or '-' before deploying"
        )
    dest = f"{MODELS_DIR}/{local.stem}.tflite"
    return dest, local, {**entry, "path": dest}


def make_config(
    *,
    board: str,
    model_entries: Sequence[dict[str, Any]] = (),
    wifi_ssid: str | None = None,
    wifi_password: str | None = None,
    link: str | None = None,
    device_id: str | None = None,
    link_secret: str | None = None,
) -> dict[str, Any]:
    """The device's config.json (firmware/config.py documents every field); with
    link_secret the link is TLS, pinned to the certificate in CERT_FILE. The link
    SERIAL_LINK is the board's USB serial console."""
    config: dict[str, Any] = {"board": board}
    if device_id is not None:
        config["device_id"] = device_id
    config["models"] = list(model_entries)
    if link == SERIAL_LINK:
        config["link"] = {"serial": True}
    elif link is not None:
        config["link"] = {"tcp": link}
        if link_secret is not None:
            config["link"].update(tls={"cert": CERT_FILE}, secret=link_secret)
    if wifi_ssid is not None:
        config["wifi"] = {"ssid": wifi_ssid}
        if wifi_password:
            config["wifi"]["password"] = wifi_password
    return config


_VALIDATE = """
import sys, json, config
from board import profiles
out = {"profiles": sorted(profiles.PROFILES)}
try:
    config.validate(json.loads(sys.stdin.read()), "config.json")
except config.ConfigError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


def link_pairing(
    device_id: str, pairing_dir: Path | None, *, insecure: bool
) -> tuple[str, bytes] | None:
    """(secret, receiver certificate as DER) when the device is paired in the pairing
    folder, else None. A paired device deployed with `insecure` is refused: its receiver
    (`wakeward listen --tls`) would refuse it."""
    from wakeward.pairing import Pairing, revoked_error

    pairs = Pairing(pairing_dir)
    revoked_at = pairs.revoked_at(device_id)
    if revoked_at and not insecure:
        raise revoked_error(device_id, revoked_at)
    if not any(d.device_id == device_id and d.active for d in pairs.devices()):
        return None
    if insecure:
        raise WakewardError(
            f"device {device_id!r} is paired, so its link is TLS: leave out --insecure "
            f"(or revoke the pairing first: wakeward devices --revoke {device_id})"
        )
    return pairs.secret(device_id), pairs.cert_der()


def _unpaired(device_id: str) -> WakewardError:
    return WakewardError(
        f"device {device_id!r} is not paired: its link would be plain TCP, which anyone on "
        f"your network can read, and the receiver could not tell it from any other device. "
        f"Run `wakeward pair {device_id}` first (and receive with `wakeward listen --tls`), "
        "or pass --insecure to stream over plain TCP anyway (the device id is the board's "
        "name unless --device-id)"
    )


def validate_config(config: dict[str, Any]) -> None:
    """Run firmware/config.py's validate() on the unix port; WakewardError with its message.
    The config goes in on stdin: a Wi-Fi password never appears on a command line."""
    with tempfile.TemporaryDirectory(prefix="wakeward-config-") as tmp:
        done = unixport.run(
            code=_VALIDATE, cwd=tmp, input_bytes=json.dumps(config).encode(), timeout_s=60
        )
    text = done.stdout.decode(errors="replace").strip()
    try:
        result = json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        raise WakewardError(
            f"checking config.json on the unix port failed: {(text or done.stderr.decode())[-300:]}"
        ) from None
    if "error" in result:
        raise WakewardError(f"{result['error']} (the device would refuse this config.json)")
    if config.get("board") not in result["profiles"]:
        raise WakewardError(
            f"board {config.get('board')!r} is the PC simulator, not a device: choose one of "
            f"{', '.join(result['profiles'])}"
        )


@contextlib.contextmanager
def prepare(
    *,
    board: str = DEFAULT_BOARD,
    models: Sequence[str] = (),
    wifi_ssid: str | None = None,
    wifi_password: str | None = None,
    link: str | None = None,
    device_id: str | None = None,
    pairing_dir: Path | None = None,
    insecure: bool = False,
) -> Iterator[Bundle]:
    """Compile, resolve the models and generate config.json; nothing touches a board. The
    bundle's files are valid inside the `with` (config.json lives in a private temp dir).

    With a link, a device paired in `pairing_dir` (default: the user's pairing folder)
    gets a TLS link: the receiver's certificate and its secret. An unpaired one is refused
    unless `insecure`. The serial link (SERIAL_LINK) needs neither: no TLS over the cable."""
    paired = None
    tcp = link is not None and link != SERIAL_LINK
    if tcp:
        paired = link_pairing(device_id or board, pairing_dir, insecure=insecure)
    compiled = compile_firmware()
    src = unixport.firmware_dir()
    files = [board_file(name, src / name) for name in SOURCE_MODULES]
    mpys = sorted(compiled.rglob("*.mpy"))
    files += [board_file(m.relative_to(compiled).as_posix(), m) for m in mpys]
    entries: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for name in models:
        dest, local, entry = model_file(name)
        if dest in seen:
            if seen[dest].resolve() == local.resolve():
                continue
            raise WakewardError(
                f"two models would both be {dest} on the board: {seen[dest]}, {local}"
            )
        seen[dest] = local
        files.append(board_file(dest, local))
        entries.append(entry)
    config = make_config(
        board=board,
        model_entries=entries,
        wifi_ssid=wifi_ssid,
        wifi_password=wifi_password,
        link=link,
        device_id=device_id,
        link_secret=paired[0] if paired else None,
    )
    validate_config(config)
    if tcp and paired is None and not insecure:
        raise _unpaired(device_id or board)
    with tempfile.TemporaryDirectory(prefix="wakeward-deploy-") as tmp:
        if paired is not None:
            cert = Path(tmp) / CERT_FILE
            cert.write_bytes(paired[1])
            files.append(board_file(CERT_FILE, cert))
        path = Path(tmp) / CONFIG
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(config, sort_keys=True, separators=(",", ":")))
        files.append(board_file(CONFIG, path))
        yield Bundle(tuple(files), config, mpy_version_of(mpys))


# -- the board, over mpremote ---------------------------------------------------------------


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _mpremote_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


_INVENTORY = """
import os, sys, binascii, json
try:
    import hashlib
except ImportError:
    hashlib = None
def _wk_walk(d):
    for e in os.ilistdir(d if d else "."):
        if e[0] in (".", ".."):
            continue
        p = d + "/" + e[0] if d else e[0]
        if e[1] & 0x4000:
            _wk_walk(p)
        else:
            print("WKW F", os.stat(p)[6], p)
def _wk_hash(p):
    h = hashlib.sha256()
    b = bytearray(1024)
    m = memoryview(b)
    with open(p, "rb") as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
    return binascii.hexlify(h.digest()).decode()
try:
    _s = os.statvfs(".")
    _free = _s[0] * _s[3]
except (AttributeError, OSError):
    _free = -1
_v = sys.implementation.version
print("WKW I " + json.dumps({
    "platform": sys.platform,
    "machine": os.uname().machine if hasattr(os, "uname") else sys.platform,
    "version": "%d.%d.%d" % (_v[0], _v[1], _v[2]),
    "mpy": getattr(sys.implementation, "_mpy", 0),
    "free": _free,
    "hashlib": hashlib is not None,
}))
_wk_walk("")
if hashlib is not None:
    for p in WANTED:
        try:
            print("WKW H", _wk_hash(p), p)
        except OSError:
            pass
"""

_MKDIRS = """
import os
for d in DIRS:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""

_REMOVE = """
import os
for p in FILES:
    os.remove(p)
    print("WKW R", p)
for d in DIRS:
    try:
        os.rmdir(d)
    except OSError:
        pass
"""


def parse_inventory(text: str) -> Inventory:
    info: dict[str, Any] | None = None
    files: dict[str, int] = {}
    hashes: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.rstrip("\r").split(" ", 3)
        if parts[0] != _TAG or len(parts) < 3:
            continue
        if parts[1] == "I":
            info = json.loads(line.split(" ", 2)[2])
        elif parts[1] == "F" and len(parts) == 4:
            files[parts[3]] = int(parts[2])
        elif parts[1] == "H" and len(parts) == 4:
            hashes[parts[3]] = parts[2]
    if info is None:
        raise WakewardError(f"the board did not report itself: {_last_line(text)}")
    if not info.pop("hashlib", True):
        raise WakewardError(
            "the board's MicroPython has no hashlib: flash the official ESP32_GENERIC_S3 build"
        )
    return Inventory(BoardInfo(**info), files, hashes)


class Board:
    """A MicroPython board on a serial port, driven by `python -m mpremote`."""

    def __init__(self, port: str, *, soft_reset: bool = True) -> None:
        self.port = port
        self._resume = not soft_reset

    def argv(self, *commands: str) -> list[str]:
        argv = [sys.executable, "-m", "mpremote", "connect", self.port]
        if self._resume:
            argv.append("resume")
        return argv + list(commands)

    def _hint(self) -> str:
        return (
            f"press RESET on the board and run `wakeward deploy --port {self.port}` again "
            "(a board whose link is serial ignores Ctrl-C: hold its mute button for the "
            "first seconds after the reset, so that the console stays a REPL)"
        )

    def run(self, what: str, *commands: str, timeout_s: float = _EXEC_TIMEOUT_S) -> str:
        """Run mpremote commands; their output, or WakewardError saying what failed."""
        argv = self.argv(*commands)
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout_s,
                env=_mpremote_env(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise WakewardError(
                f"{self.port}: no answer from MicroPython within {timeout_s:.0f} s while "
                f"{what}: {self._hint()}"
            ) from None
        self._resume = True  # later runs continue this session: no second soft reset
        if done.returncode != 0:
            raise WakewardError(
                f"{self.port}: {what} failed: {_last_line(done.stdout + done.stderr)}"
            )
        return done.stdout

    def exec(self, what: str, code: str, timeout_s: float = _EXEC_TIMEOUT_S) -> str:
        return self.run(what, "exec", code, timeout_s=timeout_s)

    def inventory(self, wanted: Sequence[str]) -> Inventory:
        code = f"WANTED = {list(wanted)!r}\n" + _INVENTORY
        return parse_inventory(self.exec("reading the board's files", code))

    def mkdirs(self, dirs: Sequence[str]) -> None:
        if dirs:
            self.exec("creating folders", f"DIRS = {list(dirs)!r}\n" + _MKDIRS)

    def copy(self, files: Sequence[BoardFile], say: Say) -> None:
        """Copy files in one mpremote run (`fs cp` chained with `+`), one line per file."""
        if not files:
            return
        commands: list[str] = []
        for f in files:
            commands += ["fs", "cp", "-f", str(f.source), ":" + f.dest, "+"]
        proc = subprocess.Popen(
            self.argv(*commands[:-1]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=_mpremote_env(),
        )
        timeout_s = 60 + sum(f.size for f in files) / _COPY_BYTES_PER_S
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        started = 0
        other: list[str] = []
        try:
            for line in proc.stdout or ():
                line = line.rstrip()
                if line.startswith("cp ") and started < len(files):
                    f = files[started]
                    started += 1
                    say(f"deploy: [{started}/{len(files)}] {f.dest} ({f.size:,} bytes)")
                elif line:
                    other.append(line)
            rc = proc.wait()
        finally:
            timer.cancel()
        self._resume = True
        if rc != 0:
            what = f"copying {files[started - 1].dest}" if started else "copying"
            detail = other[-1] if other else f"mpremote exit code {rc}"
            if rc < 0:
                detail = f"no progress within {timeout_s:.0f} s"
            raise WakewardError(f"{self.port}: {what} failed: {detail}: {self._hint()}")

    def remove(self, paths: Sequence[str]) -> list[str]:
        if not paths:
            return []
        parents = {str(p) for path in paths for p in PurePosixPath(path).parents if str(p) != "."}
        dirs = sorted(parents, key=lambda d: (-d.count("/"), d))
        code = f"FILES = {list(paths)!r}\nDIRS = {dirs!r}\n" + _REMOVE
        out = self.exec("removing files", code)
        return [line.split(" ", 2)[2] for line in out.splitlines() if line.startswith("WKW R ")]

    def reset(self) -> None:
        self.run("resetting the board", "reset", timeout_s=30)


def wait_for_repl(
    port: str,
    *,
    tries: int = REPL_TRIES,
    delay_s: float = REPL_DELAY_S,
    probe_timeout_s: float = REPL_PROBE_S,
    soft_reset: bool = True,
    say: Say = print,
) -> None:
    """Wait until MicroPython answers on `port` (after flashing it boots, makes its
    filesystem, and a native-USB port comes back): `tries` attempts, then a message saying
    what to do."""
    last = ""
    for attempt in range(1, tries + 1):
        try:
            out = Board(port, soft_reset=soft_reset).exec(
                "waiting for the REPL", "print('WKW', 'ready')", timeout_s=probe_timeout_s
            )
            if "WKW ready" in out:
                return
            last = _last_line(out)
        except WakewardError as e:
            last = str(e)
        say(f"flash: waiting for MicroPython on {port} ({attempt}/{tries}): {last}")
        if attempt < tries:
            time.sleep(delay_s)
    raise WakewardError(
        f"no MicroPython REPL on {port} after {tries} {'try' if tries == 1 else 'tries'}: "
        "press RESET on the board, then run "
        f"`wakeward deploy --port {port}` (MicroPython is written; only the deploy is left)"
    )


# -- checks and the plan --------------------------------------------------------------------


def check_target(info: BoardInfo, bundle: Bundle, *, port: str, expect_esp32s3: bool) -> None:
    """Refuse a board the compiled firmware would not run on, before anything is written."""
    if expect_esp32s3:
        if info.platform != "esp32" or "ESP32S3" not in info.machine.replace("-", "").upper():
            raise WakewardError(
                f"{port}: the board runs MicroPython on {info.machine!r} ({info.platform}), not "
                "an ESP32-S3: nothing was written"
            )
        if info.arch != _XTENSAWIN:
            raise WakewardError(
                f"{port}: the board's MicroPython loads native code for arch {info.arch}, not "
                f"xtensawin ({_XTENSAWIN}): flash the official ESP32_GENERIC_S3 build"
            )
    version, sub = bundle.mpy_version
    board_version, board_sub = info.mpy_version
    if board_version != version or (sub is not None and board_sub != sub):
        have = f"{board_version}.{board_sub}"
        want = f"{version}.{sub if sub is not None else board_sub}"
        raise WakewardError(
            f"{port}: the board runs MicroPython {info.version}, which loads .mpy v{have}; the "
            f"firmware is compiled to .mpy v{want} by {mpy_cross_version()}: flash a matching "
            f"MicroPython with `wakeward flash --port {port}`; nothing was written"
        )


def mpy_cross_version() -> str:
    """mpy-cross's release as 'mpy-cross 1.29.0' (just 'mpy-cross' if it does not say)."""
    release = unixport.mpy_cross_release()
    return "mpy-cross " + ".".join(map(str, release)) if release else "mpy-cross"


def _kept(path: str) -> bool:
    return any(path == k or (k.endswith("/") and path.startswith(k)) for k in KEPT_ON_CLEAN)


def make_plan(bundle: Bundle, inventory: Inventory, *, clean: bool) -> Plan:
    copy = tuple(f for f in bundle.files if inventory.hashes.get(f.dest) != f.sha256)
    unchanged = tuple(f for f in bundle.files if inventory.hashes.get(f.dest) == f.sha256)
    deployed = {f.dest for f in bundle.files}
    extra = tuple(sorted(p for p in inventory.files if p not in deployed and not _kept(p)))
    remove = extra if clean else ()
    shadowing = tuple(
        sorted(
            f.dest[: -len(".mpy")] + ".py"
            for f in bundle.files
            if f.dest.endswith(".mpy")
            and f.dest[: -len(".mpy")] + ".py" in inventory.files
            and f.dest[: -len(".mpy")] + ".py" not in remove
        )
    )
    return Plan(copy, unchanged, remove, extra, shadowing)


def bytes_needed(plan: Plan, inventory: Inventory) -> int:
    """Filesystem bytes the plan takes beyond what is there now (files rounded up to a
    block, old versions and removed files given back)."""

    def blocks(size: int) -> int:
        return -(-size // _BLOCK) * _BLOCK if size else 0

    grow = sum(blocks(f.size) - blocks(inventory.files.get(f.dest, 0)) for f in plan.copy)
    return grow - sum(blocks(inventory.files[p]) for p in plan.remove)


def check_plan(plan: Plan, inventory: Inventory, *, port: str) -> None:
    if plan.shadowing:
        names = ", ".join(plan.shadowing)
        raise WakewardError(
            f"{port}: the board has {names}, which MicroPython would import instead of the "
            "deployed .mpy: remove them (`wakeward deploy --clean` removes every file wakeward "
            "does not deploy) and run again; nothing was written"
        )
    need = bytes_needed(plan, inventory)
    free = inventory.info.free
    if free >= 0 and need > free:
        raise WakewardError(
            f"{port}: the board has {free:,} bytes free and this deploy needs about {need:,}: "
            "choose fewer models or remove files (--clean); nothing was written"
        )


def _dirs_for(files: Sequence[BoardFile]) -> list[str]:
    dirs = {str(p) for f in files for p in PurePosixPath(f.dest).parents if str(p) != "."}
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def deploy(
    port: str,
    bundle: Bundle,
    *,
    soft_reset: bool = True,
    reset: bool = True,
    clean: bool = False,
    dry_run: bool = False,
    expect_esp32s3: bool = True,
    say: Say = print,
) -> DeployReport:
    """Put the bundle on the board at `port`: copy what differs, verify, reset.

    `expect_esp32s3=False` skips the check that the board is an ESP32-S3 (for MicroPython's
    unix port in tests); the .mpy version is checked always."""
    check_port(port)
    board = Board(port, soft_reset=soft_reset)
    wanted = [f.dest for f in bundle.files]
    say(
        f"deploy: reading the board on {port} (waiting up to {_EXEC_TIMEOUT_S:.0f} s for "
        "MicroPython to answer; if it does not, press RESET on the board)"
    )
    inventory = board.inventory(wanted)
    info = inventory.info
    say(f"deploy: MicroPython {info.version} on {info.machine}")
    check_target(info, bundle, port=port, expect_esp32s3=expect_esp32s3)
    plan = make_plan(bundle, inventory, clean=clean)
    check_plan(plan, inventory, port=port)
    say(
        f"deploy: {plural(len(bundle.files), 'file')} ({bundle.total_bytes:,} bytes): "
        f"{len(plan.copy)} to copy, {len(plan.unchanged)} unchanged"
        + (f", {len(plan.remove)} to remove" if plan.remove else "")
    )
    left = tuple(p for p in plan.extra if p not in plan.remove)
    copied: tuple[str, ...] = ()
    removed: list[str] = []
    verified = 0
    if dry_run:
        for f in plan.copy:
            say(f"deploy: would copy {f.dest} ({f.size:,} bytes)")
        for p in plan.remove:
            say(f"deploy: would remove {p}")
    else:
        board.mkdirs(_dirs_for(plan.copy))
        board.copy(plan.copy, say)
        copied = tuple(f.dest for f in plan.copy)
        removed = board.remove(plan.remove)
        for p in removed:
            say(f"deploy: removed {p}")
        verified = verify(board, bundle, inventory if not plan.copy else None)
        say(f"deploy: verified {plural(verified, 'file')} (sha256 read back from the board)")
    if left:
        say(
            f"deploy: left {len(left)} other file(s) on the board ({', '.join(left[:5])}"
            + (", ..." if len(left) > 5 else "")
            + "); --clean removes them"
        )
    if reset:
        try:
            board.reset()
            say("deploy: board reset; it starts listening")
        except WakewardError as e:
            say(f"deploy: {e}: press RESET on the board to start it")
    return DeployReport(
        copied,
        tuple(f.dest for f in plan.unchanged),
        tuple(removed),
        left,
        verified,
    )


def verify(board: Board, bundle: Bundle, inventory: Inventory | None = None) -> int:
    """Compare every deployed file's sha256 on the board with ours (read again unless an
    inventory taken after the last write is given); WakewardError naming the differences."""
    if inventory is None:
        inventory = board.inventory([f.dest for f in bundle.files])
    bad = [f for f in bundle.files if inventory.hashes.get(f.dest) != f.sha256]
    if bad:
        details = ", ".join(
            f"{f.dest} ({'missing' if f.dest not in inventory.hashes else 'sha256 differs'})"
            for f in bad
        )
        raise WakewardError(
            f"{board.port}: verification failed: {details}: run `wakeward deploy --port "
            f"{board.port}` again (it copies only these); if it fails again, the board's flash "
            "may be failing"
        )
    return len(bundle.files)
