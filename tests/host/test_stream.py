"""The whole loop on one PC: the firmware on the sim board detects the wake word and streams
the clip (pre-roll included) over loopback TCP to the receiver, which puts it into the clip
store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from wakeward import features, models, receiver, sim
from wakeward.audio import RATE_HZ, read_wav, write_wav
from wakeward.store import ClipStore

from tests.conftest import require_tools

CHIME_SAMPLES = 1920  # the chime: 120 ms (firmware/chime.py)


def speech_wav(tmp: Path, texts: list[str]) -> Path:
    require_tools("espeak-ng", "sox")
    from wakeward import tts

    rng = np.random.default_rng(8)
    parts = []
    for i, text in enumerate(texts):
        parts.append(rng.normal(0, 30, RATE_HZ).astype(np.int16))
        voice = tts.espeak(text, tmp / f"t{i}.wav", voice="en-us", rate_wpm=150)
        parts.append((voice.astype(np.float64) * 0.5).astype(np.int16))
    parts.append(rng.normal(0, 30, RATE_HZ).astype(np.int16))
    return write_wav(tmp / "speech.wav", np.concatenate(parts))


def run_loop(
    wav: Path, out: Path, button_ms=(), events: Path | None = None
) -> tuple[receiver.Receiver, list[str]]:
    lines: list[str] = []
    port, thread, result = receiver.serve_in_background(out, lines.append)
    sim.run_sim(
        wav,
        model_names=["alexa"],
        link_tcp=f"127.0.0.1:{port}",
        heap="esp32s3-psram",
        button_ms=button_ms,
        events=events,
        say=lines.append,
    )
    thread.join(30)
    assert result, "the receiver did not finish"
    return result[0], lines


def alexa_peak(samples: np.ndarray) -> int:
    """The reference pipeline's highest alexa output over a clip."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(models.resolve("alexa").read_bytes())
    peak = 0
    for chunk in features.model_inputs(features.reference_features(samples)):
        it.set_input(chunk, 0)
        it.invoke()
        peak = max(peak, int(it.get_output(0).reshape(-1)[0]))
    return peak


def test_two_wake_words_give_two_clips_with_pre_roll(tmp_path):
    wav = speech_wav(
        tmp_path,
        ["Alexa, what time is it?", "The kettle is on.", "Alexa, turn off the lights."],
    )
    rec, lines = run_loop(wav, tmp_path / "clips")
    detections = [line for line in lines if line.startswith("detected: alexa at ")]
    assert len(detections) == 2, lines
    assert len(rec.clips) == 2, lines
    # the receiver heard of each detection as it happened, at the device's time for it
    told = [line for line in lines if line.startswith("detection on sim: alexa")]
    assert len(told) == 2, lines
    for note, line in zip(told, detections, strict=True):
        assert note.split()[-4] == f"{float(line.split()[-2]):.2f}"
    audio = read_wav(wav)
    with ClipStore(tmp_path / "clips", create=False) as s:
        assert s.clips() == rec.clips  # what the receiver stored is in the store, as it said
    for stored, line in zip(rec.clips, detections, strict=True):
        clip = read_wav(stored.path)
        assert stored.pre_roll_ms == 1000 and stored.samples == len(clip)
        assert (stored.device, stored.model, stored.end_reason) == ("sim", "alexa", "end_of_speech")
        # the clip is a stretch of the input, bit-exact, starting a second before the detection
        detected_at = float(line.split()[-2])
        start = int(round((detected_at - 1.0) * RATE_HZ))
        assert np.array_equal(clip, audio[start : start + len(clip)])
        assert alexa_peak(clip) >= int(0.9 * 255)  # the wake word is in it


def test_a_chime_plays_on_each_detection_and_mute_stops_listening(tmp_path):
    wav = speech_wav(
        tmp_path,
        ["Alexa, what time is it?", "The kettle is on.", "Alexa, turn off the lights."],
    )
    events = tmp_path / "events.jsonl"
    rec, lines = run_loop(wav, tmp_path / "clips", events=events)
    log = [json.loads(x) for x in events.read_text().splitlines()]
    detected_ms = [round(float(x.split()[-2]) * 1000) for x in lines if x.startswith("detected:")]
    assert [e["t_ms"] for e in log if e["dev"] == "speaker"] == detected_ms
    assert len(detected_ms) == 2
    # press the mute button after the first clip: no second detection, clip or chime
    press_ms = detected_ms[0] + 2500
    rec, lines = run_loop(
        wav, tmp_path / "clips2", button_ms=[(press_ms, press_ms + 100)], events=events
    )
    log = [json.loads(x) for x in events.read_text().splitlines()]
    assert len(rec.clips) == 1
    assert len([e for e in log if e["dev"] == "speaker"]) == 1
    assert {"t_ms": press_ms, "dev": "led", "value": 0} in log
    assert "muted" in lines


def test_no_wake_word_sends_no_audio(tmp_path):
    wav = speech_wav(tmp_path, ["The kettle is on.", "I like my coffee hot."])
    rec, lines = run_loop(wav, tmp_path / "clips")
    assert rec.clips == [] and rec.audio_bytes == 0
    assert any(line.startswith("hello from") for line in lines)  # the link was up all along


@pytest.mark.parametrize("spec", ["nohost", "host:port"])
def test_a_bad_link_address_is_a_clear_error(tmp_path, spec):
    wav = write_wav(tmp_path / "s.wav", np.zeros(RATE_HZ, np.int16))
    with pytest.raises(Exception, match="link"):
        sim.run_sim(wav, link_tcp=spec, say=lambda line: None)


def test_the_speaker_wav_holds_the_chime_at_each_detection_and_silence_elsewhere(tmp_path):
    wav = speech_wav(
        tmp_path,
        ["Alexa, what time is it?", "The kettle is on.", "Alexa, turn off the lights."],
    )
    out, lines = tmp_path / "speaker.wav", []
    sim.run_sim(wav, model_names=["alexa"], heap="esp32s3-psram", speaker_wav=out, say=lines.append)
    played = read_wav(out)
    assert len(played) == len(read_wav(wav))  # on the input's clock
    starts = [round(float(x.split()[-2]) * RATE_HZ) for x in lines if x.startswith("detected:")]
    assert len(starts) == 2
    chime = played[starts[0] : starts[0] + CHIME_SAMPLES]
    assert np.count_nonzero(chime) > CHIME_SAMPLES // 2
    assert np.array_equal(played[starts[1] : starts[1] + CHIME_SAMPLES], chime)
    rest = played.copy()
    for start in starts:
        rest[start : start + CHIME_SAMPLES] = 0
    assert not rest.any()
    said = f"the speaker's output ({np.count_nonzero(played) / RATE_HZ:.2f} s not silent) is in"
    assert f"{said} {out}" in lines
