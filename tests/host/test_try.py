"""`wakeward try`: a model on the PC (LiteRT) over WAV files and the microphone, against
TFLite Micro (the device's numbers) and the device's detection rule."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from wakeward import cli, detector, features, hostmodel, models
from wakeward.audio import RATE_HZ, read_wav, write_wav

from tests.conftest import require_tools, write_test_wav

# LiteRT's optimized (XNNPACK) kernels against TFLite Micro: up to 14 uint8 steps measured
# over 5,000 invocations of espeak-ng speech on each pymicro-wakeword model; the bound
# leaves room for other CPUs' code paths.
OPTIMIZED_MAX_STEPS = 20


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> dict[str, Path]:
    """'alexa': the wake word said twice among other speech; 'other': no wake word."""
    require_tools("espeak-ng", "sox")
    from wakeward import tts

    tmp = tmp_path_factory.mktemp("try")
    quiet = np.zeros(RATE_HZ // 2, np.int16)

    def spoken(name: str, texts: list[str]) -> Path:
        parts = []
        for i, text in enumerate(texts):
            parts += [quiet, tts.espeak(text, tmp / f"{name}{i}.wav", voice="en-us")]
        return write_wav(tmp / f"{name}.wav", np.concatenate([*parts, quiet]))

    return {
        "alexa": spoken("alexa", ["Alexa, what time is it?", "I like my coffee hot."]),
        "other": spoken("other", ["I like my coffee hot.", "The weather is nice today."]),
    }


def tflm_outputs(model: Path, samples: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model.read_bytes())
    out = []
    for chunk in features.model_inputs(features.reference_features(samples)):
        it.set_input(chunk, 0)
        it.invoke()
        out.append(int(it.get_output(0).reshape(-1)[0]))
    return np.array(out, np.int64)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    said = capsys.readouterr()
    return code, said.out, said.err


def test_try_reports_the_wake_word_in_a_wav(wavs, capsys):
    code, out, err = run(capsys, "try", "alexa", str(wavs["alexa"]))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("model alexa (") and "cutoff 0.9 (uint8 229), window 5" in lines[0]
    hits = [line for line in lines if line.startswith("detected: alexa at ")]
    assert len(hits) == 1
    # the time and count the device's rule gives over TFLite Micro's outputs
    reference = tflm_outputs(models.resolve("alexa"), read_wav(wavs["alexa"]))
    (k,) = detector.detections(reference, 229, 5)
    assert hits[0].startswith(f"detected: alexa at {0.05 + 0.03 * k:.2f} s (output ")
    assert k * 0.03 < 2.0  # in the first sentence, where "Alexa" is said
    seconds = len(read_wav(wavs["alexa"])) / RATE_HZ
    assert lines[-1] == f"{wavs['alexa']}: 1 detection in {seconds:.2f} s of audio"


def test_try_is_quiet_without_the_wake_word(wavs, capsys):
    code, out, err = run(capsys, "try", "alexa", str(wavs["other"]))
    assert code == 0, err
    assert "detected:" not in out
    assert out.splitlines()[-1].startswith(f"{wavs['other']}: 0 detections in ")


@pytest.mark.parametrize("optimized", [False, True], ids=["reference", "optimized"])
def test_litert_outputs_against_tflite_micro(wavs, optimized):
    """Reference kernels: TFLite Micro's outputs to the bit. Optimized: within a few steps,
    and the same detections on this clip."""
    samples = read_wav(wavs["alexa"])
    spec = hostmodel.model_spec("alexa")
    listener = hostmodel.Listener(spec, optimized=optimized)
    listener.feed(samples)
    ours = np.array(listener.outputs, np.int64)
    reference = tflm_outputs(spec.path, samples)
    assert len(ours) == len(reference) > 100
    assert reference.max() > spec.cutoff_u8  # the clip does reach the cutoff
    steps = np.abs(ours - reference)
    if optimized:
        assert steps.max() <= OPTIMIZED_MAX_STEPS
    else:
        assert steps.max() == 0
    found = [d.t for d in listener.detections]
    expected = detector.detections(reference, spec.cutoff_u8, spec.window)
    assert found == [hostmodel.invocation_time_s(int(k)) for k in expected]


def test_streaming_features_equal_those_of_the_whole_recording(wavs):
    samples = read_wav(wavs["alexa"])
    stream = features.StreamingFeatures()
    rng = np.random.default_rng(3)
    got = []
    at = 0
    while at < len(samples):
        n = int(rng.integers(1, 900))
        got.append(stream.feed(samples[at : at + n]))
        at += n
    assert np.array_equal(np.concatenate(got), features.reference_features(samples))


def test_the_model_state_carries_across_invocations(wavs):
    """The streaming models keep state in resource variables: an invocation's output
    depends on the ones before it, and a new model starts from the initial state."""
    path = models.resolve("alexa")
    inputs = features.model_inputs(features.reference_features(read_wav(wavs["alexa"])))
    model = hostmodel.HostModel(path)
    streamed = [model.invoke(chunk) for chunk in inputs]
    alone = [hostmodel.HostModel(path).invoke(chunk) for chunk in inputs[::10]]
    assert streamed[::10] != alone
    assert max(streamed) > 229 > max(alone)  # the word is heard only across invocations
    again = hostmodel.HostModel(path)
    assert [again.invoke(chunk) for chunk in inputs] == streamed


def test_a_model_folder_and_a_model_without_manifest(wavs, tmp_path, capsys):
    folder = tmp_path / "models" / "mine"
    folder.mkdir(parents=True)
    shutil.copy(models.resolve("alexa"), folder / "mine.tflite")
    shutil.copy(models.resolve("alexa").with_suffix(".json"), folder / "mine.json")
    code, out, err = run(capsys, "try", str(folder), str(wavs["alexa"]))
    assert code == 0, err
    assert "detected: mine at " in out
    bare = tmp_path / "bare.tflite"
    shutil.copy(models.resolve("alexa"), bare)
    code, out, err = run(capsys, "try", str(bare), str(wavs["alexa"]))
    assert code == 1
    manifest = tmp_path / "bare.json"
    assert err.strip() == f"wakeward: {manifest}: no manifest; give the model's --cutoff"
    code, out, err = run(
        capsys, "try", str(bare), str(wavs["alexa"]), "--cutoff", "0.5", "--window", "3"
    )
    assert code == 0, err
    assert "cutoff 0.5 (uint8 127), window 3" in out and "detected: bare at " in out
    code, out, err = run(capsys, "try", str(tmp_path / "models"), str(wavs["alexa"]))
    assert code == 1 and "no models.tflite in the folder" in err


def test_bad_wavs_are_named(wavs, tmp_path, capsys):
    (tmp_path / "text.wav").write_text("not audio")
    code, out, err = run(capsys, "try", "alexa", str(wavs["alexa"]), str(tmp_path / "text.wav"))
    assert code == 1
    assert "detected" not in out  # every file is checked before any runs
    (tmp_path / "text.wav").write_text("not audio")
    code, _, err = run(capsys, "try", "alexa", str(tmp_path / "text.wav"))
    assert code == 1 and f"{tmp_path / 'text.wav'}: not a readable PCM WAV file" in err
    code, _, err = run(capsys, "try", "alexa", str(tmp_path / "gone.wav"))
    assert code == 1 and err.strip() == f"wakeward: {tmp_path / 'gone.wav'}: no such file"


def test_argument_mistakes(capsys):
    for args, message in [
        (["alexa"], "try: give WAV files, or --mic for the PC microphone"),
        (["alexa", "x.wav", "--mic"], "try: give WAV files, or --mic for the PC microphone"),
        (["alexa", "x.wav", "--seconds", "3"], "--seconds goes with --mic"),
        (["alexa", "--mic", "--seconds", "0"], "--seconds 0: must be more than 0"),
        (["alexa", "x.wav", "--cutoff", "1.5"], "probability cutoff 1.5: must be between 0 and 1"),
        (["nope", "x.wav"], "nope: no such model; a model is"),
    ]:
        code, _, err = run(capsys, "try", *args)
        assert code == 1, args
        assert err.startswith(f"wakeward: {message}"), err


def test_try_on_the_microphone(wavs, tmp_path, monkeypatch, capsys):
    raw = tmp_path / "speech.raw"
    raw.write_bytes(read_wav(wavs["alexa"]).astype("<i2").tobytes())
    monkeypatch.setenv("WAKEWARD_MIC_COMMAND", f"cat {shlex.quote(str(raw))}")
    code, out, err = run(capsys, "try", "alexa", "--mic")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1] == f"listening for alexa on the microphone (`cat {raw}`) until Ctrl-C"
    assert len([x for x in lines if x.startswith("detected: alexa at ")]) == 1
    seconds = len(read_wav(wavs["alexa"])) / RATE_HZ
    assert lines[-2:] == [
        "the capture command ended",
        f"microphone: 1 detection in {seconds:.2f} s of audio",
    ]
    # --seconds stops a capture that never ends by itself
    monkeypatch.setenv("WAKEWARD_MIC_COMMAND", "cat /dev/zero")
    code, out, err = run(capsys, "try", "alexa", "--mic", "--seconds", "1.5")
    assert code == 0, err
    assert out.splitlines()[-1] == "microphone: 0 detections in 1.50 s of audio"


def test_a_missing_litert_is_explained(monkeypatch, tmp_path, capsys):
    wav = write_wav(tmp_path / "quiet.wav", np.zeros(RATE_HZ, np.int16))
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    code, _, err = run(capsys, "try", "alexa", str(wav))
    assert code == 1
    assert "needs ai-edge-litert" in err and "pip install" in err


def test_ctrl_c_stops_the_microphone_cleanly(tmp_path):
    """Ctrl-C (SIGINT to wakeward) ends a live run with its summary, exit status 0, and the
    capture command's whole process group stopped."""
    pid_file = tmp_path / "capture.pid"
    env = {
        **os.environ,
        "WAKEWARD_MIC_COMMAND": f"echo $$ > {pid_file}; exec cat /dev/zero",
    }
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "wakeward", "try", "alexa", "--mic"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # the model
        assert proc.stdout.readline().startswith("listening for alexa on the microphone")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "stopped (Ctrl-C)"
    assert lines[1].startswith("microphone: 0 detections in ")
    with pytest.raises(ProcessLookupError):
        os.killpg(int(pid_file.read_text()), 0)


