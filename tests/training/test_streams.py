"""The evaluation's long negative audio (streams.py, scenes.py) and `wakeward evaluate`:
made only from held-out voices and texts training never said, the same bytes from the same
seed, cached and reused; the positives after their lead-ins; the command on
pymicro-wakeword's alexa over a tiny "alexa" dataset, without TensorFlow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wakeward import features as wf_features
from wakeward import models
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError
from wakeward_train import dataset, evalcmd, realspeech, scenes, streams, talk, voices
from wakeward_train.features import clip_features

from tests.conftest import require_tools
from tests.training.conftest import WORDS

HOURS = 0.01  # 36 s of audio: seconds to build


@pytest.fixture(autouse=True)
def _tts_only(monkeypatch):
    """These tests are about the TTS streams: real recorded speech (realspeech.py, tested in
    test_realspeech.py) is left out, so no corpus is decoded here."""
    monkeypatch.setenv(realspeech.DISABLE_ENV, "0")


@pytest.fixture(scope="module")
def alexa_data(tmp_path_factory) -> dataset.Dataset:
    require_tools("espeak-ng")
    tmp = tmp_path_factory.mktemp("alexa")
    words = tmp / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    config = dataset.DataConfig(
        phrase="alexa", positives=16, negatives=16, seed=4, engines=("espeak-ng",), words=words
    )
    dataset.build(config, tmp / "data")
    return dataset.open_dataset(tmp / "data")


@pytest.fixture(scope="module")
def built(alexa_data) -> streams.EvalStreams:
    return streams.ensure(alexa_data, HOURS)


def test_streams_speak_only_with_held_out_voices_and_new_texts(alexa_data, built):
    speakers = alexa_data.info["summary"]["speakers"]
    pool = streams.pool_records(built)
    assert len(pool) == built.info["utterances"] > 5
    assert {r["speaker"] for r in pool} <= set(speakers["heldout"])
    assert not {r["speaker"] for r in pool} & set(speakers["train"])
    assert streams.check_voices(built, alexa_data) == []
    trained = {r.text for r in alexa_data.records if r.split == "train" and r.text}
    assert not {r["text"] for r in pool} & trained
    assert not any("alexa" in r["text"].lower() for r in pool)
    assert built.unique_speech_minutes >= streams.MIN_UNIQUE_SPEECH_MINUTES
    # the hours asked for, as the device's frames: n // 160 - 2 per continuous stream
    (chunk,) = built.chunks
    assert chunk.dtype == np.int8 and len(chunk) == int(HOURS * 3600 * RATE_HZ) // 160 - 2
    seconds = built.info["composition"]["seconds"]
    assert sum(seconds.values()) == pytest.approx(HOURS * 3600, abs=0.5)  # each to 0.1 s
    assert built.lead_ins.shape == (streams.LEAD_INS, 298, 40)


def test_training_streams_speak_only_with_training_voices_and_training_texts(alexa_data, built):
    trained = streams.ensure(alexa_data, HOURS, split=dataset.TRAIN)
    assert trained.path.parent.name == streams.TRAIN_FOLDER and trained.info["split"] == "train"
    speakers = alexa_data.info["summary"]["speakers"]
    pool = streams.pool_records(trained)
    assert len(pool) > 5
    assert {r["speaker"] for r in pool} <= set(speakers["train"])
    assert not {r["speaker"] for r in pool} & set(speakers["heldout"])
    evaluation = {r["text"] for r in streams.pool_records(built)}
    assert not {r["text"] for r in pool} & evaluation
    assert not any(re.search(r"\balexa\b", r["text"].lower()) for r in pool)
    assert not np.array_equal(trained.chunks[0][:1000], built.chunks[0][:1000])
    # the sentences are mostly talk.py's, seeded like the rest
    assert trained.info["format"] == streams.TRAIN_FORMAT != built.info["format"]
    generated = set(
        talk.sentences(
            streams.GENERATED_SENTENCES,
            streams._rng(trained.info["seed"], "talk", 0, dataset.TRAIN),
        )
    )
    assert {r["text"] for r in pool} & generated
    assert not {r["text"] for r in streams.pool_records(built)} & generated
    # a training stream is never taken for an evaluation stream, nor the other way round
    sha = streams._dataset_sha256(alexa_data)
    seed = trained.info["seed"]
    assert streams.open_streams(trained.path, sha, HOURS, seed, dataset.TRAIN) is not None
    assert streams.open_streams(trained.path, sha, HOURS, seed, dataset.HELDOUT) is None
    assert streams.open_streams(built.path, sha, HOURS, seed, dataset.TRAIN) is None


def test_training_streams_say_when_real_speech_is_left_out(alexa_data):
    trained = streams.ensure(alexa_data, HOURS, split=dataset.TRAIN)
    real = trained.info["real_speech"]
    assert (real["utterances"], real["share"], real["corpus"]) == (0, 0.0, None)
    assert "left out" in real["why_not"]


def test_the_same_seed_gives_the_same_features(alexa_data, built, tmp_path):
    sha = streams._dataset_sha256(alexa_data)
    again = streams.build(alexa_data, HOURS, built.info["seed"], tmp_path / "again", sha)
    assert np.array_equal(again.chunks[0], built.chunks[0])
    assert np.array_equal(again.lead_ins, built.lead_ins)
    other = streams.build(alexa_data, HOURS, built.info["seed"] + 1, tmp_path / "other", sha)
    assert not np.array_equal(other.chunks[0], built.chunks[0])


def test_the_cache_is_reused_and_rebuilt_when_it_does_not_match(alexa_data, built, monkeypatch):
    def no_speech(requests):
        raise AssertionError("synthesised again")

    real = voices.speak_all
    monkeypatch.setattr(voices, "speak_all", no_speech)
    said: list[str] = []
    again = streams.ensure(alexa_data, HOURS, say=said.append)
    assert again.path == built.path and "reusing" in said[0]
    assert np.array_equal(again.chunks[0], built.chunks[0])
    # other hours: another folder, built anew
    with pytest.raises(AssertionError, match="synthesised again"):
        streams.ensure(alexa_data, HOURS / 2)
    # a description that does not match (another dataset) is not trusted
    desc = built.path / streams.DESCRIPTION
    info = json.loads(desc.read_text())
    desc.write_text(json.dumps({**info, "dataset_sha256": "0" * 64}))
    with pytest.raises(AssertionError, match="synthesised again"):
        streams.ensure(alexa_data, HOURS)
    monkeypatch.setattr(voices, "speak_all", real)
    rebuilt = streams.ensure(alexa_data, HOURS)
    assert np.array_equal(rebuilt.chunks[0], built.chunks[0])


def test_features_fed_in_pieces_equal_the_whole_recording():
    pool = [scenes.Utterance(np.zeros(1600, np.int16) + 300, "x:y")]
    audio, comp = scenes.compose(12.0, np.random.default_rng(1), pool, {"noise": 1, "music": 1})
    assert len(audio) == 12 * RATE_HZ and comp.scenes
    front = wf_features.StreamingFeatures()
    cuts = [0, 777, 16000, 16001, 100000, len(audio)]
    parts = [front.feed(audio[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    assert np.array_equal(np.concatenate(parts), clip_features(audio))


def test_every_positive_follows_a_lead_in(alexa_data, built):
    pos = streams.positive_stream(alexa_data, built)
    held = [r for r in alexa_data.records if r.split == "heldout" and r.label == 1]
    assert len(pos.records) == len(held) == len(pos.spans) > 0
    lead = built.lead_ins.shape[1]
    at = 0
    for i, (r, (a, b)) in enumerate(zip(pos.records, pos.spans, strict=True)):
        assert a == at + lead and b - a == r.frames
        assert np.array_equal(pos.frames[at:a], built.lead_ins[i % streams.LEAD_INS])
        assert np.array_equal(pos.frames[a:b], alexa_data.clip(r))
        at = b
    assert at == len(pos.frames)


def test_wakeward_evaluate_alexa_prints_its_figures_without_tensorflow(alexa_data, built, tmp_path):
    det, out = tmp_path / "alexa.det.png", tmp_path / "alexa.json"
    args = ["evaluate", "--model", "alexa", "--data", str(alexa_data.path)]
    args += ["--eval-hours", str(HOURS), "--det", str(det), "--save", str(out)]
    code = (
        "import sys\nfrom wakeward import cli\nrc = cli.main(sys.argv[1:])\n"
        "print('tensorflow loaded:', 'tensorflow' in sys.modules)\nsys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    said = done.stdout
    assert "evaluate: model alexa (" in said and "reusing" in said
    assert "FA/h (target 0.5/h:" in said
    assert "FRR at FA/h 0.5/h:" in said and "1/h:" in said and "2/h:" in said
    assert "its manifest's cutoff 0.9, window 5: FRR" in said
    assert "tensorflow loaded: False" in said
    assert det.read_bytes()[:4] == b"\x89PNG"
    figures = json.loads(out.read_text())
    assert figures["negative_hours"] == HOURS and figures["model"] == "alexa"
    assert figures["positives"] == len(streams.positive_stream(alexa_data, built).records)
    assert figures["manifest_point"]["sliding_window_size"] == 5
    assert figures["model_bytes"] == models.resolve("alexa").stat().st_size
    # --json: the same figures on stdout, alone; the lines on stderr. The model as the first
    # word and --hours (evaluate's name for --eval-hours before 2026-12-07) still work.
    args = ["evaluate", "alexa", "--data", str(alexa_data.path), "--hours", str(HOURS), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    timings = ("tflm_us_per_invocation", "times", "det_png")
    assert {k: v for k, v in printed.items() if k not in timings} == {
        k: v for k, v in figures.items() if k not in timings
    }
    assert "evaluate: model alexa (" in done.stderr and "FA/h (target 0.5/h:" in done.stderr


def test_evaluate_names_what_is_missing(alexa_data, tmp_path):
    with pytest.raises(WakewardError, match=f"{tmp_path / 'nope'}: not a wakeward training"):
        evalcmd.evaluate_cmd("alexa", tmp_path / "nope", hours=HOURS, say=lambda s: None)
    missing = tmp_path / "gone.tflite"
    with pytest.raises(WakewardError, match=f"{missing}: no such model file"):
        evalcmd.evaluate_cmd(str(missing), alexa_data.path, hours=HOURS, say=lambda s: None)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"model": "m.tflite", "micro": {}}))
    with pytest.raises(WakewardError, match=f"{tmp_path / 'm.tflite'}: no such model file"):
        evalcmd.evaluate_cmd(str(manifest), alexa_data.path, hours=HOURS, say=lambda s: None)
    (tmp_path / "m.tflite").write_bytes(models.resolve("alexa").read_bytes())
    with pytest.raises(WakewardError, match=f"{tmp_path / 'm.json'}: micro.probability_cutoff"):
        evalcmd.evaluate_cmd(str(manifest), alexa_data.path, hours=HOURS, say=lambda s: None)


def test_a_dataset_without_held_out_speakers_is_refused(alexa_data, tmp_path):
    info = json.loads(json.dumps(alexa_data.info))
    info["summary"]["speakers"]["heldout"] = []
    bare = dataset.Dataset(tmp_path, info, alexa_data.records, alexa_data.features)
    with pytest.raises(WakewardError, match="no held-out speakers"):
        streams.heldout_voices(bare)


def test_unknown_scene_kinds_are_refused():
    pool = [scenes.Utterance(np.ones(100, np.int16), "x:y")]
    with pytest.raises(WakewardError, match="unknown scene kind 'party'"):
        scenes.compose(1.0, np.random.default_rng(0), pool, {"party": 1.0})


def test_the_hours_must_be_positive(alexa_data):
    with pytest.raises(WakewardError, match="must be more than 0"):
        streams.ensure(alexa_data, 0.0)


def test_a_manifest_path_gives_its_model(tmp_path):
    src = models.resolve("alexa")
    (tmp_path / "alexa.tflite").write_bytes(src.read_bytes())
    (tmp_path / "alexa.json").write_text(Path(src.with_suffix(".json")).read_text())
    tflite, manifest = evalcmd.resolve_model(str(tmp_path / "alexa.json"))
    assert tflite == tmp_path / "alexa.tflite" and manifest is not None
    assert evalcmd.manifest_rule(manifest, tflite) == (0.9, 5)


def test_evaluate_on_a_held_out_engine_takes_all_its_clips_and_warns_when_unsure(
    alexa_data, built, tmp_path
):
    said: list[str] = []
    out = tmp_path / "e.json"
    evalcmd.evaluate_cmd(
        "hey_jarvis",
        alexa_data.path,
        hours=HOURS,
        save=out,
        heldout_engine="espeak-ng",
        real_speech=False,
        say=said.append,
    )
    text = "\n".join(said)
    # pymicro-wakeword's models were trained on unknown engines, and on another phrase
    assert "training engines are unknown to wakeward, so this is not a held-out-engine" in text
    assert "WARNING: the model wakes on 'Hey Jarvis' but the dataset's positives say" in text
    every = [r for r in alexa_data.records if r.label == 1]
    figures = json.loads(out.read_text())
    assert (
        figures["positives"] == len(every) > len([r for r in every if r.split == dataset.HELDOUT])
    )
    rows = figures["by_engine"]["rows"]
    assert [(r["engine"], r["clips"], r["heldout_engine"]) for r in rows] == [
        ("espeak-ng", len(every), None)
    ]
    assert figures["real_speech"] is None


def _own_model(folder: Path, data: dataset.Dataset, **data_fields) -> Path:
    """models/wakeward_alexa copied into `folder`, its record saying it trained on `data`
    (or on what `data_fields` change)."""
    src = Path(__file__).resolve().parents[2] / "models" / "wakeward_alexa"
    folder.mkdir()
    for f in src.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    record_path = folder / "wakeward_alexa.wakeward.json"
    record = json.loads(record_path.read_text())
    summary = data.info["summary"]
    own = {
        "phrase_phonemes": data.info.get("phrase_phonemes"),
        "seed": summary.get("seed"),
        "counts": summary.get("counts"),
    }
    record["data"].update({**own, **data_fields})
    record_path.write_text(json.dumps(record))
    return folder


def test_update_manifest_writes_the_point_chosen_on_the_models_own_dataset(
    alexa_data, built, tmp_path
):
    folder = _own_model(tmp_path / "wakeward_alexa", alexa_data)
    manifest_path = folder / "wakeward_alexa.json"
    before = json.loads(manifest_path.read_text())
    old_record = json.loads((folder / "wakeward_alexa.wakeward.json").read_text())
    said: list[str] = []
    evalcmd.evaluate_cmd(str(folder), alexa_data.path, hours=HOURS, update=True, say=said.append)
    manifest = json.loads(manifest_path.read_text())
    record = json.loads((folder / "wakeward_alexa.wakeward.json").read_text())
    ev = record["evaluation"]
    # the manifest now holds the point this evaluation chose, and only that changed
    assert (manifest["micro"]["probability_cutoff"], manifest["micro"]["sliding_window_size"]) == (
        ev["probability_cutoff"],
        ev["sliding_window_size"],
    )
    assert {k: v for k, v in manifest.items() if k != "micro"} == {
        k: v for k, v in before.items() if k != "micro"
    }
    assert ev["negative_hours"] == HOURS and ev["det_png"] == "wakeward_alexa.det.png"
    *kept, earlier = record["earlier_evaluations"]
    assert kept == old_record.get("earlier_evaluations", [])
    assert earlier["probability_cutoff"] == old_record["evaluation"]["probability_cutoff"]
    assert record["training"] == old_record["training"]
    assert any(f"cutoff {before['micro']['probability_cutoff']} ->" in s for s in said)


def test_update_manifest_refuses_another_dataset_and_writes_nothing(alexa_data, built, tmp_path):
    folder = _own_model(tmp_path / "wakeward_alexa", alexa_data, seed=99)
    files = {f.name: f.read_bytes() for f in folder.iterdir()}
    with pytest.raises(WakewardError, match="not the dataset wakeward_alexa.tflite was trained on"):
        evalcmd.evaluate_cmd(
            str(folder), alexa_data.path, hours=HOURS, update=True, say=lambda s: None
        )
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == files
    with pytest.raises(WakewardError, match="needs a model trained by `wakeward train`"):
        evalcmd.evaluate_cmd("alexa", alexa_data.path, hours=HOURS, update=True, say=print)
