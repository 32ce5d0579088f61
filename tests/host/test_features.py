"""`wakeward features` as a user runs it: the device frontend on the unix port and the
pymicro-features reference give the same bytes, and bad input gets a clear refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wakeward import features, tts
from wakeward.audio import read_wav, write_wav
from wakeward.errors import WakewardError

from tests.conftest import require_tools, write_test_wav


def wakeward(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wakeward", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    """~10 s: espeak-ng speech in three voices, pauses, noise that swells and falls, and a
    stretch of clipping, with a length that is not a multiple of 160 samples."""
    require_tools("espeak-ng", "sox")
    tmp = tmp_path_factory.mktemp("features")
    lines = [
        ("Okay Nabu, what is the weather like today?", "en-us", 150),
        ("Hey Jarvis, turn off the kitchen lights.", "en-gb", 130),
        ("Alexa, play the radio a little louder.", "en-us+f3", 170),
    ]
    rng = np.random.default_rng(5)
    parts = []
    for i, (text, voice, rate) in enumerate(lines):
        parts.append(np.zeros(6000))
        parts.append(tts.espeak(text, tmp / f"s{i}.wav", voice=voice, rate_wpm=rate) * 1.0)
    parts.append(np.zeros(4000))
    speech = np.concatenate(parts)
    t = np.arange(len(speech)) / 16000
    noise = rng.normal(0, 1, len(speech)) * (50 + 1500 * (np.sin(2 * np.pi * t / 7) ** 2))
    audio = speech + noise
    audio[20000:21000] *= 8  # clipped
    audio = np.clip(np.round(audio), -32768, 32767).astype(np.int16)[:-37]
    return write_wav(tmp / "speech.wav", audio)


def test_device_features_equal_the_reference(tmp_path, speech_wav):
    dev = wakeward("features", str(speech_wav), "--out", "dev.npy", cwd=tmp_path)
    assert dev.returncode == 0, dev.stderr
    ref = wakeward("features", str(speech_wav), "--out", "ref.npy", "--reference", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr

    n = len(read_wav(speech_wav))
    frames = n // 160 - 2
    seconds = f"{n / 16000:.2f} s"
    assert dev.stdout.strip() == (
        f"dev.npy: {frames} frames x 40 int8 from {seconds} of audio, "
        "device frontend (esp32s3-psram)"
    )
    assert ref.stdout.strip() == (
        f"ref.npy: {frames} frames x 40 int8 from {seconds} of audio, "
        "pymicro-features (PC reference)"
    )
    got, want = np.load(tmp_path / "dev.npy"), np.load(tmp_path / "ref.npy")
    assert got.dtype == want.dtype == np.int8
    assert got.shape == want.shape == (frames, 40)
    assert (tmp_path / "dev.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
    # the speech reaches high in the int8 range, the quiet stretches the bottom
    assert got.max() > 100 and got.min() == -128
    assert len(np.unique(got)) > 100
    assert features.load_features(tmp_path / "dev.npy").shape == (frames, 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.npy", "ref.npy"]  # no litter


def test_uint16_features_and_the_exact_scaling(speech_wav):
    """pymicro-features' floats are uint16 * 5/128 exactly: undone, they equal the device
    frontend's uint16 frame, and ESPHome's int8 of those is what the CLI saves."""
    samples = read_wav(speech_wav)
    dev = features.device_frames(samples, heap="esp32s3")
    ref = features.reference_uint16(samples)
    assert dev.uint16.dtype == ref.dtype == np.uint16
    assert np.array_equal(dev.uint16, ref)
    assert np.array_equal(dev.int8, features.esphome_int8(ref))
    assert ref.max() > 600

    v = np.arange(65536)
    f = (v.astype(np.float32) * np.float32(0.0390625)).astype(np.float64)  # pmf's arithmetic
    assert np.array_equal(features.pmf_to_uint16(f), v)
    assert np.array_equal(np.round(f * 25.6), v)  # the rounded form agrees too
    with pytest.raises(WakewardError, match="scaling has changed"):
        features.pmf_to_uint16([0.04])


def test_esphome_int8_formula():
    v = np.array([0, 1, 332, 333, 664, 665, 666, 65535])
    assert features.esphome_int8(v).tolist() == [-128, -128, 0, 0, 127, 127, 127, 127]


def test_model_inputs_and_load_features(tmp_path):
    f = np.arange(10 * 40).astype(np.int8).reshape(10, 40)
    x = features.model_inputs(f)
    assert x.shape == (3, 1, 3, 40)
    assert np.array_equal(x[1, 0], f[3:6])
    np.save(tmp_path / "f32.npy", f.astype(np.float32))
    with pytest.raises(WakewardError, match="dtype float32, features are int8"):
        features.load_features(tmp_path / "f32.npy")
    np.save(tmp_path / "shape.npy", f.reshape(-1, 8))
    with pytest.raises(WakewardError, match=r"shape \(50, 8\), features are \(frames, 40\)"):
        features.load_features(tmp_path / "shape.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(WakewardError, match="not a readable .npy array"):
        features.load_features(tmp_path / "junk.npy")
    with pytest.raises(WakewardError, match="no such file"):
        features.load_features(tmp_path / "none.npy")


@pytest.mark.parametrize("reference", [False, True], ids=["device", "reference"])
def test_audio_shorter_than_a_window_gives_no_frames(tmp_path, reference):
    write_test_wav(tmp_path / "short.wav", np.ones(479, np.int16))
    args = ["--reference"] if reference else []
    done = wakeward("features", "short.wav", "--out", "f.npy", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("f.npy: 0 frames x 40 int8 from 0.03 s of audio")
    out = np.load(tmp_path / "f.npy")
    assert out.shape == (0, 40) and out.dtype == np.int8


def test_an_existing_npy_is_replaced(tmp_path):
    write_test_wav(tmp_path / "a.wav", np.zeros(1600, np.int16))
    np.save(tmp_path / "f.npy", np.ones(3))
    done = wakeward("features", "a.wav", "--out", "f.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = np.load(tmp_path / "f.npy")
    assert out.shape == (8, 40) and out.dtype == np.int8


# ----------------------------------------------------------------- refusals ----
def refused(tmp_path: Path, *args: str) -> str:
    done = wakeward("features", *args, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wakeward: "), done.stderr
    return lines[0]


def test_a_missing_file_is_named(tmp_path):
    assert refused(tmp_path, "nope.wav", "--out", "f.npy") == "wakeward: nope.wav: no such file"
    assert not (tmp_path / "f.npy").exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"rate_hz": 8000}, {"rate_hz": 44100}, {"channels": 2}, {"width": 1}, {"width": 4}],
    ids=["8kHz", "44k1Hz", "stereo", "8bit", "32bit"],
)
def test_any_common_wav_is_converted_saying_so_once(tmp_path, kwargs):
    samples = np.zeros(3200, np.uint8 if kwargs.get("width") == 1 else np.int16)
    write_test_wav(tmp_path / "in.wav", samples, **kwargs)
    done = wakeward("features", "in.wav", "--out", "f.npy", "--reference", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("in.wav: "), done.stderr
    assert lines[0].endswith(", converted to 16 kHz mono 16-bit")
    assert (tmp_path / "f.npy").exists()


def test_a_file_that_is_not_a_wav_is_refused(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"ID3 this is an mp3, really")
    assert "x.wav: not a readable PCM WAV file" in refused(tmp_path, "x.wav", "--out", "f.npy")


@pytest.fixture
def wav(tmp_path) -> str:
    write_test_wav(tmp_path / "a.wav", np.zeros(1600, np.int16))
    return "a.wav"


def test_an_out_that_is_not_npy_is_refused(tmp_path, wav):
    msg = refused(tmp_path, wav, "--out", "frames.txt")
    assert msg == "wakeward: frames.txt: the output must be a .npy file (name it FRAMES.npy)"
    assert not (tmp_path / "frames.txt").exists()


def test_an_existing_file_that_is_not_npy_is_never_overwritten(tmp_path, wav):
    (tmp_path / "notes.npy").write_text("my notes, not an array")
    msg = refused(tmp_path, wav, "--out", "notes.npy")
    assert msg == (
        "wakeward: notes.npy: exists and is not a .npy array; not overwriting it "
        "(remove it or choose another --out)"
    )
    assert (tmp_path / "notes.npy").read_text() == "my notes, not an array"


def test_an_out_that_is_a_directory_is_refused(tmp_path, wav):
    (tmp_path / "d.npy").mkdir()
    assert refused(tmp_path, wav, "--out", "d.npy") == "wakeward: d.npy: is a directory"


def test_an_out_in_a_missing_folder_is_refused(tmp_path, wav):
    msg = refused(tmp_path, wav, "--out", "no/such/f.npy")
    assert msg == "wakeward: no/such/f.npy: folder no/such does not exist"


def test_an_unwritable_out_is_refused(tmp_path, wav):
    if os.geteuid() == 0:  # root writes anywhere a mode allows: use a kernel folder
        target = Path("/proc/wakeward-features.npy")
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc to stand for an unwritable folder")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "f.npy"
    msg = refused(tmp_path, wav, "--out", str(target))
    assert msg.startswith(f"wakeward: {target}: cannot write to folder {target.parent} (")
    assert not target.exists()


def test_an_unknown_heap_profile_is_a_usage_error(tmp_path, wav):
    done = wakeward("features", wav, "--out", "f.npy", "--heap", "esp8266", cwd=tmp_path)
    assert done.returncode == 2
    assert "invalid choice: 'esp8266'" in done.stderr


def test_out_is_required(tmp_path, wav):
    done = wakeward("features", wav, cwd=tmp_path)
    assert done.returncode == 2
    assert "--out" in done.stderr
