"""The port overrides (docs/port32.md): bad values are named, good ones are used."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from wakeward import unixport
from wakeward.errors import WakewardError


@pytest.mark.parametrize("variable", ["WAKEWARD_MICROPYTHON", "WAKEWARD_MPY_CROSS"])
def test_an_override_that_is_not_a_file_is_named(monkeypatch, tmp_path, variable):
    monkeypatch.setenv(variable, str(tmp_path / "nope"))
    finders = {"WAKEWARD_MICROPYTHON": unixport.micropython_exe}
    find = finders.get(variable, unixport.mpy_cross_exe)
    with pytest.raises(WakewardError, match=f"{variable}=.*nope: no such file"):
        find()


def test_an_override_is_used(monkeypatch):
    exe = Path(sys.executable).parent / "micropython"
    monkeypatch.setenv("WAKEWARD_MICROPYTHON", str(exe))
    assert unixport.micropython_exe() == exe


def test_an_unknown_arch_is_refused_with_the_known_ones(monkeypatch):
    monkeypatch.setenv("WAKEWARD_MPY_ARCH", "z80")
    with pytest.raises(WakewardError, match="WAKEWARD_MPY_ARCH=z80: .*x64"):
        unixport.mpy_arch()
    monkeypatch.setenv("WAKEWARD_MPY_ARCH", "x86")
    assert unixport.mpy_arch() == "x86"


def test_mpy_cross_release_is_read():
    release = unixport.mpy_cross_release()
    assert release is not None and release[:2] == (1, 29)
