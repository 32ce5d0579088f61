"""`wakeward train` as it runs: TensorFlow's own log lines kept off the terminal unless
--verbose, an estimate first and the time of each stage, the dataset in the user cache
folder (not ./build of wherever the command ran), counts in good English."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from wakeward_train import backend, evaluate, folds, pipeline

WAKEWARD = str(Path(sys.executable).parent / "wakeward")  # the entry point pip installed
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796650482.858067   17782 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results due to floating-point round-off "
    "errors from different computation orders. To turn them off, set the environment "
    "variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "W0000 00:00:1796650490.1   17782 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.",
    "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, "
    "output_inference_type: UINT8",
]
KEPT = ["a line TensorFlow's noise does not look like", "E0000 00:00:1.5 17782 x.cc:1] an error"]
WRITER = """
import os, sys
from wakeward_train import backend
with backend.quiet(verbose=sys.argv[1] == "verbose"):
    for line in sys.argv[2:]:
        os.write(2, (line + "\\n").encode())  # as C++ writes: below Python's sys.stderr
    print("from Python", file=sys.stderr)
print("after", file=sys.stderr)
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflows_native_noise_is_left_out_unless_verbose(verbose):
    lines = [NOISE[0], KEPT[0], NOISE[1], NOISE[2], KEPT[1], NOISE[3]]
    done = subprocess.run(
        [sys.executable, "-c", WRITER, "verbose" if verbose else "quiet", *lines],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    expected = lines if verbose else KEPT
    assert done.stderr.splitlines() == [*expected, "from Python", "after"]


def test_the_estimate_scales_from_the_measured_runs():
    opts = pipeline.Options(phrase="alexa", out=Path("m"))
    assert pipeline.estimate(opts, reuse_data=False) == (
        "about 22 min (data 4 min, training 16 min, evaluation 2 min; from runs measured "
        "alone on a 2-core PC)"
    )
    assert pipeline.estimate(opts, reuse_data=True).startswith(
        "about 18 min (data 0 s (reused), training 16 min"
    )
    quick = pipeline.Options(phrase="alexa", out=Path("m"), quick=True)
    assert pipeline.estimate(quick, reuse_data=False) == (
        "about 35 s (--quick, measured alone on a 2-core PC)"
    )


def test_the_default_dataset_is_in_the_user_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path / "..")
    full = pipeline.Options(phrase="alexa", out=Path("models/alexa"))
    quick = pipeline.Options(phrase="alexa", out=Path("elsewhere/alexa"), quick=True)
    assert pipeline.default_data_dir(full, "alexa") == (
        tmp_path / "cache" / "wakeward" / "train" / "alexa" / "data-4000-6000-seed0"
    )
    # a --quick run's dataset is never taken for a full run's
    assert pipeline.default_data_dir(quick, "alexa").name == "data-40-60-seed0"


def test_counts_are_in_good_english():
    row = folds.EngineRow("flite", clips=1, missed=1, speakers=1, heldout_engine=False)
    assert evaluate.engine_lines([row])[1] == (
        "evaluate:   flite: FRR 100.0% (1/1 missed, 1 speaker) held-out voices of a trained engine"
    )


def test_train_help_says_verbose_and_where_the_dataset_goes():
    done = subprocess.run(
        [WAKEWARD, "train", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    said = " ".join(done.stdout.split())
    assert "--verbose show TensorFlow's own log lines" in said
    unwrapped = "".join(done.stdout.split())  # argparse may wrap the path at a hyphen
    assert "~/.cache/wakeward/train/NAME/data-POSITIVES-NEGATIVES-seedSEED" in unwrapped


@pytest.mark.slow
@pytest.mark.skipif(not backend.available(), reason="TensorFlow (the train extra) is missing")
def test_a_quick_run_says_its_estimate_and_stage_times_and_nothing_of_tensorflows(tmp_path):
    done = subprocess.run(
        [WAKEWARD, "train", "hey test", "--out", "m/hey_test", "--data", "d", "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no absl, oneDNN or converter lines
    lines = done.stdout.splitlines()
    assert lines[0] == "train: expect about 35 s (--quick, measured alone on a 2-core PC)"
    for stage in ("data", "train", "export", "evaluate", "check"):
        assert [x for x in lines if x.startswith(f"{stage}: took ") and " so far)" in x], stage
    assert not [x for x in lines if "/" in x and "min" in x and "unique" in x]  # "0.8/0.9 min"
    assert (tmp_path / "m" / "hey_test" / "hey_test.tflite").is_file()
