"""The project's own models in models/: each folder is what `wakeward train` writes, its
manifest is one ESPHome accepts, the manifest's point is the one the record says was
evaluated, and the device interpreter runs the model bit-exact against TFLite Micro."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wakeward import modelcheck, models

REPO = Path(__file__).resolve().parents[2]
FOLDERS = sorted(p for p in (REPO / "models").iterdir() if p.is_dir())
V2_KEYS = {"type", "wake_word", "author", "model", "trained_languages", "version", "micro"}
MICRO_KEYS = {
    "probability_cutoff",
    "sliding_window_size",
    "feature_step_size",
    "tensor_arena_size",
    "minimum_esphome_version",
}


def test_the_models_folder_holds_models():
    assert {p.name for p in FOLDERS} >= {"hey_wakeward", "wakeward_alexa"}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_a_shipped_model_is_the_one_its_record_describes(folder: Path):
    name = folder.name
    tflite = models.resolve(folder)
    manifest = json.loads((folder / f"{name}.json").read_text())
    assert set(manifest) == V2_KEYS and set(manifest["micro"]) == MICRO_KEYS
    assert manifest["model"] == tflite.name and manifest["version"] == 2
    record = json.loads((folder / f"{name}.wakeward.json").read_text())
    ev = record["evaluation"]
    micro = manifest["micro"]
    assert (micro["probability_cutoff"], micro["sliding_window_size"]) == (
        ev["probability_cutoff"],
        ev["sliding_window_size"],
    )
    # the evaluated file is the file that ships
    assert ev["model_bytes"] == record["export"]["model_bytes"] == tflite.stat().st_size
    assert (folder / f"{name}.det.png").read_bytes()[:4] == b"\x89PNG"
    assert tflite.read_bytes()[4:8] == b"TFL3"  # a flatbuffer, not e.g. a Git LFS pointer
    # the record says which TTS engines the model heard, and its figures per engine
    heard = record["trained_engines"]
    rows = ev["by_engine"]["rows"]
    assert heard and rows and sum(r["clips"] for r in rows) == ev["positives"]
    assert all(r["heldout_engine"] == (r["engine"] not in heard) for r in rows)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_a_shipped_model_runs_bit_exact_on_the_device_interpreter(folder: Path):
    report = modelcheck.check(folder, invocations=60, seed=11)
    assert report.bit_exact, report.lines()
    assert (
        report.manifest_arena_bytes
        == json.loads((folder / f"{folder.name}.json").read_text())["micro"]["tensor_arena_size"]
    )
