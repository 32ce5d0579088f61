"""config.json is validated at boot: each bad field gets a message naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from wakeward import unixport

from tests.conftest import FIRMWARE, output, write_test_wav

CHECK = """
import json, config
try:
    print(json.dumps(config.load()))
except config.ConfigError as e:
    print("ERROR", e)
"""

GOOD = {"board": "sim", "board_options": {"wav": "x.wav"}}
SECRET = "0123456789abcdefABCDEF" * 2 + "00112233445566778899"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"board": "esp32"}, "field 'board': 'esp32' is not 'sim' or a board profile"),
        ({"bord": "sim"}, "field 'bord': unknown field"),
        ({"board_options": []}, "field 'board_options': must be an object"),
        ({"models": {}}, "field 'models': must be a list"),
        ({"models": [{}]}, "field 'models[0].path': must be a non-empty string"),
        (
            {"models": [{"path": "a.tflite", "probability_cutoff": 1.5}]},
            "field 'models[0].probability_cutoff': must be a number from 0 to 1",
        ),
        (
            {"models": [{"path": "a.tflite", "sliding_window_size": 0}]},
            "field 'models[0].sliding_window_size': must be a whole number from 1 to 100",
        ),
        ({"trace": "yes"}, "field 'trace': must be true or false"),
        ({"link": {"tcp": "nohost"}}, "field 'link.tcp': 'nohost' is not HOST:PORT"),
        ({"link": {"tls": "a:1"}}, 'field \'link\': must be {"tcp": "HOST:PORT", ...}'),
        ({"link": {"tcp": "a:1", "tlz": 1}}, "field 'link.tlz': unknown field (known: tcp, tls, "),
        (
            {"link": {"tcp": "a:1", "tls": 1, "secret": SECRET}},
            "field 'link.tls': must be {\"cert\": FILE}, the receiver's certificate (DER)",
        ),
        (
            {"link": {"tcp": "a:1", "tls": {"cert": "r.der", "pin": 1}, "secret": SECRET}},
            "field 'link.tls': must be {\"cert\": FILE}",
        ),
        (
            {"link": {"tcp": "a:1", "tls": {"cert": ""}, "secret": SECRET}},
            "field 'link.tls.cert': must be a non-empty string",
        ),
        (
            {"link": {"tcp": "a:1", "tls": {"cert": "r.der"}}},
            "field 'link.secret': missing: a TLS link needs the device's secret (wakeward pair)",
        ),
        (
            {"link": {"tcp": "a:1", "secret": SECRET}},
            "field 'link.secret': needs link.tls: a secret never goes over plain TCP",
        ),
        (
            {"link": {"tcp": "a:1", "tls": {"cert": "r.der"}, "secret": SECRET[:-1]}},
            "field 'link.secret': must be 64 hex digits (wakeward pair)",
        ),
        (
            {"link": {"tcp": "a:1", "tls": {"cert": "r.der"}, "secret": SECRET[:-1] + "g"}},
            "field 'link.secret': must be 64 hex digits",
        ),
        (
            {"link": {"tcp": "a:1", "tls": {"cert": "r.der"}, "secret": 7}},
            "field 'link.secret': must be 64 hex digits",
        ),
        (
            {"link": {"tcp": "a:1", "queue_max_clips": 0}},
            "field 'link.queue_max_clips': must be a whole number from 1 to 255",
        ),
        (
            {"link": {"tcp": "a:1", "queue_max_kb": 100}},
            "field 'link.queue_max_kb': must hold one clip of clip.max_ms (8000 ms needs 256)",
        ),
        (
            {"link": {"tcp": "a:1", "retry_min_ms": 5000, "retry_max_ms": 2000}},
            "field 'link.retry_max_ms': must be at least link.retry_min_ms",
        ),
        (
            {"link": {"tcp": "a:1", "timeout_ms": 1.5}},
            "field 'link.timeout_ms': must be a whole number from 10 to 60000",
        ),
        (
            {"link": {"tcp": "a:1", "ack_timeout_ms": True}},
            "field 'link.ack_timeout_ms': must be a whole number from 100 to 600000",
        ),
        (
            {"link": {"tcp": "a:1", "status_interval_ms": 0}},
            "field 'link.status_interval_ms': must be a whole number from 100 to 600000",
        ),
        (
            {"link": {"tcp": "a:1", "retry_min_ms": "1s"}},
            "field 'link.retry_min_ms': must be a whole number from 10 to 600000",
        ),
        (
            {"link": {"tcp": "a:1", "serial": True}},
            "field 'link.serial': not with link.tcp: one link, Wi-Fi (tcp) or USB (serial)",
        ),
        ({"link": {"serial": 1}}, "field 'link.serial': must be true (the USB serial console)"),
        (
            {"link": {"serial": True, "secret": SECRET}},
            "field 'link.secret': not with link.serial: the USB cable is a direct link",
        ),
        (
            {"link": {"serial": True, "tls": {"cert": "r.der"}}},
            "field 'link.tls': not with link.serial",
        ),
        ({"link": {}}, 'field \'link\': must be {"tcp": "HOST:PORT", ...} or {"serial": true'),
        (
            {"link": {"tcp": "a:1", "requests": "owner"}},
            "field 'link.requests': must be \"paired\" (TLS with the secret, or USB serial), "
            '"any" or "none"',
        ),
        ({"link": {"serial": True, "requests": True}}, "field 'link.requests': must be \"paired\""),
        ({"link": {"tcp": "a:1", "requests": ["any"]}}, "field 'link.requests': must be"),
        ({"wifi": {"ssid": ""}}, "field 'wifi.ssid': must be a non-empty string"),
        ({"wifi": {"pass": "x"}}, "field 'wifi.pass': unknown field"),
        ({"clip": {"pre_roll_ms": -1}}, "field 'clip.pre_roll_ms': must be a whole number"),
        (
            {"clip": {"pre_roll_ms": 2000, "max_ms": 1500}},
            "field 'clip.max_ms': must be longer than clip.pre_roll_ms",
        ),
        ({"device_id": 7}, "field 'device_id': must be a non-empty string"),
        (
            {"board_options": {"wav": "x.wav", "realtme": True}},
            "field 'board_options.realtme': unknown field (known: wav, pcm_socket, realtime, "
            "events, button, speaker)",
        ),
        (
            {"board": "esp32-s3-devkitc-1", "board_options": {"wifi_ssid": "home"}},
            "field 'board_options.wifi_ssid': unknown field (an ESP32-S3 board takes none; "
            "Wi-Fi goes in 'wifi')",
        ),
        ({"board_options": {"wav": 7}}, "field 'board_options.wav': must be a non-empty string"),
        (
            {"board_options": {"wav": "x.wav", "realtime": 1}},
            "field 'board_options.realtime': must be true or false",
        ),
        (
            {"board_options": {"wav": "x.wav", "button": [[0, "5"]]}},
            "field 'board_options.button': must be a list of [press_ms, release_ms]",
        ),
    ],
)
def test_each_bad_field_is_named(mp, change, message):
    (mp.cwd / "config.json").write_text(json.dumps({**GOOD, **change}))
    out = mp.output(CHECK)
    assert out.startswith("ERROR config.json: "), out
    assert message in out


def test_defaults_are_filled_in(mp):
    cfg = {**GOOD, "models": [{"path": "a.tflite"}], "link": {"tcp": "127.0.0.1:7000"}}
    (mp.cwd / "config.json").write_text(json.dumps(cfg))
    got = json.loads(mp.output(CHECK))
    assert got["models"] == [
        {
            "path": "a.tflite",
            "name": "a.tflite",
            "probability_cutoff": 0.9,
            "sliding_window_size": 5,
        }
    ]
    assert got["link"] == {
        "serial": False,
        "host": "127.0.0.1",
        "port": 7000,
        "queue_max_clips": 16,
        "queue_max_kb": 1024,
        "retry_min_ms": 1000,
        "retry_max_ms": 60000,
        "timeout_ms": 200,
        "ack_timeout_ms": 10000,
        "status_interval_ms": 30000,
        "tls": None,
        "secret": None,
        "requests": "paired",
    }
    assert (got["pre_roll_ms"], got["max_clip_ms"], got["device_id"]) == (1000, 8000, "sim")


def test_a_serial_link_has_no_address_and_the_same_queue_fields(mp):
    link = {"serial": True, "ack_timeout_ms": 3000}
    (mp.cwd / "config.json").write_text(json.dumps({**GOOD, "link": link}))
    got = json.loads(mp.output(CHECK))["link"]
    assert (got["serial"], got["host"], got["port"], got["tls"], got["secret"]) == (
        True, None, None, None, None
    )  # fmt: skip
    assert (got["ack_timeout_ms"], got["queue_max_clips"]) == (3000, 16)


@pytest.mark.parametrize("policy", ["paired", "any", "none"])
def test_link_requests_takes_each_policy(mp, policy):
    link = {"serial": True, "requests": policy}
    (mp.cwd / "config.json").write_text(json.dumps({**GOOD, "link": link}))
    assert json.loads(mp.output(CHECK))["link"]["requests"] == policy


def test_a_tls_link_carries_its_certificate_file_and_secret(mp):
    link = {"tcp": "192.168.1.20:7000", "tls": {"cert": "receiver.der"}, "secret": SECRET}
    (mp.cwd / "config.json").write_text(json.dumps({**GOOD, "link": link}))
    got = json.loads(mp.output(CHECK))["link"]
    assert (got["host"], got["tls"], got["secret"]) == ("192.168.1.20", "receiver.der", SECRET)


def test_a_missing_or_broken_certificate_file_stops_the_boot_naming_the_field(mp):
    write_test_wav(mp.cwd / "x.wav", np.zeros(1600, np.int16))
    link = {"tcp": "127.0.0.1:9", "tls": {"cert": "receiver.der"}, "secret": SECRET}
    (mp.cwd / "config.json").write_text(json.dumps({**GOOD, "link": link}))
    done = mp.run("import main\nmain.main()\n", expect_ok=False)
    assert "ValueError: link.tls.cert: receiver.der: [Errno 2] ENOENT" in output(done)
    (mp.cwd / "receiver.der").write_bytes(b"not a certificate")
    done = mp.run("import main\nmain.main()\n", expect_ok=False)
    assert "ValueError: link.tls.cert: receiver.der: invalid cert" in output(done)


def test_the_clip_queue_must_hold_one_clip_of_the_longest_length(mp):
    link = {"tcp": "127.0.0.1:7000", "queue_max_kb": 66, "queue_max_clips": 3}
    cfg = {**GOOD, "clip": {"max_ms": 2000}, "link": link}
    (mp.cwd / "config.json").write_text(json.dumps(cfg))
    got = json.loads(mp.output(CHECK))
    assert (got["link"]["queue_max_kb"], got["link"]["queue_max_clips"]) == (66, 3)
    cfg["clip"]["max_ms"] = 2100
    (mp.cwd / "config.json").write_text(json.dumps(cfg))
    assert "field 'link.queue_max_kb': must hold one clip of clip.max_ms (2100 ms needs 69)" in (
        mp.output(CHECK)
    )


def test_not_json_and_missing_file(mp):
    out = mp.output(CHECK)
    assert "ERROR config.json: cannot be read" in out
    (mp.cwd / "config.json").write_text("{board: sim")
    assert "ERROR config.json: not valid JSON" in mp.output(CHECK)


def test_main_prints_the_error_and_exits_1(mp):
    (mp.cwd / "config.json").write_text(json.dumps({"board": "sim", "trace": 1}))
    done = mp.run("import main\nmain.main()\n", expect_ok=False)
    assert "field 'trace'" in output(done)


def test_an_unknown_board_option_stops_the_boot_with_its_name_not_a_traceback(mp):
    write_test_wav(mp.cwd / "x.wav", np.zeros(1600, np.int16))
    cfg = {"board": "sim", "board_options": {"wav": "x.wav", "realtme": True}}
    (mp.cwd / "config.json").write_text(json.dumps(cfg))
    done = unixport.run(FIRMWARE / "main.py", cwd=mp.cwd)  # its own entry point and handler
    text = output(done)
    assert done.returncode == 1, text
    assert "wakeward: config.json: field 'board_options.realtme': unknown field" in text
    assert "Traceback" not in text
