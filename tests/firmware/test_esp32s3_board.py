"""The ESP32-S3 board layer, run on the unix port against recording fakes of
`machine` and `network` (tests/firmware/fakes): it wires each profile's pins, converts the
microphone's 32-bit slots, and drives LED, amplifier and Wi-Fi."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import output

FAKES = Path(__file__).parent / "fakes"

OPEN = """
import json, machine, network
from board import open_board, profiles
b = open_board({profile!r}, wifi_ssid="home", wifi_password="pw")
"""


def run(mp, code: str) -> str:
    return mp.output(code, extra_paths=(FAKES,))


@pytest.mark.parametrize("profile", ["esp32-s3-devkitc-1", "xiao-esp32s3"])
def test_profile_pins_reach_the_drivers(mp, profile):
    out = run(
        mp,
        OPEN.format(profile=profile)
        + f"print(json.dumps({{'pins': profiles.get({profile!r}), 'calls': machine.CALLS}}))\n",
    )
    data = json.loads(out)
    pins, calls = data["pins"], data["calls"]
    i2s = [c for c in calls if c[0] == "I2S"]
    mic = ["I2S", 0, pins["mic_sck"], pins["mic_ws"], pins["mic_sd"], 0, 32, 0, 16000]
    amp = ["I2S", 1, pins["amp_bclk"], pins["amp_lrc"], pins["amp_din"], 1, 16, 0, 16000]
    assert [c[:9] for c in i2s] == [mic, amp]
    assert ["Pin", pins["button"], 1, 2] in calls
    assert ["Pin", pins["led"], 3, None] in calls
    # the LED starts off: high on an active-low LED, low otherwise
    off_level = 1 if pins["led_active_low"] else 0
    assert ["Pin.value", pins["led"], off_level] in calls


def test_mic_converts_slots_with_the_profile_shift(mp, tmp_path):
    rng = np.random.default_rng(3)
    slots = (rng.integers(-(2**23), 2**23, 800, dtype=np.int64) << 8).astype("<i4")
    (tmp_path / "slots.raw").write_bytes(slots.tobytes())
    run(
        mp,
        "import machine\n"
        "machine.MIC_SLOTS[:] = open('slots.raw', 'rb').read()\n"
        + OPEN.format(profile="xiao-esp32s3")
        + "buf = bytearray(320)\n"
        "out = open('pcm.raw', 'wb')\n"
        "for _ in range(5):\n"
        "    assert b.mic.readinto(buf) == 320\n"
        "    out.write(buf)\n"
        "out.close()\n",
    )
    got = np.frombuffer((tmp_path / "pcm.raw").read_bytes(), "<i2")
    expected = np.clip(slots.astype(np.int64) >> 14, -32768, 32767)
    np.testing.assert_array_equal(got, expected)


def test_mic_refuses_an_oversized_read(mp):
    done = mp.run(
        OPEN.format(profile="xiao-esp32s3") + "b.mic.readinto(bytearray(4096))\n",
        extra_paths=(FAKES,),
        expect_ok=False,
    )
    assert "read at most 1024 samples at a time" in output(done)


def test_led_speaker_and_wifi(mp):
    out = run(
        mp,
        OPEN.format(profile="xiao-esp32s3") + "b.led.value(True)\n"
        "b.speaker.play(bytes(640))\n"
        "up = b.network_up(1000)\n"
        "print(json.dumps({'up': up, 'calls': machine.CALLS, 'net': network.CALLS}))\n",
    )
    data = json.loads(out)
    assert data["up"] is True
    assert ["Pin.value", 21, 0] in data["calls"]  # active low: on = 0
    assert ["I2S.write", 640] in data["calls"]
    assert ["connect", "home", "pw"] in data["net"]


def test_the_board_asks_for_the_cpu_clock(mp):
    out = run(
        mp,
        OPEN.format(profile="esp32-s3-devkitc-1") + "hz = b.set_cpu_hz(240_000_000)\n"
        "print(json.dumps({'hz': hz, 'calls': machine.CALLS}))\n",
    )
    data = json.loads(out)
    assert data["hz"] == 240_000_000
    assert ["freq", 240_000_000] in data["calls"]


def test_unknown_profile_names_the_known_ones(mp):
    done = mp.run(
        "from board import open_board\nopen_board('esp32-c3')\n",
        extra_paths=(FAKES,),
        expect_ok=False,
    )
    assert "unknown board profile 'esp32-c3' (known: esp32-s3-devkitc-1, xiao-esp32s3)" in output(
        done
    )
