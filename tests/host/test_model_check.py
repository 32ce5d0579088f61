"""`wakeward model check` as a user runs it: good runs, and clear errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def wakeward(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "wakeward", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_check_saves_outputs_and_reports(tmp_path):
    inputs = np.random.default_rng(1).integers(-128, 128, (30, 1, 3, 40)).astype(np.int8)
    np.save(tmp_path / "in.npy", inputs)
    done = wakeward(
        "model",
        "check",
        "hey_jarvis",  # default heap: the PSRAM board's
        "--inputs",
        "in.npy",
        "--save-outputs",
        "out.npy",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bit-exact: yes, 30 invocations" in done.stdout
    assert "FULLY_CONNECTED x1" in done.stdout
    assert "manifest tensor_arena_size" in done.stdout
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (30, 1) and out.dtype == np.uint8


def test_inputs_of_the_wrong_dtype_are_refused(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((5, 120), np.float32))
    done = wakeward("model", "check", "alexa", "--inputs", "in.npy", cwd=tmp_path)
    assert done.returncode == 1
    assert "wakeward: in.npy: dtype float32, the model's input is int8" in done.stderr


def test_inputs_of_the_wrong_size_are_refused(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((5, 7), np.int8))
    done = wakeward("model", "check", "alexa", "--inputs", "in.npy", cwd=tmp_path)
    assert done.returncode == 1
    assert "each invocation needs 120 values" in done.stderr


def test_a_missing_model_is_named(tmp_path):
    done = wakeward("model", "check", "nope.tflite", cwd=tmp_path)
    assert done.returncode == 1
    assert "wakeward: nope.tflite: no such model file" in done.stderr


def test_a_broken_model_gets_the_readers_message(tmp_path):
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    done = wakeward("model", "check", "bad.tflite", "--heap", "esp32s3-psram", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("wakeward: ")
    assert "Traceback" not in done.stderr


def test_a_model_too_big_for_the_no_psram_heap_says_so(tmp_path):
    done = wakeward("model", "check", "okay_nabu", "--heap", "esp32s3", cwd=tmp_path)
    assert done.returncode == 1
    assert "does not fit in memory" in done.stderr or "not enough memory" in done.stderr
    assert "try --heap esp32s3-psram" in done.stderr
    assert "Traceback" not in done.stderr


def alexa_with_input_shape(path, shape) -> None:
    """alexa with its input tensor's shape replaced (a damaged or hostile model file)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    from wakeward import models

    raw = models.resolve("alexa").read_bytes()
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(raw, 0))
    sg = m.subgraphs[0]
    sg.tensors[sg.inputs[0]].shape = list(shape)
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))


def test_an_input_shape_too_big_for_any_heap_is_refused_before_making_inputs(tmp_path):
    for name, shape, message in [
        ("huge.tflite", [2**31 - 1, 2**31 - 1, 40], "input shape [2147483647, 2147483647, 40] "
         "is 184,467,440,565,296,824,360 bytes per invocation, more than the whole "
         "esp32s3-psram heap (8,000,000 bytes)"),
        ("empty.tflite", [1, 0, 40], "input shape [1, 0, 40] holds no values"),
    ]:  # fmt: skip
        alexa_with_input_shape(tmp_path / name, shape)
        done = wakeward("model", "check", name, "--heap", "esp32s3-psram", cwd=tmp_path)
        assert done.returncode == 1, done.stdout
        assert done.stderr.strip() == f"wakeward: {name}: {message}"


def test_a_corrupted_tensor_name_gets_the_readers_message(tmp_path):
    from wakeward import models

    raw = bytearray(models.resolve("alexa").read_bytes())
    name = b"serving_default_input_audio:0"
    at = raw.find(name)
    damaged = {
        "notutf8.tflite": (at, b"\xff\xfe\x80", "tensor name at offset"),
        "pastend.tflite": (at - 4, (2**32 - 1).to_bytes(4, "little"), "runs past the end"),
    }
    for file, (where, data, message) in damaged.items():
        bad = bytearray(raw)
        bad[where : where + len(data)] = data
        (tmp_path / file).write_bytes(bytes(bad))
        done = wakeward("model", "check", file, "--heap", "esp32s3-psram", cwd=tmp_path)
        assert done.returncode == 1, done.stdout
        assert done.stderr.startswith("wakeward: ") and message in done.stderr
        assert "Traceback" not in done.stderr


def test_the_features_file_goes_straight_into_model_check(tmp_path):
    """The README's pair: `features --out F.npy` (frames x 40) is what `model check
    --inputs` takes, three frames to an invocation as the device groups them (the frames
    left over at the end are said and dropped)."""
    from wakeward.audio import RATE_HZ, write_wav

    noise = np.random.default_rng(2).normal(0, 2000, RATE_HZ).astype(np.int16)
    write_wav(tmp_path / "speech.wav", noise)  # 1 s: 98 frames, 32 invocations and 2 over
    done = wakeward("features", "speech.wav", "--out", "frames.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = wakeward(
        "model", "check", "alexa", "--inputs", "frames.npy", "--save-outputs", "out.npy",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "frames.npy: 98 frames of features, 3 to an invocation: 32 invocations" in done.stdout
    assert "(the last 2 frames are dropped)" in done.stdout
    assert "bit-exact: yes, 32 invocations" in done.stdout
    assert np.load(tmp_path / "out.npy").shape == (32, 1)


def test_a_features_file_too_short_for_one_invocation_is_refused(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((2, 40), np.int8))
    done = wakeward("model", "check", "alexa", "--inputs", "in.npy", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "wakeward: in.npy: 2 frames of features, fewer than the 3 the model takes at once; "
        "make features of a longer WAV (`wakeward features AUDIO.wav --out in.npy`)"
    )
