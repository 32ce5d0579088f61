"""bench/run.py's static instruction counts: the viper functions' machine code is found in
mpy-cross's .mpy files, in the order the module defines them, for x86-64 and Xtensa."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wakeward import unixport

from tests.conftest import require_tools

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import run as bench  # noqa: E402

MODULE = """
import micropython


@micropython.viper
def first(buf: ptr8, n: int) -> int:
    return buf[0] + n


def plain(x):
    return x + 1


class Thing:
    def method(self):
        return (1, "two", b"three", 4.5)


@micropython.viper
def second(a: int) -> int:
    b = a * 3
    return b + 0x12345
"""
X64_PUSH_RBP = 0x55
XTENSA_JUMP = 6  # op0 of the jump over the constant table


def compiled(tmp_path: Path, arch: str) -> bytes:
    source = tmp_path / "mod.py"
    source.write_text(MODULE)
    out = tmp_path / f"mod-{arch}.mpy"
    subprocess.run(
        [str(unixport.mpy_cross_exe()), f"-march={arch}", "-o", str(out), str(source)],
        check=True,
    )
    return out.read_bytes()


def test_viper_functions_are_named_in_order(tmp_path):
    (tmp_path / "mod.py").write_text(MODULE)
    assert bench.viper_names(tmp_path / "mod.py") == ["first", "second"]


def test_viper_machine_code_is_found_for_both_architectures(tmp_path):
    x64 = bench.viper_machine_code(compiled(tmp_path, "x64"))
    xtensa = bench.viper_machine_code(compiled(tmp_path, "xtensawin"))
    assert len(x64) == len(xtensa) == 2
    assert all(code[0] == X64_PUSH_RBP for code in x64)
    assert all(code[0] & 0x3F == XTENSA_JUMP for code in xtensa)
    # only the second function holds the constant 0x12345 (x86-64: an immediate; Xtensa:
    # its constant table)
    constant = (0x12345).to_bytes(4, "little")
    for first, second in (x64, xtensa):
        assert constant not in first
        assert constant in second


def test_static_counts_of_a_firmware_module(tmp_path):
    require_tools("objdump", bench.XTENSA_OBJDUMP)
    counts = bench.static_counts(tmp_path, "pcm.py")
    assert set(counts) == {"i2s32_to_int16", "mean_abs"}
    for x64, xtensa in counts.values():
        assert 50 < x64 < 1000
        assert 50 < xtensa < 1000
