"""The model stage with TensorFlow: one model, two graphs that agree; a tiny training run that
is reproducible; its int8 streaming export, checked bit-exact on the device interpreter.

Skipped where TensorFlow (the optional `train` extra) is not installed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from wakeward.errors import WakewardError
from wakeward_train import backend

if not backend.available():
    pytest.skip(
        "needs TensorFlow, the optional `train` extra: make venv-train "
        "(pip install -c constraints.txt -e '.[train]')",
        allow_module_level=True,
    )

from wakeward_train import dataset, evaluate, export, model, pipeline, streams, train  # noqa: E402

from tests.conftest import require_tools  # noqa: E402
from tests.training.conftest import WORDS  # noqa: E402

# Keras' own model.save converts TensorFlow tensors with np.array (numpy 2 warns)
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
SMALL = model.ModelConfig(first_filters=6, blocks=((3, 8), (5, 8)), head_steps=3)


def randomised(net: model.Net, seed: int) -> None:
    """Weights far from their initial values, so outputs span 0..1 (BN statistics too)."""
    rng = np.random.default_rng(seed)
    for v in net.nonstreaming().weights:
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype("float32"))
        else:
            v.assign(rng.normal(0, 0.4, v.shape).astype("float32"))


@pytest.mark.parametrize("first_kernel", [3, 4, 5, 6])
def test_streaming_equals_nonstreaming_once_the_receptive_field_is_full(first_kernel):
    cfg = replace(SMALL, first_kernel=first_kernel)
    net = model.Net(cfg)
    randomised(net, first_kernel)
    features = np.random.default_rng(1).integers(-128, 128, (3 * 40, 40)).astype(np.int8)
    streamed = model.run_streaming(net.streaming(), features)
    whole = model.run_nonstreaming(net.nonstreaming(), features, cfg)
    first = cfg.warmup_steps
    n = len(streamed) - first
    assert len(whole) >= n > 5
    assert np.max(np.abs(streamed[first:] - whole[:n])) < 1e-5
    assert np.ptp(whole) > 0.1  # the comparison covers a real range of outputs


def test_the_default_model_is_small_and_its_graphs_agree():
    cfg = model.ModelConfig()
    net = model.Net(cfg)
    assert net.count_params() < 16_000
    randomised(net, 0)
    features = np.random.default_rng(2).integers(-128, 128, (3 * 60, 40)).astype(np.int8)
    streamed = model.run_streaming(net.streaming(), features)
    whole = model.run_nonstreaming(net.nonstreaming(), features, cfg)
    n = len(streamed) - cfg.warmup_steps
    assert np.max(np.abs(streamed[cfg.warmup_steps :] - whole[:n])) < 1e-5


def test_a_missing_tensorflow_is_explained(monkeypatch):
    monkeypatch.setattr(backend, "_loaded", None)
    monkeypatch.setattr(backend, "available", lambda: False)
    with pytest.raises(WakewardError, match=r"pip install -c constraints.txt -e '.\[train\]'"):
        backend.require()


# -- a tiny dataset, trained and exported ------------------------------------------------


def small_dataset(tmp: Path, engines: tuple[str, ...], **sizes: int) -> dataset.Dataset:
    """A small "hey jarvis" dataset spoken by `engines` (which must be installed)."""
    require_tools(*engines)
    words = tmp / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    config = dataset.DataConfig(phrase="hey jarvis", engines=engines, words=words, **sizes)
    dataset.build(config, tmp / "data")
    return dataset.open_dataset(tmp / "data")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> dataset.Dataset:
    tmp = tmp_path_factory.mktemp("tiny")
    return small_dataset(tmp, ("espeak-ng",), positives=30, negatives=40, seed=5)


def test_training_is_reproducible(tiny_data):
    cfg = replace(train.QUICK, epochs=1, seed=3)
    a = train.train(tiny_data, cfg, say=lambda s: None)
    b = train.train(tiny_data, cfg, say=lambda s: None)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        assert np.array_equal(wa, wb)
    c = train.train(tiny_data, replace(cfg, seed=4), say=lambda s: None)
    assert any(
        not np.array_equal(wa, wc)
        for wa, wc in zip(a.model.get_weights(), c.model.get_weights(), strict=True)
    )


@pytest.fixture(scope="module")
def one_epoch(tiny_data) -> train.TrainResult:
    return train.train(tiny_data, replace(train.QUICK, epochs=1), say=lambda s: None)


def test_calibration_needs_the_extreme_feature_values(tiny_data, one_epoch):
    """Without features 0 and 26 in the representative data the input scale is not the
    reference models': the export's inspection refuses it."""
    result = one_epoch
    chunks, _ = export.calibration_chunks(tiny_data, 300, seed=0)
    assert (chunks == -128).any() and (chunks == 127).any()
    narrow = np.clip(chunks, -100, 100)
    facts = export.inspect(export.convert(result.net, narrow))
    assert any("input quantization" in p for p in facts.problems)
    good = export.inspect(export.convert(result.net, chunks))
    assert good.problems == []
    assert good.input_zero_point == -128
    assert np.float32(good.input_scale) == model.INPUT_SCALE


def test_quick_train_exports_a_bit_exact_model_with_a_v2_manifest(tiny_data, tmp_path, capsys):
    out = tmp_path / "models" / "hey_jarvis_test"
    opts = pipeline.Options(
        phrase="hey jarvis",
        out=out,
        data=tiny_data.path,
        quick=True,
        calibration_chunks=1000,
        check_invocations=150,
    )
    assert pipeline.run(opts) == 0
    said = capsys.readouterr().out
    assert "check: bit-exact: yes, 150 invocations" in said
    tflite = out / "hey_jarvis_test.tflite"
    assert sorted(p.name for p in out.iterdir()) == [
        f"hey_jarvis_test{s}" for s in (".det.png", ".json", ".keras", ".tflite", ".wakeward.json")
    ]
    manifest = json.loads((out / "hey_jarvis_test.json").read_text())
    # exactly ESPHome's MANIFEST_SCHEMA_V2 keys (it refuses others; website is optional)
    assert set(manifest) == {
        "type",
        "wake_word",
        "author",
        "model",
        "trained_languages",
        "version",
        "micro",
    }
    assert manifest["type"] == "micro" and manifest["version"] == 2
    assert manifest["model"] == tflite.name and manifest["wake_word"] == "Hey Jarvis"
    micro = manifest["micro"]
    assert set(micro) == {
        "probability_cutoff",
        "sliding_window_size",
        "feature_step_size",
        "tensor_arena_size",
        "minimum_esphome_version",
    }
    assert micro["feature_step_size"] == 10
    ours = json.loads((out / "hey_jarvis_test.wakeward.json").read_text())
    facts = ours["export"]
    assert micro["tensor_arena_size"] > facts["tflm_arena_bytes_64bit"]
    assert set(facts["ops"]) <= export.SUPPORTED_OPS and "DEQUANTIZE" not in facts["ops"]
    assert set(facts["tensor_types"]) <= {"INT8", "UINT8", "INT32", "RESOURCE"}
    assert facts["input"] == {
        "shape": [1, 3, 40],
        "type": "INT8",
        "scale": facts["input"]["scale"],
        "zero_point": -128,
    }
    assert np.float32(facts["input"]["scale"]) == model.INPUT_SCALE
    assert facts["output"]["type"] == "UINT8" and facts["output"]["shape"] == [1, 1]
    assert facts["agreement"]["logit_rms"] <= export.AGREEMENT_LOGIT_RMS_LIMIT
    assert facts["agreement"]["max_abs_diff"] <= export.AGREEMENT_MAX_LIMIT
    assert ours["device_check"]["bit_exact"] is True
    assert ours["data"]["counts"]["train"]["positive/tts"] > 0
    # the cutoff and window come from the evaluation stage: FA/h on the negative streams
    ev = ours["evaluation"]
    assert (micro["probability_cutoff"], micro["sliding_window_size"]) == (
        ev["probability_cutoff"],
        ev["sliding_window_size"],
    )
    assert int(micro["probability_cutoff"] * 255) == ev["cutoff_u8"]
    assert ev["sliding_window_size"] in evaluate.WINDOWS
    assert ev["negative_hours"] == streams.QUICK_HOURS == ev["negative_streams"]["hours"]
    assert ev["false_accepts_per_hour"] == round(ev["false_accepts"] / streams.QUICK_HOURS, 4)
    assert ev["target_fa_per_hour"] == 0.5 and isinstance(ev["target_met"], bool)
    heldout_positives = [r for r in tiny_data.records if r.split == "heldout" and r.label == 1]
    assert ev["positives"] == len(heldout_positives)
    assert ev["negative_streams"]["unique_speech_minutes"] > 0
    assert set(ev["curve"]["by_window"]) == {str(w) for w in evaluate.WINDOWS}
    assert ev["false_reject_rate"] == round(ev["missed"] / ev["positives"], 4)
    assert ev["det_png"] == "hey_jarvis_test.det.png"
    assert (out / ev["det_png"]).read_bytes()[:4] == b"\x89PNG"
    assert "evaluate: hey_jarvis_test: cutoff " in said and "FA/h (target 0.5/h:" in said

    # and `wakeward model check` on random inputs, as a user would run it
    from wakeward import modelcheck

    report = modelcheck.check(tflite, invocations=100, seed=9)
    assert report.bit_exact, report.lines()
    assert report.manifest_arena_bytes == micro["tensor_arena_size"]


def agreeing(logit_rms: float | None, largest: float, worst: int = 42) -> export.Agreement:
    return export.Agreement(2000, largest, 0.002, 0.05, worst, 150, logit_rms)


def test_the_agreement_check_tells_quantization_noise_from_a_wrong_conversion():
    """Quantization noise of about one logit step passes, however many invocations sit on
    the sigmoid's steep part; other outputs (here: another model's), or one far-off
    output, do not."""
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(-12, 3, 2500), rng.normal(0, 4, 500)])
    p_float = 1 / (1 + np.exp(-logits))
    steps = np.round((logits + rng.normal(0, 0.2, len(logits))) / 0.2) * 0.2  # int8 logit
    p_int8 = np.round(256 / (1 + np.exp(-steps))) / 256
    noisy = export.compare(p_int8, p_float)
    assert noisy.p99_abs_diff > 0.05  # what the old percentile rule refused
    assert noisy.unsure > 200 and noisy.logit_rms is not None and noisy.logit_rms < 0.35
    assert noisy.problems() == []
    other = export.compare(p_int8, rng.permutation(p_float))
    assert other.logit_rms is not None and other.logit_rms > 2
    assert any("logit difference" in p for p in other.problems())
    sure = export.compare(np.zeros(100), np.full(100, 0.001))
    assert sure.unsure == 0 and sure.logit_rms is None and sure.problems() == []
    one_off = p_int8.copy()
    one_off[7] = 1.0 - p_float[7]
    assert any("largest |dp|" in p for p in export.compare(one_off, p_float, 10).problems())


@pytest.mark.parametrize(
    ("logit_rms", "largest", "refused"),
    [(0.3, 0.3, False), (None, 0.3, False), (0.6, 0.1, True), (0.2, 0.5, True)],
)
def test_the_export_refuses_an_int8_model_that_disagrees_with_keras(
    tiny_data, one_epoch, tmp_path, monkeypatch, logit_rms, largest, refused
):
    """The message names the file and what disagreed; a refused model never takes the name
    a user deploys."""
    result = one_epoch
    measured = agreeing(logit_rms, largest)
    monkeypatch.setattr(export, "agreement", lambda *a, **k: measured)
    path = tmp_path / "m.tflite"
    if not refused:
        report = export.export(result.net, result.model, tiny_data, path, chunks=300)
        assert report.agreement == measured
        return
    path.write_bytes(b"an earlier model")
    with pytest.raises(WakewardError, match=f"{path}: the int8 streaming model disagrees") as e:
        export.export(result.net, result.model, tiny_data, path, chunks=300, tries=2)
    assert "after 2 calibration samples" in str(e.value)
    if logit_rms > export.AGREEMENT_LOGIT_RMS_LIMIT:
        assert f"logit difference {logit_rms:.3f} RMS over the 150 invocations" in str(e.value)
    else:
        assert f"largest |dp| {largest:.3f} (limit 0.4) at invocation 42" in str(e.value)
    # never under the name a user deploys: an earlier model there stays, the refused one beside
    assert path.read_bytes() == b"an earlier model"
    refused = tmp_path / "m.refused.tflite"
    assert "m.refused.tflite" in str(e.value) and refused.read_bytes()[4:8] == b"TFL3"


def test_a_disagreeing_conversion_is_made_again_from_another_calibration_sample(
    tiny_data, one_epoch, tmp_path, monkeypatch
):
    """The int8 ranges depend on the calibration sample: the export tries another one (a
    different part of the training audio) before refusing, keeps the closest when all
    disagree, and says which sample the written model came from."""
    result = one_epoch
    seeds: list[int] = []
    real_chunks = export.calibration_chunks

    def chunks(data, count, seed):
        seeds.append(seed)
        return real_chunks(data, count, seed)

    monkeypatch.setattr(export, "calibration_chunks", chunks)
    bad = agreeing(0.8, 0.2, 7)
    worse = agreeing(0.9, 0.3, 8)
    good = agreeing(0.2, 0.05, 9)
    measured = iter([bad, good])
    monkeypatch.setattr(export, "agreement", lambda *a, **k: next(measured))
    said: list[str] = []
    path = tmp_path / "m.tflite"
    report = export.export(
        result.net, result.model, tiny_data, path, seed=4, chunks=300, say=said.append
    )
    assert report.agreement == good and report.calibration_sample == 2
    assert report.to_json()["calibration_sample"] == 2
    assert seeds == [4, 4 + export.CALIBRATION_SEED_STEP]
    assert len(said) == 1 and "calibration sample 1/3" in said[0] and "0.800 RMS" in said[0]
    assert path.read_bytes()[4:8] == b"TFL3"
    assert not (tmp_path / "m.refused.tflite").exists()

    # all disagree: the refused file is the closest try's model, not the last one's
    converted: list[bytes] = []
    real_convert = export.convert

    def convert(net, cal):
        converted.append(real_convert(net, cal))
        return converted[-1]

    monkeypatch.setattr(export, "convert", convert)
    measured = iter([worse, bad, worse])
    with pytest.raises(WakewardError, match="after 3 calibration samples: at best .* 0.800 RMS"):
        export.export(result.net, result.model, tiny_data, tmp_path / "n.tflite", chunks=300)
    assert (tmp_path / "n.refused.tflite").read_bytes() == converted[1]
    assert converted[1] != converted[0] and not (tmp_path / "n.tflite").exists()


def test_a_refused_run_leaves_the_deployed_model_and_its_keras_twin_alone(
    tiny_data, tmp_path, monkeypatch
):
    out = tmp_path / "models" / "hey_jarvis_test"
    out.mkdir(parents=True)
    (out / "hey_jarvis_test.tflite").write_bytes(b"the model in use")
    (out / "hey_jarvis_test.keras").write_bytes(b"its float twin")
    far_off = agreeing(3.0, 0.9, 3)
    monkeypatch.setattr(export, "agreement", lambda *a, **k: far_off)
    opts = pipeline.Options(
        phrase="hey jarvis", out=out, data=tiny_data.path, quick=True, epochs=1,
        calibration_chunks=300,
    )  # fmt: skip
    with pytest.raises(WakewardError, match="after 3 calibration samples"):
        pipeline.run(opts)
    assert (out / "hey_jarvis_test.tflite").read_bytes() == b"the model in use"
    assert (out / "hey_jarvis_test.keras").read_bytes() == b"its float twin"
    assert (out / "hey_jarvis_test.refused.tflite").read_bytes()[4:8] == b"TFL3"
    assert (out / "hey_jarvis_test.refused.keras").stat().st_size > 1000
    assert not (out / "hey_jarvis_test.json").exists()
    assert not (out / "hey_jarvis_test.partial").exists()


def test_a_model_that_is_not_bit_exact_on_the_device_replaces_nothing(
    tiny_data, tmp_path, monkeypatch
):
    from wakeward import modelcheck

    out = tmp_path / "models" / "hey_jarvis_test"
    out.mkdir(parents=True)
    before = {f"hey_jarvis_test{s}": f"in use {s}".encode() for s in (".tflite", ".json")}
    for n, b in before.items():
        (out / n).write_bytes(b)
    real_check = modelcheck.check

    def off_by_one(*a, **k):
        return replace(real_check(*a, **k), bit_exact=False, first_mismatch=(0, 0, 1, 2))

    monkeypatch.setattr(modelcheck, "check", off_by_one)
    opts = pipeline.Options(
        phrase="hey jarvis", out=out, data=tiny_data.path, quick=True, epochs=1,
        calibration_chunks=300, check_invocations=20,
    )  # fmt: skip
    partial = out / "hey_jarvis_test.partial"
    with pytest.raises(WakewardError, match="not bit-exact .* stay in .*hey_jarvis_test.partial"):
        pipeline.run(opts)
    assert {n: (out / n).read_bytes() for n in before} == before
    assert not (out / "hey_jarvis_test.wakeward.json").exists()
    assert (partial / "hey_jarvis_test.tflite").read_bytes()[4:8] == b"TFL3"
    record = json.loads((partial / "hey_jarvis_test.wakeward.json").read_text())
    assert record["device_check"]["bit_exact"] is False

    monkeypatch.setattr(modelcheck, "check", real_check)
    assert pipeline.run(opts) == 0  # a good run installs its files and clears the leftovers
    assert (out / "hey_jarvis_test.tflite").read_bytes()[4:8] == b"TFL3"
    assert json.loads((out / "hey_jarvis_test.json").read_text())["version"] == 2
    assert not partial.exists()


def test_out_must_name_the_model():
    with pytest.raises(WakewardError, match="the folder's name is the model's name"):
        pipeline.model_name(Path("models/hey wakeward"))


def test_hard_negatives_are_the_highest_scoring_stream_windows_of_the_fitting_part():
    length = train.QUICK.model.receptive_frames
    rng = np.random.default_rng(0)
    chunks = [rng.integers(-128, -100, (3000, 40)).astype(np.int8) for _ in range(2)]
    # "alarming" frames: a window ending on one scores by how loud its last frame is
    for i, at, level in [(0, 500, 60), (0, 2000, 90), (1, 1200, 30), (1, 2900, 127)]:
        chunks[i][at] = level

    def fake_model(x, training=False):
        last = x[:, -1, 0]  # the floats the model sees, (q + 128) * 26 / 255
        return (last / 26.0).reshape(-1, 1)

    config = replace(train.QUICK, hard_negatives=2, hard_stride=1, hard_min_p=0.3)
    hard, info = train.hard_negatives(fake_model, chunks, config)
    # frame 2900 of the second stream is in validation's last tenth: never scored; the
    # other three pass p 0.3 ((30 + 128) / 255 = 0.62 is the lowest) and the two highest stay
    assert info["above_min_p"] == 3 and info["kept"] == len(hard) == 2
    assert [int(w[-1, 0]) for w in hard.x] == [90, 60]
    assert hard.x.shape[1] == length and not hard.y.any()
    assert set(hard.kind.tolist()) == {train.HARD}


# -- leave-one-engine-out ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_engine_data(tmp_path_factory) -> dataset.Dataset:
    tmp = tmp_path_factory.mktemp("two")
    return small_dataset(tmp, ("espeak-ng", "flite"), positives=40, negatives=40, seed=6)


def test_engine_folds_train_one_model_per_engine_without_it(two_engine_data, tmp_path, capsys):
    out = tmp_path / "models" / "hj"
    opts = pipeline.Options(
        phrase="hey jarvis", out=out, data=two_engine_data.path, quick=True, epochs=1,
        calibration_chunks=300, check_invocations=20, engine_folds=True,
    )  # fmt: skip
    assert pipeline.run(opts) == 0
    said = capsys.readouterr().out
    final = json.loads((out / "hj.wakeward.json").read_text())
    pooled = final["heldout_engines"]
    positives = {
        e: sum(1 for r in two_engine_data.records if r.label == 1 and r.voice.startswith(e + ":"))
        for e in ("espeak-ng", "flite")
    }
    # each fold is tested on every positive clip of its engine, of both splits
    assert {row["engine"]: row["clips"] for row in pooled["engines"]} == positives
    assert pooled["clips"] == sum(positives.values())
    assert pooled["missed"] == sum(row["missed"] for row in pooled["engines"])
    for engine in positives:
        record = json.loads((out / "hj.folds" / engine / f"{engine}.wakeward.json").read_text())
        assert record["fold"]["heldout_engine"] == engine
        assert engine not in record["trained_engines"] and record["trained_engines"]
        rows = record["evaluation"]["by_engine"]["rows"]
        assert [(r["engine"], r["heldout_engine"]) for r in rows] == [(engine, True)]
        assert record["device_check"]["bit_exact"] is True
        # the fold's training audio has none of the engine's people
        streams_info = record["data"]["training_streams"]
        assert streams_info["without_engine"] == engine
        assert engine not in streams_info["voices_by_engine"] and streams_info["voices_by_engine"]
    assert final["trained_engines"] == ["espeak-ng", "flite"]
    assert "held-out voices" in final["evaluation_scope"]
    assert "train: held-out engines (leave-one-engine-out, 2 folds): FRR" in said
    assert "a --quick run is a smoke test" in said and "target 0.5/h: met)" not in said
    assert [f["reused"] for f in pooled["folds"]] == [False, False]

    # again, the folds moved to --folds DIR: both reused (not trained), judged again
    moved = tmp_path / "folds"
    (out / "hj.folds").rename(moved)
    weights = {e: (moved / e / f"{e}.tflite").read_bytes() for e in positives}
    again = replace(opts, folds_dir=moved, target_fa_per_hour=2.0)
    full = replace(again, quick=False, engines=("espeak-ng", "flite"))
    assert "; 2 folds reused, only evaluated;" in pipeline.estimate(full, reuse_data=True)
    assert pipeline.run(again) == 0
    said = capsys.readouterr().out
    assert said.count(f"reusing the fold in {moved}") == 2
    assert "training without" not in said and not (out / "hj.folds").exists()
    redone = json.loads((out / "hj.wakeward.json").read_text())["heldout_engines"]
    assert [f["reused"] for f in redone["folds"]] == [True, True]
    for engine in positives:
        assert (moved / engine / f"{engine}.tflite").read_bytes() == weights[engine]
        record = json.loads((moved / engine / f"{engine}.wakeward.json").read_text())
        assert record["evaluation"]["target_fa_per_hour"] == 2.0
        assert record["earlier_evaluations"][-1]["probability_cutoff"] is not None
        manifest = json.loads((moved / engine / f"{engine}.json").read_text())
        assert manifest["micro"]["probability_cutoff"] == record["evaluation"]["probability_cutoff"]
    assert redone["clips"] == pooled["clips"]

    # a fold trained otherwise is trained again, and the run says why
    settings = pipeline._fold_settings(again, two_engine_data)
    flite = moved / "flite"
    assert pipeline._trained_fold(flite, "flite", settings)[1] is None
    assert pipeline._trained_fold(flite, "espeak-ng", settings) == (None, None)
    assert pipeline._trained_fold(flite, "flite", {**settings, "seed": 1}) == (
        None,
        "flite.wakeward.json says it was trained with another seed",
    )
    record = json.loads((flite / "flite.wakeward.json").read_text())
    record["training"]["config"]["hard_negatives"] += 1
    (flite / "flite.wakeward.json").write_text(json.dumps(record))
    assert pipeline._trained_fold(flite, "flite", settings)[1] == (
        "flite.wakeward.json says it was trained with another training config"
    )
    (flite / "flite.tflite").unlink()
    assert pipeline._trained_fold(flite, "flite", settings)[1] == (
        "flite.tflite missing beside flite.wakeward.json"
    )
    (flite / "flite.wakeward.json").write_text("{not json")
    why = pipeline._trained_fold(flite, "flite", settings)[1]
    assert why is not None and why.startswith(f"{flite / 'flite.wakeward.json'} is unreadable")


def test_a_dataset_built_with_other_speaker_augmentation_is_not_reused(tiny_data, tmp_path):
    opts = pipeline.Options(
        phrase="hey jarvis", out=tmp_path / "m", data=tiny_data.path, quick=True,
        speaker_augment="none",
    )  # fmt: skip
    with pytest.raises(WakewardError, match="other speaker augmentation than --speaker-augment"):
        pipeline.run(opts)
    assert not (tmp_path / "m").exists()
