"""`wakeward train "PHRASE" --out models/NAME`: data -> train -> export -> evaluate -> check.

Writes into the --out folder (NAME is its last component):

    NAME.tflite           the streaming int8 model (microWakeWord v2 interface)
    NAME.json             its microWakeWord v2 manifest, exactly the fields ESPHome's schema
                          allows (ESPHome refuses unknown keys, so ours live beside it)
    NAME.wakeward.json    wakeward's own fields: data summary, training, export facts,
                          held-out evaluation (FRR, FA/h, the curve), the device check
    NAME.det.png          the DET curve: FRR against false accepts per hour, per window
    NAME.keras            the trained non-streaming Keras model (for later evaluation or
                          fine-tuning)

The run writes into NAME.partial/ and moves the files into the folder only when the export,
the evaluation and the bit-exact check have all passed: a failed or interrupted run leaves
the NAME.* files already there as they were. A model the export refuses is kept as
NAME.refused.tflite and NAME.refused.keras; a model that is not bit-exact on the device
interpreter stays in NAME.partial/.

The dataset goes to --data (default: the user cache folder's train/NAME/data-P-N-seedS,
~/.cache/wakeward/train/... on Linux, P and N the positives and negatives: a --quick run's
is never taken for a full one's); an existing dataset there is reused as it is (its phrase
must match). The evaluation's negative audio (streams.py: 3 hours, 2.4 minutes with
--quick) is cached inside it, in eval_streams/.

It says what it expects to take before it starts (estimate(), from runs measured alone on
a 2-core PC), and how long each stage took once it is done.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wakeward.errors import WakewardError

from wakeward_train import (
    __version__,
    augment,
    command,
    dataset,
    detplot,
    evaluate,
    export,
    folds,
    realspeech,
    streams,
    train,
)
from wakeward_train.backend import require
from wakeward_train.clips import sources as clip_sources
from wakeward_train.model import FEATURES, STRIDE

Say = Callable[[str], None]
MINIMUM_ESPHOME_VERSION = "2024.7.0"  # the microWakeWord v2 models' own value
FEATURE_STEP_MS = 10
DEFAULT_POSITIVES = 4000  # the models in models/ were trained on this much (about 6 min)
DEFAULT_NEGATIVES = 6000
QUICK_POSITIVES = 40
QUICK_NEGATIVES = 60
REFUSED_KERAS_SUFFIX = ".refused.keras"  # beside export.REFUSED_SUFFIX's .tflite
PARTIAL_SUFFIX = ".partial"  # OUT/NAME.partial/: the run's files until every check passed
FOLDS_SUFFIX = ".folds"  # OUT/NAME.folds/ENGINE/: the leave-one-engine-out models
CHECK_INVOCATIONS = 1000
TRAIN_STREAM_HOURS = 2.0  # long negative training audio (streams.py, split TRAIN)
# estimate(): the default "alexa" run measured alone on a 2-core PC took 21.8 min
# (training/README.md): the data 239 s for 10,000 clips, the training streams 79 s and
# training 885 s (16 + 9 epochs), the evaluation streams 83 s (3 h) and evaluation 20 s,
# export and check 4 s; --quick took QUICK_RUN_S.
DATA_S_PER_CLIP = 0.024
FIT_S_PER_CLIP = 0.096  # the training streams and the fits
TYPICAL_EPOCHS = 16  # before early stopping, in the measured run
EVAL_S_PER_HOUR = 28.0  # the evaluation streams, built once per dataset
EVAL_FIXED_S = 24.0  # evaluation, export and the device check
QUICK_RUN_S = 35.0  # 30 s and 39 s measured (a fresh dataset; other jobs beside it)
SECONDS_SHOWN_UNDER = 90  # durations below this in seconds, above it in minutes
QUICK_TRAIN_STREAM_HOURS = 0.03
FORMAT = "wakeward-model/1"


@dataclass(frozen=True)
class Options:
    phrase: str
    out: Path
    seed: int = 0
    data: Path | None = None
    epochs: int | None = None
    quick: bool = False
    positives: int | None = None
    negatives: int | None = None
    words: Path | None = None
    engines: tuple[str, ...] = ()
    owner: tuple[Path, ...] = ()  # the owner's takes (WAV files or folders)
    false_wakes: tuple[Path, ...] = ()  # false wakes as WAV files or folders
    false_wake_store: Path | None = None  # a clip store whose false-wake clips to add
    author: str = "wakeward"
    calibration_chunks: int | None = None
    check_invocations: int | None = None
    target_fa_per_hour: float = evaluate.DEFAULT_TARGET_FA_PER_HOUR
    eval_hours: float | None = None  # default: streams.DEFAULT_HOURS, QUICK_HOURS with quick
    train_stream_hours: float | None = None  # default: TRAIN_STREAM_HOURS (quick: QUICK_...)
    holdout_engine: str | None = None  # train one leave-one-engine-out fold: without it
    engine_folds: bool = False  # every engine's fold first, then the model on everything
    folds_dir: Path | None = None  # where the folds go and are reused from: OUT/NAME.folds
    speaker_augment: str = "default"  # augment.SpeakerAugment.parse: default, all, none, parts
    piper_voices: tuple[Path, ...] = ()  # folders of Piper voices beside the wheel's
    owner_share: float | None = None  # train.TrainConfig.owner_share (default: its own)


def _train_config(opts: Options) -> train.TrainConfig:
    config = train.QUICK if opts.quick else train.TrainConfig()
    config = train.with_epochs(replace(config, seed=opts.seed), opts.epochs)
    if opts.owner_share is not None:
        config = replace(config, owner_share=opts.owner_share)
    return config


def _train_stream_hours(opts: Options) -> float:
    return opts.train_stream_hours or (
        QUICK_TRAIN_STREAM_HOURS if opts.quick else TRAIN_STREAM_HOURS
    )


def _calibration_chunks(opts: Options) -> int:
    return opts.calibration_chunks or (2000 if opts.quick else export.CALIBRATION_CHUNKS)


def model_name(out: Path) -> str:
    name = out.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise WakewardError(
            f"--out {out}: the folder's name is the model's name and must be letters, digits, "
            "'_', '-' or '.'"
        )
    return name


def v2_manifest(
    phrase: str, name: str, author: str, arena: int, point: evaluate.OperatingPoint
) -> dict[str, Any]:
    """microWakeWord's v2 manifest (ESPHome's MANIFEST_SCHEMA_V2; `website` is optional
    and must be a URL, so it is left out)."""
    return {
        "type": "micro",
        "wake_word": " ".join(w.capitalize() for w in phrase.split()),
        "author": author,
        "model": f"{name}.tflite",
        "trained_languages": ["en"],
        "version": 2,
        "micro": {
            "probability_cutoff": point.probability_cutoff,
            "sliding_window_size": point.sliding_window_size,
            "feature_step_size": FEATURE_STEP_MS,
            "tensor_arena_size": arena,
            "minimum_esphome_version": MINIMUM_ESPHOME_VERSION,
        },
    }


def _counts(opts: Options) -> tuple[int, int]:
    """The positives and negatives a dataset is built with."""
    positives = opts.positives or (QUICK_POSITIVES if opts.quick else DEFAULT_POSITIVES)
    negatives = opts.negatives or (QUICK_NEGATIVES if opts.quick else DEFAULT_NEGATIVES)
    return positives, negatives


def default_data_dir(opts: Options, name: str) -> Path:
    """--data's default: one dataset per model name, clip counts and seed in the user cache
    folder (platformdirs: ~/.cache/wakeward/train/ on Linux), whatever folder the command
    runs in."""
    import platformdirs

    positives, negatives = _counts(opts)
    return (
        Path(platformdirs.user_cache_dir("wakeward"))
        / "train"
        / name
        / f"data-{positives}-{negatives}-seed{opts.seed}"
    )


def _reusable(path: Path) -> bool:
    return (path / dataset.SUMMARY).is_file() and (path / dataset.MANIFEST).is_file()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < SECONDS_SHOWN_UNDER else f"{seconds / 60:.0f} min"


def estimate(opts: Options, reuse_data: bool) -> str:
    """What the run should take, from the runs measured alone on a 2-core PC
    (training/README.md), scaled by the clips, the epochs and the evaluation hours."""
    if opts.quick:
        return f"about {_duration(QUICK_RUN_S)} (--quick, measured alone on a 2-core PC)"
    clips = sum(_counts(opts))
    data_s = 0.0 if reuse_data else clips * DATA_S_PER_CLIP
    fit_s = clips * FIT_S_PER_CLIP * min(1.0, (opts.epochs or TYPICAL_EPOCHS) / TYPICAL_EPOCHS)
    eval_s = EVAL_FIXED_S + (opts.eval_hours or streams.DEFAULT_HOURS) * EVAL_S_PER_HOUR
    models = evaluated = 1
    if opts.engine_folds:
        engines = opts.engines or dataset.voices.ENGINES
        evaluated += len(engines)
        # a fold already there is reused when its settings are this run's (_trained_fold)
        there = _folds_dir(opts, model_name(opts.out))
        models += sum(not (there / e / f"{e}.wakeward.json").is_file() for e in engines)
    total = data_s + models * fit_s + evaluated * eval_s
    return (
        f"about {_duration(total)} (data {_duration(data_s)}"
        + (" (reused)" if reuse_data else "")
        + f", training {_duration(models * fit_s)}, evaluation {_duration(evaluated * eval_s)}"
        + (f", for {models} models" if models > 1 else "")
        + (f"; {evaluated - models} folds reused, only evaluated" if evaluated > models else "")
        + "; from runs measured alone on a 2-core PC)"
    )


def _took(say: Say, stage: str, seconds: float, t_all: float, what: str = "") -> None:
    so_far = time.monotonic() - t_all
    say(f"{stage}: took {_duration(seconds)}{what} ({_duration(so_far)} so far)")


def _dataset(opts: Options, name: str, say: Say) -> dataset.Dataset:
    path = opts.data or default_data_dir(opts, name)
    owner, false_wakes = clip_sources(opts.owner, opts.false_wakes, opts.false_wake_store)
    if _reusable(path):
        data = dataset.open_dataset(path)
        have = data.info.get("summary", {}).get("phrase", "")
        if have.strip().lower() != opts.phrase.strip().lower():
            raise WakewardError(
                f"{path}: the dataset there is for {have!r}, not {opts.phrase!r} "
                "(choose another --data)"
            )
        built = data.info.get("config", {})
        asked = {"owner": owner, "false_wakes": false_wakes}
        if (owner or false_wakes) and any(
            built.get(key) != [repr(s) for s in srcs] for key, srcs in asked.items()
        ):
            raise WakewardError(
                f"{path}: the dataset there was built from other recordings than --owner, "
                "--false-wakes and --false-wakes-from-store give now (choose another --data "
                "to build one with them)"
            )
        speaker = augment.SpeakerAugment.parse(opts.speaker_augment).to_json()
        if built.get("speaker", augment.SpeakerAugment.off().to_json()) != speaker:
            raise WakewardError(
                f"{path}: the dataset there was built with other speaker augmentation than "
                f"--speaker-augment {opts.speaker_augment} (choose another --data)"
            )
        say(f"data: reusing the dataset in {path}")
        return data
    positives, negatives = _counts(opts)
    say(f"data: building {positives} positives and {negatives} negatives into {path}")
    config = dataset.DataConfig(
        phrase=opts.phrase,
        positives=positives,
        negatives=negatives,
        seed=opts.seed,
        words=opts.words,
        engines=opts.engines or dataset.voices.ENGINES,
        speaker=augment.SpeakerAugment.parse(opts.speaker_augment),
        piper_voices=opts.piper_voices,
        owner=owner,
        false_wakes=false_wakes,
    )
    summary = dataset.build(config, path, command.ProgressLines())
    for line in summary.lines():
        say(f"data: {line}")
    return dataset.open_dataset(path)


def _data_summary(data: dataset.Dataset) -> dict[str, Any]:
    s = data.info.get("summary", {})
    return {
        "path": str(data.path),
        "phrase_phonemes": data.info.get("phrase_phonemes"),
        "seed": s.get("seed"),
        "voices": s.get("voices"),
        "word_source": s.get("word_source"),
        "counts": s.get("counts"),
        "seconds": s.get("seconds"),
        "speakers": {k: len(v) for k, v in (s.get("speakers") or {}).items()},
        "voices_used": s.get("voices_used"),
        "config": {k: (data.info.get("config") or {}).get(k) for k in ("positives", "negatives")},
    }


def run(opts: Options, say: Say = print) -> int:
    """The whole pipeline; returns 0, or 1 when the device check is not bit-exact.

    With `engine_folds`, one model per engine of the dataset is trained without it first
    (folds.py; into OUT/NAME.folds/ENGINE/ or `folds_dir`/ENGINE/, where a fold trained
    before with the same dataset and settings is reused and only evaluated again), and the
    final model's record carries their pooled held-out-engine FRR as its headline. With
    `holdout_engine`, the run is that one fold: the model trains without the engine and is
    evaluated on it."""
    t_all = time.monotonic()  # TensorFlow's import counts: the run's time is the wall clock's
    name = model_name(opts.out)
    if opts.folds_dir is not None and not opts.engine_folds:
        raise WakewardError(f"--folds {opts.folds_dir}: only with --engine-folds")
    require()  # fail before building data when TensorFlow is missing
    detplot.require()  # and matplotlib, for the DET curve
    if not opts.target_fa_per_hour >= 0:
        raise WakewardError(f"--target-fa-per-hour {opts.target_fa_per_hour}: must be >= 0")
    if opts.eval_hours is not None and not opts.eval_hours > 0:
        raise WakewardError(f"--eval-hours {opts.eval_hours}: must be more than 0")
    if opts.engine_folds and opts.holdout_engine:
        raise WakewardError("--engine-folds and --holdout-engine: choose one")
    reuse = _reusable(opts.data or default_data_dir(opts, name))
    say(f"train: expect {estimate(opts, reuse)}")
    t = time.monotonic()
    data = _dataset(opts, name, say)
    data_s = time.monotonic() - t
    _took(say, "data", data_s, t_all)
    if opts.holdout_engine:
        view = folds.fold_view(data, opts.holdout_engine)
        say(f"fold: training without {opts.holdout_engine} (and the people it speaks as)")
        return _one_model(opts, view, opts.out, name, say, t_all, data_s)
    pooled = None
    fold_records: list[dict[str, Any]] = []
    if opts.engine_folds:
        engines = folds.dataset_engines(data)
        if len(engines) < 2:
            raise WakewardError(
                f"{data.path}: --engine-folds needs positives from two TTS engines at least "
                f"(found: {', '.join(engines) or 'none'}; make sysdeps-train installs them)"
            )
        rows = []
        settings = _fold_settings(opts, data)
        for engine in engines:
            fold_say = _prefixed(say, f"fold {engine}: ")
            view = folds.fold_view(data, engine)
            out = _folds_dir(opts, name) / engine
            t = time.monotonic()
            record, why = _trained_fold(out, engine, settings)
            reused = record is not None
            if record is None:
                if why:
                    fold_say(f"training it again: {why}")
                fold_say(f"training without {engine} (and the people it speaks as)")
                _one_model(opts, view, out, engine, fold_say, time.monotonic(), 0.0)
            else:
                fold_say(
                    f"reusing the fold in {out} (trained from this dataset with these settings; "
                    "delete that folder to train it again), evaluated again"
                )
                _evaluate_again(opts, view, out, engine, record, fold_say)
            record = summary_json(out / f"{engine}.wakeward.json")
            row = _fold_row(record, engine)
            rows.append(row)
            fold_records.append(
                _fold_record(record, out, engine, time.monotonic() - t, reused=reused)
            )
            fold_say(
                f"held-out engine {engine}: FRR {row.false_reject_rate:.1%} "
                f"({row.missed}/{row.clips} missed) in {time.monotonic() - t:.0f} s"
            )
        pooled = folds.Pooled(rows)
    extra = None
    if pooled is not None:
        extra = {"heldout_engines": {**pooled.to_json(), "folds": fold_records}}
    code = _one_model(opts, data, opts.out, name, say, t_all, data_s, extra)
    if pooled is not None:
        say(
            f"train: held-out engines (leave-one-engine-out, {len(pooled.rows)} folds): "
            f"FRR {pooled.false_reject_rate:.1%} ({pooled.missed}/{pooled.clips} missed) at "
            f"the target {opts.target_fa_per_hour:g} FA/h; "
            + "; ".join(
                f"{r.engine} {r.false_reject_rate:.1%} ({r.missed}/{r.clips})" for r in pooled.rows
            )
        )
    return code


def _prefixed(say: Say, prefix: str) -> Say:
    return lambda line: say(prefix + line)


def _fold_row(record: dict[str, Any], engine: str) -> folds.EngineRow:
    rows = ((record.get("evaluation") or {}).get("by_engine") or {}).get("rows") or []
    for r in rows:
        if r.get("engine") == engine:
            return folds.EngineRow(
                engine=engine,
                clips=int(r["clips"]),
                missed=int(r["missed"]),
                speakers=int(r["speakers"]),
                heldout_engine=True,
            )
    raise WakewardError(f"fold {engine}: its evaluation has no row for {engine}")


def _folds_dir(opts: Options, name: str) -> Path:
    return opts.folds_dir or opts.out / f"{name}{FOLDS_SUFFIX}"


def _jsonable(value: Any) -> Any:
    """`value` as it reads back from a JSON file (tuples become lists)."""
    return json.loads(json.dumps(value))


def _fold_settings(opts: Options, data: dataset.Dataset) -> dict[str, Any]:
    """What decides a fold's weights besides its engine: a fold trained before is reused only
    when its record says the same of each (_recorded_settings)."""
    tf, keras = require()
    return {
        "phrase": opts.phrase.strip().lower(),
        "seed": opts.seed,
        "quick": opts.quick,
        "dataset": _jsonable({k: v for k, v in _data_summary(data).items() if k != "path"}),
        "training config": _jsonable(_train_config(opts).to_json()),
        "training streams' hours": _train_stream_hours(opts),
        "calibration chunks": _calibration_chunks(opts),
        "versions": {
            "wakeward_train": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }


def _recorded_settings(record: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """_fold_settings' fields as a fold's record (NAME.wakeward.json) holds them."""
    data = dict(record.get("data") or {})
    data.pop("path", None)  # the same dataset may have been reached by another path
    hours = (data.pop("training_streams", None) or {}).get("hours")
    config = (record.get("training") or {}).get("config")
    return {
        "phrase": str(record.get("phrase", "")).strip().lower(),
        "seed": record.get("seed"),
        "quick": record.get("quick"),
        "dataset": data,
        # a setting the record does not name was added to TrainConfig since, with a default
        # that keeps a run as it was
        "training config": {**now["training config"], **config}
        if isinstance(config, dict)
        else None,
        "training streams' hours": hours,
        "calibration chunks": (record.get("export") or {}).get("calibration_chunks"),
        "versions": record.get("versions"),
    }


def _trained_fold(
    out: Path, engine: str, settings: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """(its record, None) when FOLDS/ENGINE holds a fold trained without `engine` from the
    same dataset with the same settings; (None, why not) when it holds another model; (None,
    None) when it holds none."""
    path = out / f"{engine}.wakeward.json"
    if not path.is_file():
        return None, None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, f"{path} is unreadable ({e})"
    if not isinstance(record, dict):
        return None, f"{path} is not a JSON object"
    if (record.get("fold") or {}).get("heldout_engine") != engine:
        return None, f"{path} is not a fold without {engine}"
    missing = [f for f in (f"{engine}.tflite", f"{engine}.json") if not (out / f).is_file()]
    if missing:
        return None, f"{' and '.join(missing)} missing beside {path.name}"
    before = _recorded_settings(record, settings)
    differ = [k for k, v in settings.items() if before[k] != v]
    if differ:
        return None, f"{path.name} says it was trained with another {', '.join(differ)}"
    return record, None


def _evaluate_again(
    opts: Options,
    view: folds.FoldDataset,
    out: Path,
    engine: str,
    record: dict[str, Any],
    say: Say,
) -> None:
    """A reused fold judged again as a new one would be (this run's target and evaluation
    audio), its point, record and DET curve rewritten in place (the record keeps the earlier
    point in `earlier_evaluations`)."""
    from wakeward_train import evalcmd

    model_path = out / f"{engine}.tflite"
    frames = (record.get("training") or {}).get("receptive_frames")
    if isinstance(frames, bool) or not isinstance(frames, int):
        raise WakewardError(f"{out / (engine + '.wakeward.json')}: no training.receptive_frames")
    heard = record.get("trained_engines")
    if not isinstance(heard, list):
        heard = folds.trained_engines(view)
    times: dict[str, float] = {}
    ev = _evaluate(opts, view, model_path, frames, [str(e) for e in heard], times, say)
    for line in ev.lines():
        say(line)
    record["times"] = {**(record.get("times") or {}), "evaluated_again": times}
    evalcmd.record_evaluation(model_path, out / f"{engine}.wakeward.json", record, ev)


def _fold_record(
    record: dict[str, Any], out: Path, engine: str, seconds: float, *, reused: bool = False
) -> dict[str, Any]:
    ev = record.get("evaluation") or {}
    return {
        "engine": engine,
        "reused": reused,
        "model": str(out / f"{engine}.tflite"),
        "probability_cutoff": ev.get("probability_cutoff"),
        "sliding_window_size": ev.get("sliding_window_size"),
        "false_reject_rate": ev.get("false_reject_rate"),
        "false_accepts": ev.get("false_accepts"),
        "false_accepts_per_hour": ev.get("false_accepts_per_hour"),
        "target_met": ev.get("target_met"),
        "real_speech": ev.get("real_speech")
        and {
            k: ev["real_speech"].get(k)
            for k in ("hours", "false_accepts", "false_accepts_per_hour")
        },
        "trained_engines": record.get("trained_engines"),
        "seconds": round(seconds, 1),
    }


def _one_model(
    opts: Options,
    data: dataset.Dataset,
    out: Path,
    name: str,
    say: Say,
    t_all: float,
    data_s: float,
    extra: dict[str, Any] | None = None,
) -> int:
    """Train, export, evaluate and check one model on `data` (the dataset, or one fold's
    view of it) into `out`."""
    tf, keras = require()
    from wakeward import modelcheck

    fold = data.engine if isinstance(data, folds.FoldDataset) else None
    times: dict[str, float] = {}
    t = time.monotonic()
    train_hours = _train_stream_hours(opts)
    train_streams = streams.ensure(
        data, train_hours, say=say, split=dataset.TRAIN, without_engine=fold
    )
    times["data_s"] = round(data_s + time.monotonic() - t, 1)

    config = _train_config(opts)
    t = time.monotonic()
    result = train.train(data, config, say=say, streams=train_streams.chunks)
    times["train_s"] = round(time.monotonic() - t, 1)
    _took(say, "train", times["train_s"], t_all)
    staging = _staging(out, name)
    model_path = staging / f"{name}.tflite"

    t = time.monotonic()
    chunks = _calibration_chunks(opts)
    say(f"export: converting to int8 with {chunks} calibration chunks")
    try:
        report = export.export(
            result.net, result.model, data, model_path, seed=opts.seed, chunks=chunks, say=say
        )
    except WakewardError as e:
        # the refused model and its float twin go beside the model in use, never over it
        result.model.save(out / f"{name}{REFUSED_KERAS_SUFFIX}")
        refused = staging / f"{name}{export.REFUSED_SUFFIX}"
        if refused.is_file():
            refused.replace(out / refused.name)
        shutil.rmtree(staging, ignore_errors=True)
        raise WakewardError(str(e).replace(str(staging), str(out))) from None
    result.model.save(staging / f"{name}.keras")
    for line in report.lines():
        say(line)
    times["export_s"] = round(time.monotonic() - t, 1)
    _took(say, "export", times["export_s"], t_all)

    heard = folds.trained_engines(data)
    ev = _evaluate(opts, data, model_path, result.config.model.receptive_frames, heard, times, say)
    ev.det_png = detplot.save(ev, staging / f"{name}.det.png").name
    for line in ev.lines():
        say(line)
    point = ev.point
    _took(
        say,
        "evaluate",
        times["eval_streams_s"] + times["evaluate_s"],
        t_all,
        f", {_duration(times['eval_streams_s'])} of it the negative audio",
    )
    arena = export.manifest_arena_bytes(report.tflm_arena_bytes)
    manifest = v2_manifest(opts.phrase, name, opts.author, arena, point)
    export.write_json(staging / f"{name}.json", manifest)

    t = time.monotonic()
    invocations = opts.check_invocations or (300 if opts.quick else CHECK_INVOCATIONS)
    split = (
        dataset.HELDOUT if any(r.split == dataset.HELDOUT for r in data.records) else dataset.TRAIN
    )
    stream = export.stream_of(data, split, invocations * STRIDE, opts.seed + 2)
    say(f"check: device interpreter vs TFLite Micro over {invocations} held-out invocations")
    check = modelcheck.check(model_path, inputs=stream.reshape(invocations, 1, STRIDE, FEATURES))
    for line in check.lines():
        say(f"check: {line}")
    times["check_s"] = round(time.monotonic() - t, 1)
    _took(say, "check", times["check_s"], t_all)
    times["total_s"] = round(time.monotonic() - t_all, 1)

    ours = {
        "format": FORMAT,
        "phrase": opts.phrase,
        "model": f"{name}.tflite",
        "manifest": f"{name}.json",
        "seed": opts.seed,
        "quick": opts.quick,
        "trained_engines": heard,
        "fold": None
        if fold is None
        else {
            "heldout_engine": fold,
            "what": "a leave-one-engine-out fold: trained without this engine and without "
            "any person it speaks as; evaluated on all of its positive clips",
        },
        "versions": {
            "wakeward_train": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "data": {**_data_summary(data), "training_streams": train_streams.summary()},
        "training": {
            "config": result.config.to_json(),
            "parameters": result.params,
            "receptive_frames": result.config.model.receptive_frames,
            "windows": result.windows,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "history": result.history,
            "heldout_windows": result.heldout,
            "hard_negatives": result.hard_negatives,
        },
        "export": report.to_json(),
        "evaluation_scope": f"held-out engine {fold}"
        if fold
        else "held-out voices of the engines the model trained on (flattering: the honest "
        "figure for unheard voices is heldout_engines, from wakeward train --engine-folds)",
        "evaluation": ev.to_json(),
        **(extra or {}),
        "device_check": {
            "bit_exact": check.bit_exact,
            "invocations": check.invocations,
            "first_mismatch": check.first_mismatch,
            "arena_bytes": check.arena_bytes,
            "variable_bytes": check.variable_bytes,
            "scratch_bytes": check.scratch_bytes,
            "heap_used_bytes_unix_port": check.heap_used_bytes,
            "device_us_per_invocation_unix_port": round(check.device_us_per_invocation, 1),
            "tflm_us_per_invocation": round(check.reference_us_per_invocation, 1),
        },
        "times": times,
    }
    export.write_json(staging / f"{name}.wakeward.json", ours)
    if not check.bit_exact:
        raise WakewardError(
            f"{model_path}: the device interpreter is not bit-exact with TFLite Micro "
            f"(first mismatch {check.first_mismatch}); the run's files stay in {staging}, "
            f"and {out / (name + '.tflite')} (if any) is as it was"
        )
    installed = _install(staging, out, name)
    say(
        f"train: wrote {installed} ({report.model_bytes:,} bytes), {name}.json (cutoff "
        f"{point.probability_cutoff}, window {point.sliding_window_size}, arena {arena:,}), "
        f"{name}.wakeward.json and {ev.det_png} in {times['total_s']:.0f} s"
    )
    return 0


def _evaluate(
    opts: Options,
    data: dataset.Dataset,
    model_path: Path,
    context_frames: int,
    heard: list[str],
    times: dict[str, float],
    say: Say,
) -> evaluate.Evaluation:
    """The model at `model_path` on the held-out audio of `data` (streams built into the
    dataset once), its point chosen for the target FA/h; the two stages' seconds go into
    `times`."""
    t = time.monotonic()
    hours = opts.eval_hours or (streams.QUICK_HOURS if opts.quick else streams.DEFAULT_HOURS)
    eval_streams = streams.ensure(data, hours, say=say)
    # recorded human speech by held-out speakers (realspeech.py), where installed; a quick
    # run's smoke test leaves it out (building it takes about 2 minutes the first time)
    real = None if opts.quick else streams.ensure_real(data, say=say)
    # another part of the held-out speakers chooses the cutoff with the synthetic streams
    validation = (
        None if real is None else streams.ensure_real(data, say=say, part=realspeech.VALIDATION)
    )
    times["eval_streams_s"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    ev = evaluate.evaluate_model(
        model_path.read_bytes(),
        model_path.stem,
        data,
        eval_streams,
        target_fa_per_hour=opts.target_fa_per_hour,
        context_frames=context_frames,
        where=model_path,
        say=say,
        trained_engines=heard,
        real_streams=real,
        real_validation=validation,
    )
    if opts.quick:
        ev.smoke = True
    times["evaluate_s"] = round(time.monotonic() - t, 1)
    return ev


# What a run installs, in this order: the model file and its manifest last, so a pair is
# replaced within two renames of each other.
_INSTALLED = (".keras", ".det.png", ".wakeward.json", ".tflite", ".json")


def _staging(out: Path, name: str) -> Path:
    """An empty OUT/NAME.partial/: a run writes there and installs into OUT only when every
    check passed, so a failed or interrupted run never replaces a model in use."""
    staging = out / f"{name}{PARTIAL_SUFFIX}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)  # an interrupted run's leftovers
        staging.mkdir()
    except OSError as e:
        raise WakewardError(f"{staging}: cannot create the folder ({e.strerror})") from None
    return staging


def _install(staging: Path, out: Path, name: str) -> Path:
    for suffix in _INSTALLED:
        (staging / f"{name}{suffix}").replace(out / f"{name}{suffix}")
    shutil.rmtree(staging, ignore_errors=True)
    return out / f"{name}.tflite"


def summary_json(path: Path) -> dict[str, Any]:
    """A model's wakeward.json (for tests and later stages)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WakewardError(f"{path}: unreadable ({e})") from None
