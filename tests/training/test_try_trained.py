"""`wakeward try` on a model folder written by `wakeward train`: it loads with its manifest,
and LiteRT's reference kernels give TFLite Micro's outputs on it too (the trainer's
models carry their state in resource variables, as the microWakeWord ones do).

Skipped where TensorFlow (the optional `train` extra) is not installed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from wakeward import cli, features, hostmodel
from wakeward.audio import read_wav, write_wav
from wakeward_train import backend

if not backend.available():
    pytest.skip(
        "needs TensorFlow, the optional `train` extra: make venv-train "
        "(pip install -c constraints.txt -e '.[train]')",
        allow_module_level=True,
    )

from wakeward_train import dataset, pipeline  # noqa: E402

from tests.conftest import require_tools  # noqa: E402
from tests.training.conftest import WORDS  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def test_try_runs_a_trained_model_folder(tmp_path, capsys):
    require_tools("espeak-ng")
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    config = dataset.DataConfig(
        phrase="hey jarvis", positives=20, negatives=20, seed=5, engines=("espeak-ng",),
        words=words, save_audio=True,
    )  # fmt: skip
    dataset.build(config, tmp_path / "data")
    out = tmp_path / "models" / "hey_jarvis_try"
    opts = pipeline.Options(
        phrase="hey jarvis", out=out, data=tmp_path / "data", quick=True,
        calibration_chunks=500, check_invocations=50,
    )  # fmt: skip
    assert pipeline.run(opts, say=lambda _: None) == 0
    capsys.readouterr()
    saved = sorted((tmp_path / "data" / "audio").glob("*.wav"))[:20]
    audio = np.concatenate([read_wav(p) for p in saved])
    wav = write_wav(tmp_path / "clips.wav", audio)

    spec = hostmodel.model_spec(out)
    micro = json.loads((out / "hey_jarvis_try.json").read_text())["micro"]
    assert (spec.probability_cutoff, spec.window) == (
        micro["probability_cutoff"], micro["sliding_window_size"]
    )  # fmt: skip
    listener = hostmodel.Listener(spec)
    listener.feed(audio)
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(spec.path.read_bytes())
    reference = []
    for chunk in features.model_inputs(features.reference_features(audio)):
        it.set_input(chunk, 0)
        it.invoke()
        reference.append(int(it.get_output(0).reshape(-1)[0]))
    assert listener.outputs == reference
    assert len(set(reference)) > 10  # the outputs move: this compares something

    assert cli.main(["try", str(out), str(wav)]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"model hey_jarvis_try ({out / 'hey_jarvis_try.tflite'}): cutoff ")
    assert f"{wav}: " in said.splitlines()[-1]
