"""`wakeward record`: takes from a fake microphone, checked, numbered after those already
there, never overwriting anything; and the take checks themselves."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from wakeward import cli, record
from wakeward.audio import RATE_HZ, read_wav, write_wav
from wakeward.errors import WakewardError
from wakeward_train import clips

from tests.training.test_augment import speechlike

SECONDS = 1.5


def take(seed: int = 0, speech_s: float = 0.8, lead_s: float = 0.3) -> np.ndarray:
    """A good take: room noise, the phrase (speech-like), room noise to the end."""
    rng = np.random.default_rng(seed)
    n = round(SECONDS * RATE_HZ)
    x = rng.normal(0, 10, n)
    at = round(lead_s * RATE_HZ)
    speech = speechlike(speech_s, seed)[: n - at]
    x[at : at + len(speech)] += speech
    return np.round(x).astype(np.int16)


class FakeTakes:
    """A take source that hands out the takes it was given, in order."""

    name = "fake"
    shown = "a fake microphone"

    def __init__(self, takes: list[np.ndarray]) -> None:
        self.takes = list(takes)
        self.asked: list[float] = []

    def take(self, seconds: float, started: Callable[[], None]) -> np.ndarray:
        self.asked.append(seconds)
        started()
        return self.takes.pop(0)


def run(out: Path, takes: list[np.ndarray], n: int, lines: list[str]) -> list[Path]:
    return record.record(
        "hey wakeward", out, FakeTakes(takes), takes=n, seconds=SECONDS, pause_s=0,
        say=lines.append,
    )  # fmt: skip


def test_good_takes_are_written_after_the_ones_there(tmp_path):
    out = tmp_path / "takes"
    out.mkdir()
    mine = write_wav(out / "take-002.wav", take(9))
    other = out / "notes.txt"
    other.write_text("mine")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (mine, other)}
    lines: list[str] = []
    written = run(out, [take(1), take(2), take(3)], 3, lines)
    assert [p.name for p in written] == ["take-003.wav", "take-004.wav", "take-005.wav"]
    for p, t in zip(written, [take(1), take(2), take(3)], strict=True):
        assert np.array_equal(read_wav(p), t)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (mine, other)} == before
    info = json.loads((out / "takes.json").read_text())
    assert info["format"] == "wakeward-takes/1" and info["phrase"] == "hey wakeward"
    assert [t["file"] for t in info["takes"]] == ["take-003.wav", "take-004.wav", "take-005.wav"]
    assert {t["source"] for t in info["takes"]} == {"fake"}
    for t in info["takes"]:
        assert t["seconds"] == SECONDS and t["recorded_at"].endswith("+00:00")
    assert lines[0] == "recording 3 takes of 'hey wakeward' from a fake microphone, 1.5 s each"
    assert lines[1:4] == [
        "take 1/3: say 'hey wakeward' after the beep",
        ">>> beep: speak now (1.5 s)",
        f"take 1/3: kept as {out / 'take-003.wav'}",
    ]
    # a second session goes on after them, and takes.json lists every take
    run(out, [take(4)], 1, [])
    info = json.loads((out / "takes.json").read_text())
    assert [t["file"] for t in info["takes"]][-1] == "take-006.wav"
    assert len(info["takes"]) == 4
    assert sorted(p.name for p in out.iterdir()) == [
        "notes.txt", "take-002.wav", "take-003.wav", "take-004.wav", "take-005.wav",
        "take-006.wav", "takes.json",
    ]  # fmt: skip


def test_a_bad_take_is_said_and_asked_again(tmp_path):
    out = tmp_path / "takes"
    lines: list[str] = []
    silent = np.zeros(round(SECONDS * RATE_HZ), np.int16)
    written = run(out, [silent, take(1)], 1, lines)
    assert [p.name for p in written] == ["take-001.wav"]
    assert np.array_equal(read_wav(written[0]), take(1))
    assert "take 1/1: not kept: the recording is silent (never louder than -65 dBFS)" in lines
    assert "take 1/1 (try 2 of 3): say 'hey wakeward' after the beep" in lines


def test_too_many_bad_tries_stop_and_keep_the_good_takes(tmp_path):
    out = tmp_path / "takes"
    noise = np.round(np.random.default_rng(0).normal(0, 300, round(SECONDS * RATE_HZ)))
    bad = noise.astype(np.int16)
    with pytest.raises(WakewardError) as e:
        run(out, [take(1), bad, bad, bad], 2, [])
    assert str(e.value).startswith("take 2: 3 tries were not usable (the last: no speech heard")
    assert sorted(p.name for p in out.iterdir()) == ["take-001.wav", "takes.json"]
    assert len(json.loads((out / "takes.json").read_text())["takes"]) == 1
    with pytest.raises(WakewardError, match="take 1: 3 tries were not usable"):
        run(tmp_path / "new", [bad, bad, bad], 1, [])
    assert not (tmp_path / "new").exists()  # a session that kept nothing leaves nothing


def test_takes_of_another_phrase_or_an_odd_folder_are_refused(tmp_path):
    lines: list[str] = []
    out = tmp_path / "takes"
    run(out, [take(1)], 1, lines)
    listing = (out / "takes.json").read_bytes()
    with pytest.raises(WakewardError, match=r"its takes are of 'hey wakeward', not 'alexa'"):
        record.record("alexa", out, FakeTakes([take(2)]), takes=1, pause_s=0, say=lines.append)
    assert (out / "takes.json").read_bytes() == listing
    (tmp_path / "file").write_text("x")
    with pytest.raises(WakewardError, match=r"--out .*file: exists and is not a folder"):
        run(tmp_path / "file", [take(1)], 1, lines)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "takes.json").write_text("[1, 2]")
    with pytest.raises(WakewardError, match=r"takes.json: not a takes file of `wakeward record`"):
        run(odd, [take(1)], 1, lines)
    assert (odd / "takes.json").read_text() == "[1, 2]"
    assert sorted(p.name for p in odd.iterdir()) == ["takes.json"]
    bad = [(0, 1.5, "--takes 0"), (1, 0.2, "--take-seconds 0.2"), (1, 11, "--take-seconds 11")]
    for n, seconds, message in bad:
        with pytest.raises(WakewardError, match=message):
            record.record("hey", tmp_path / "x", FakeTakes([]), takes=n, seconds=seconds)


def test_the_checks_say_what_is_wrong_with_a_take():
    good = take(1)
    assert clips.take_problem(good) is None
    assert clips.take_problem(np.zeros(0, np.int16)) == "the recording is empty"
    assert clips.take_problem(good[:3000]).startswith("the recording is 0.19 s, shorter than")
    loud = (take(1).astype(np.int32) * 12).clip(-32768, 32767).astype(np.int16)
    assert clips.take_problem(loud).startswith("the recording is clipped (")
    hum = (3000 * np.sin(2 * np.pi * 50 * np.arange(len(good)) / RATE_HZ)).astype(np.int16)
    assert clips.take_problem(hum).startswith("no speech heard: the loudest moment is only 0 dB")
    click = take(1, speech_s=0.05)
    assert clips.take_problem(click) == "no speech heard: only a sound shorter than 0.15 s"
    late = take(1, lead_s=0.9)  # the phrase runs past the end of the take
    assert clips.take_problem(late) == (
        "the speech runs to the end of the take: start sooner or record longer takes"
    )


def test_record_from_the_pc_microphone(tmp_path, monkeypatch, capsys):
    """The command with $WAKEWARD_MIC_COMMAND standing in for the microphone."""
    raw = tmp_path / "take.raw"
    raw.write_bytes(take(5).astype("<i2").tobytes())
    monkeypatch.setenv("WAKEWARD_MIC_COMMAND", f"cat {shlex.quote(str(raw))}")
    monkeypatch.setattr(record, "PAUSE_S", 0.0)
    out = tmp_path / "mine"
    code = cli.main(
        ["record", "hey wakeward", "--out", str(out), "--takes", "2", "--take-seconds", "1.5"]
    )
    said = capsys.readouterr()
    assert code == 0, said.err
    assert f"from the PC microphone (`cat {raw}`)" in said.out
    assert said.out.splitlines()[-1].startswith(f"recorded 2 takes into {out} (2 there now)")
    for name in ("take-001.wav", "take-002.wav"):
        assert np.array_equal(read_wav(out / name), take(5))
    info = json.loads((out / "takes.json").read_text())
    assert {t["source"] for t in info["takes"]} == {"pc-microphone"}
    # a capture that ends before the take is long enough
    monkeypatch.setenv("WAKEWARD_MIC_COMMAND", f"head -c 8000 {shlex.quote(str(raw))}")
    code = cli.main(["record", "hey wakeward", "--out", str(out), "--takes", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == (
        f"wakeward: the capture command `head -c 8000 {raw}` ended after 0.25 s of a 2.5 s take"
    )
    assert sorted(p.name for p in out.iterdir()) == ["take-001.wav", "take-002.wav", "takes.json"]


def test_record_from_the_speaker_asks_it_for_each_take(tmp_path, monkeypatch, capsys):
    """--from-speaker: each take is one record request through the receiver
    (devicerequests.record_from_speaker, tested end to end against the firmware in
    tests/host/test_requests.py), asked for in whole seconds and cut to --take-seconds."""
    asked: list[tuple] = []

    def fake(options, seconds, takes=1, on_take=None, *, before_take=None, say=print, **kw):
        asked.append(((options.host, options.port), seconds, takes, options.store))
        before_take(0)
        return [np.concatenate([take(len(asked)), np.zeros(RATE_HZ, np.int16)])]

    from wakeward import devicerequests

    monkeypatch.setattr(devicerequests, "record_from_speaker", fake)
    monkeypatch.setattr(record, "PAUSE_S", 0.0)
    out = tmp_path / "mine"
    argv = ["record", "hey wakeward", "--out", str(out), "--takes", "2", "--take-seconds", "1.5"]
    code = cli.main([*argv, "--from-speaker", "--tcp", "127.0.0.1:7070"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert asked == [(("127.0.0.1", 7070), 2, 1, None)] * 2  # 1.5 s: asked for 2 s
    assert ">>> beep: speak now" in said.out
    for i, name in enumerate(("take-001.wav", "take-002.wav"), start=1):
        assert np.array_equal(read_wav(out / name), take(i))  # cut to 1.5 s
    info = json.loads((out / "takes.json").read_text())
    assert {t["source"] for t in info["takes"]} == {"speaker"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tcp", "127.0.0.1:7070"], "--tcp, --serial, --baud, --tls, --pairing and --store"),
        (["--store", "clips"], "--store go with --from-speaker"),
        (["--from-speaker"], "where does the speaker connect"),
        (["--from-speaker", "--tcp", "127.0.0.1:7070", "--take-seconds", "12"], "at most 10 s"),
        (["--from-speaker", "--serial", "/dev/x", "--pairing", "p"], "--pairing goes with --tls"),
    ],
)
def test_speaker_options_are_checked(tmp_path, capsys, extra, message):
    code = cli.main(["record", "hey wakeward", "--out", str(tmp_path / "t"), *extra])
    assert code == 1 and message in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_record_from_the_speaker_puts_clips_in_the_store_named(tmp_path, monkeypatch, capsys):
    """--store: where detection clips that arrive while recording go (as listen's)."""
    stores: list[Path | None] = []

    def fake(options, seconds, takes=1, on_take=None, *, before_take=None, say=print, **kw):
        stores.append(options.store)
        before_take(0)
        return [take(1)]

    from wakeward import devicerequests

    monkeypatch.setattr(devicerequests, "record_from_speaker", fake)
    monkeypatch.setattr(record, "PAUSE_S", 0.0)
    argv = ["record", "hey wakeward", "--out", str(tmp_path / "mine"), "--takes", "1"]
    code = cli.main(
        [*argv, "--take-seconds", "1.5", "--from-speaker", "--tcp", "127.0.0.1:7070"]
        + ["--store", str(tmp_path / "clips")]
    )
    assert code == 0, capsys.readouterr().err
    assert stores == [tmp_path / "clips"]


def test_no_microphone_is_found_before_any_prompt_or_beep(tmp_path, monkeypatch, capsys):
    """A capture that fails (no sound card) is said before the first prompt, with what to
    do next; nothing is made."""
    monkeypatch.setenv("WAKEWARD_MIC_COMMAND", "echo 'no soundcards found' >&2; exit 1")
    monkeypatch.setattr(record, "PAUSE_S", 0.0)
    out = tmp_path / "mine"
    code = cli.main(["record", "hey wakeward", "--out", str(out), "--takes", "1"])
    said = capsys.readouterr()
    assert code == 1
    assert said.out == ""
    assert said.err.startswith("wakeward: the capture command `echo 'no soundcards found'")
    assert "no soundcards found" in said.err
    assert "WAKEWARD_MIC_COMMAND" in said.err  # what to do next
    assert not out.exists()


def test_the_beep_comes_only_once_the_microphone_gives_audio(tmp_path, monkeypatch):
    """A capture that fails within a session (unplugged) fails before that take's beep."""
    from wakeward import mic

    lines: list[str] = []
    source = record.MicTakes(mic.Capture(("/bin/sh", "-c", "exit 1"), "gone"))
    with pytest.raises(WakewardError, match="exited with status 1"):
        source.take(SECONDS, lambda: lines.append("beep"))
    assert lines == []