def test_try_converts_a_wav_in_another_format(wavs, tmp_path, capsys):
    import soxr
    from wakeward.audio import read_wav

    x = read_wav(wavs["alexa"]).astype(np.float32) / 32768
    y = soxr.resample(x, RATE_HZ, 22_050)
    path = tmp_path / "alexa22k.wav"
    write_test_wav(path, np.round(y * 32767).astype(np.int16), rate_hz=22_050)
    code, out, err = run(capsys, "try", "alexa", str(path))
    assert code == 0, err
    assert err.splitlines() == [f"{path}: 22050 Hz mono 16-bit, converted to 16 kHz mono 16-bit"]
    assert "alexa" in out


def test_a_listener_that_keeps_no_outputs_finds_the_same_detections(wavs):
    """A service's stream never ends: its listener keeps no output list, and still counts
    invocations (the detections' times) exactly."""
    samples = read_wav(wavs["alexa"])
    spec = hostmodel.model_spec("alexa")
    kept, lean = hostmodel.Listener(spec), hostmodel.Listener(spec, keep_outputs=False)
    for piece in np.array_split(samples, 7):
        kept.feed(piece)
        lean.feed(piece)
    assert lean.outputs == [] and lean.invocations == kept.invocations == len(kept.outputs)
    assert lean.detections == kept.detections and kept.detections
