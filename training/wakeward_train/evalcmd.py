"""`wakeward evaluate --model MODEL --data DIR`: any microWakeWord v2 model (ours, or one shipped
in pymicro-wakeword) on a dataset's held-out evaluation audio, so that two models can be
compared on the same sounds: FRR at the point chosen for the target FA/h, FRR at fixed
FA/h values, its manifest's own cutoff and window, size and cost per invocation.

The negative streams are built into the dataset folder on first use and reused after
(streams.py). Runs on TFLite Micro (the `reference` extra); TensorFlow is never imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wakeward import models
from wakeward.errors import WakewardError
from wakeward.files import write_text_atomic

from wakeward_train import dataset, detplot, evaluate, folds, realspeech, streams

Say = Callable[[str], None]


def resolve_model(spec: str) -> tuple[Path, dict[str, Any] | None]:
    """The .tflite and its manifest, as every command finds a model
    (wakeward.models.resolve_with_manifest: a model folder, a .tflite file, a NAME.json, or a
    shipped model's name)."""
    return models.resolve_with_manifest(spec)


def manifest_rule(manifest: dict[str, Any] | None, where: Path) -> tuple[float, int] | None:
    """(probability_cutoff, sliding_window_size) from a v2 manifest, None without one."""
    if manifest is None:
        return None
    micro = manifest.get("micro")
    if not isinstance(micro, dict):
        raise WakewardError(f"{where}: no 'micro' object in the manifest")
    cutoff, window = micro.get("probability_cutoff"), micro.get("sliding_window_size")
    if isinstance(cutoff, bool) or not isinstance(cutoff, int | float) or not 0 <= cutoff <= 1:
        raise WakewardError(f"{where}: micro.probability_cutoff {cutoff!r} is not in 0..1")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise WakewardError(f"{where}: micro.sliding_window_size {window!r} is not >= 1")
    return float(cutoff), window


def _words(phrase: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", phrase.lower()))


def phrase_warning(manifest: dict[str, Any] | None, phrase: str) -> str | None:
    """A warning when the model's wake word (its manifest's) is not the dataset's phrase."""
    wake = manifest.get("wake_word") if isinstance(manifest, dict) else None
    if not isinstance(wake, str) or not wake.strip() or _words(wake) == _words(phrase):
        return None
    return (
        f"evaluate: WARNING: the model wakes on {wake!r} but the dataset's positives say "
        f"{phrase!r}: its false-reject figures measure another phrase (evaluate it on a "
        f"dataset of its own phrase: wakeward train-data {wake!r} --out DIR)"
    )


def trained_engines(tflite: Path) -> list[str] | None:
    """The TTS engines a wakeward-trained model heard (from NAME.wakeward.json); None for
    a model whose training data is unknown (e.g. pymicro-wakeword's)."""
    ours = tflite.with_suffix(".wakeward.json")
    try:
        info = json.loads(ours.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise WakewardError(f"{ours}: unreadable ({e})") from None
    if not isinstance(info, dict):
        raise WakewardError(f"{ours}: not a JSON object")
    if isinstance(info.get("trained_engines"), list):
        return [str(e) for e in info["trained_engines"]]
    used = ((info.get("data") or {}).get("voices_used") or {}).get(dataset.TRAIN)
    return sorted(used) if isinstance(used, dict) else None


UPDATE_FIELDS = ("phrase_phonemes", "seed", "counts")  # a dataset is the model's own when equal


def _own_record(tflite: Path, data_set: dataset.Dataset) -> tuple[Path, dict[str, Any]]:
    """NAME.wakeward.json of a wakeward-trained model whose dataset `data_set` is (the same
    phrase, seed and clip counts): only there may its point be chosen again, since any other
    dataset's held-out audio may be its training audio."""
    ours = tflite.with_suffix(".wakeward.json")
    if not ours.is_file():
        raise WakewardError(
            f"{tflite}: --update-manifest needs a model trained by `wakeward train` (no "
            f"{ours.name} beside it)"
        )
    try:
        record = json.loads(ours.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WakewardError(f"{ours}: unreadable ({e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("data"), dict):
        raise WakewardError(f"{ours}: no 'data' object: not a wakeward training record")
    summary = data_set.info.get("summary") or {}
    here = {"phrase_phonemes": data_set.info.get("phrase_phonemes"), **summary}
    differ = [k for k in UPDATE_FIELDS if record["data"].get(k) != here.get(k)]
    if differ:
        raise WakewardError(
            f"{data_set.path}: not the dataset {tflite.name} was trained on ({', '.join(differ)} "
            f"differ from {ours.name}'s data): --update-manifest chooses a point only on the "
            f"held-out audio of the model's own dataset ({record['data'].get('path')})"
        )
    if record.get("fold"):
        raise WakewardError(f"{ours}: a leave-one-engine-out fold's point is not updated")
    return ours, record


def update_manifest(
    tflite: Path, record_path: Path, record: dict[str, Any], ev: evaluate.Evaluation, say: Say
) -> None:
    """Write the chosen point into NAME.json and the evaluation into NAME.wakeward.json,
    keeping the replaced evaluation's point in the record's `earlier_evaluations`."""
    before = record_evaluation(tflite, record_path, record, ev)
    p = ev.point
    say(
        f"evaluate: {tflite.with_suffix('.json')}: cutoff {before[0]} -> "
        f"{p.probability_cutoff}, window {before[1]} -> {p.sliding_window_size}; "
        f"{record_path.name} holds the new evaluation (the earlier point in "
        "earlier_evaluations); deploy the model again to use it"
    )


def record_evaluation(
    tflite: Path, record_path: Path, record: dict[str, Any], ev: evaluate.Evaluation
) -> tuple[float, int]:
    """Write `ev`'s point into the model's manifest (NAME.json), `ev` into its record
    (NAME.wakeward.json, the replaced evaluation's point kept in `earlier_evaluations`) and
    its DET curve beside it; returns the manifest's point before."""
    manifest_path = tflite.with_suffix(".json")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WakewardError(f"{manifest_path}: unreadable ({e})") from None
    manifest_rule(manifest, manifest_path)  # a manifest without a point is not rewritten
    p = ev.point
    before = (manifest["micro"]["probability_cutoff"], manifest["micro"]["sliding_window_size"])
    manifest["micro"]["probability_cutoff"] = p.probability_cutoff
    manifest["micro"]["sliding_window_size"] = p.sliding_window_size
    old = record.get("evaluation") or {}
    kept = {k: old.get(k) for k in EARLIER_KEYS}
    kept["real_speech_false_accepts"] = (old.get("real_speech") or {}).get("false_accepts")
    record["earlier_evaluations"] = [*record.get("earlier_evaluations", []), kept]
    record["evaluation"] = ev.to_json()
    det = tflite.with_suffix(".det.png")
    detplot.save(ev, det)
    record["evaluation"]["det_png"] = det.name
    write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return before


EARLIER_KEYS = (
    "probability_cutoff",
    "sliding_window_size",
    "false_reject_rate",
    "false_accepts_per_hour",
    "method",
)


def evaluate_cmd(
    model: str,
    data: Path,
    *,
    target_fa_per_hour: float | None = None,
    hours: float | None = None,
    det: Path | None = None,
    save: Path | None = None,
    json_stdout: bool = False,
    real_speech: bool = True,
    heldout_engine: str | None = None,
    update: bool = False,
    say: Say = print,
) -> int:
    target = target_fa_per_hour
    if target is None:
        target = evaluate.DEFAULT_TARGET_FA_PER_HOUR
    hours = streams.DEFAULT_HOURS if hours is None else hours
    if not target >= 0:
        raise WakewardError(f"--target-fa-per-hour {target}: must be >= 0")
    if not hours > 0:
        raise WakewardError(f"--eval-hours {hours}: must be more than 0")
    if det is not None:
        detplot.require()
    tflite, manifest = resolve_model(model)
    rule = manifest_rule(manifest, tflite.with_suffix(".json"))
    try:
        flatbuffer = tflite.read_bytes()
    except OSError as e:
        raise WakewardError(f"{tflite}: cannot read ({e.strerror})") from None
    evaluate.load_reference(flatbuffer, tflite)  # a bad model fails before any audio is built
    data_set = dataset.open_dataset(data)
    phrase = (data_set.info.get("summary") or {}).get("phrase", "?")
    say(f"evaluate: model {tflite.stem} ({tflite}) on the held-out audio of {data} ({phrase!r})")
    warning = phrase_warning(manifest, phrase)
    if warning:
        say(warning)
    engines = trained_engines(tflite)
    if update and heldout_engine is not None:
        raise WakewardError("--update-manifest and --heldout-engine: choose one")
    if update and warning:
        raise WakewardError(f"--update-manifest: {warning.removeprefix('evaluate: WARNING: ')}")
    own = _own_record(tflite, data_set) if update else None
    if heldout_engine is not None:
        # every positive of that engine, of both splits, as a fold is tested (folds.py)
        data_set = folds.fold_view(data_set, heldout_engine, for_training=False)
        heard = "unknown to wakeward" if engines is None else ", ".join(engines)
        if engines is None or heldout_engine in engines:
            say(
                f"evaluate: WARNING: --heldout-engine {heldout_engine}: the model's training "
                f"engines are {heard}, so this is not a held-out-engine figure"
            )
        say(
            f"evaluate: positives: every clip of {heldout_engine} in {data} "
            f"({sum(1 for r in data_set.records if r.split == dataset.HELDOUT and r.label)})"
        )
    eval_streams = streams.ensure(data_set, hours, say=say)
    real = streams.ensure_real(data_set, say=say) if real_speech else None
    validation = (
        None if real is None else streams.ensure_real(data_set, say=say, part=realspeech.VALIDATION)
    )
    ev = evaluate.evaluate_model(
        flatbuffer,
        tflite.stem,
        data_set,
        eval_streams,
        target_fa_per_hour=target,
        manifest=rule,
        where=tflite,
        say=say,
        trained_engines=engines,
        real_streams=real,
        real_validation=validation,
    )
    if det is not None:
        detplot.save(ev, det)
        ev.det_png = str(det)
    for line in ev.lines():
        say(line)
    if warning:
        say(warning)
    if det is not None:
        say(f"evaluate: DET curve written to {det}")
    if save is not None:
        write_text_atomic(save, json.dumps(ev.to_json(), indent=1) + "\n")
        say(f"evaluate: figures written to {save}")
    if own is not None:
        update_manifest(tflite, *own, ev, say)
    if json_stdout:
        print(json.dumps(ev.to_json(), indent=1))
    return 0
