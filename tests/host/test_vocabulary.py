"""One vocabulary across commands (issue 18 item 9), through the real `wakeward` entry point:
--json is machine-readable output on stdout; --seconds is how long a command runs; a model
is given as --model (or, where a command took it so before, as its first word) and may be a
model folder, a .tflite file, its NAME.json or a shipped model's name; --heap has one
default; a clip's label can be cleared."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from wakeward import cli, examples, models, unixport
from wakeward.audio import RATE_HZ, write_wav
from wakeward.store import ClipStore

from tests.conftest import require_tools
from tests.host.test_cli import wakeward

PROJECT_MODELS = ("hey_wakeward", "wakeward_alexa")
NAMES_LISTED = "one of: hey_wakeward, wakeward_alexa, alexa, hey_jarvis, hey_mycroft, okay_nabu"
COMMANDS = examples.commands(cli.build_parser())


def options(name: str) -> dict[str, argparse.Action]:
    """A command's options by their spellings (hidden ones too)."""
    return {s: a for a in COMMANDS[name]._actions for s in a.option_strings}


def shown(action: argparse.Action) -> bool:
    return action.help != argparse.SUPPRESS


# -- models -------------------------------------------------------------------------------


def test_the_project_models_are_shipped_names():
    assert set(PROJECT_MODELS) <= set(models.project_names())
    for name in PROJECT_MODELS:
        assert models.resolve(name) == models.project_dir() / name / f"{name}.tflite"


def test_every_command_that_takes_a_model_takes_model():
    takers = {n for n in COMMANDS if "--model" in options(n) and n != "clips list"}
    assert takers == {
        "sim", "monitor", "flash", "deploy", "try", "model check", "evaluate", "wake-service",
    }  # fmt: skip
    helps = {options(n)["--model"].help.split(";")[0] for n in takers}
    assert len(helps) == 1 and "hey_wakeward, wakeward_alexa, alexa" in helps.pop()


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "x.wav", "--model", "nope"],
        ["monitor", "--sim", "x.wav", "--model", "nope"],
        ["deploy", "--port", "/dev/null", "--model", "nope"],
        ["flash", "--port", "/dev/null", "--model", "nope"],
        ["try", "--model", "nope", "x.wav"],
        ["try", "nope", "x.wav"],
        ["model", "check", "--model", "nope"],
        ["model", "check", "nope"],
        ["evaluate", "--model", "nope", "--data", "."],
        ["evaluate", "nope", "--data", "."],
        ["wake-service", "--model", "nope", "--wyoming", "127.0.0.1:0"],
        ["wake-service", "nope", "--wyoming", "127.0.0.1:0"],
    ],
    ids=lambda argv: " ".join(argv[:3]),
)
def test_a_model_that_matches_nothing_lists_the_names(tmp_path, argv):
    write_wav(tmp_path / "x.wav", np.zeros(RATE_HZ // 2, np.int16))
    done = wakeward(*argv, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("wakeward: nope: no such model; a model is a model folder")
    assert last.endswith(NAMES_LISTED)


def test_a_one_model_command_refuses_two_and_none(tmp_path):
    done = wakeward("model", "check", "alexa", "--model", "hey_wakeward", cwd=tmp_path)
    assert done.returncode == 1
    given = "given 2: hey_wakeward, alexa"
    assert done.stderr.strip() == f"wakeward: model check takes one model; {given}"
    done = wakeward("model", "check", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("wakeward: model check: give a model: --model MODEL (")


def test_model_check_takes_a_shipped_name_a_manifest_and_prints_json(tmp_path):
    done = wakeward(
        "model", "check", "--model", "hey_wakeward", "--invocations", "3", "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # stdout holds the JSON alone
    assert report["model"] == str(models.project_dir() / "hey_wakeward" / "hey_wakeward.tflite")
    assert report["bit_exact"] is True and report["invocations"] == 3
    assert report["first_mismatch"] is None and report["ops"]["CONV_2D"] > 0
    assert "bit-exact: yes, 3 invocations" in done.stderr  # the human lines
    manifest = models.project_dir() / "wakeward_alexa" / "wakeward_alexa.json"
    done = wakeward("model", "check", str(manifest), "--invocations", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"model: {manifest.with_suffix('.tflite')} (")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> Path:
    """Speech with "hey wakeward" in it (espeak-ng), 22,050 Hz as espeak-ng writes it."""
    require_tools("espeak-ng")
    out = tmp_path_factory.mktemp("vocabulary") / "spoken.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(out), "Alexa, what time is it? hey wakeward"], check=True
    )
    return out


def test_try_runs_several_models_and_prints_json(spoken, tmp_path):
    done = wakeward(
        "try", "--model", "alexa", "--model", "hey_wakeward", str(spoken), str(spoken), "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [m["name"] for m in report["models"]] == ["alexa", "hey_wakeward"]
    assert report["models"][1]["probability_cutoff"] == pytest.approx(
        models.manifest(models.resolve("hey_wakeward"))["micro"]["probability_cutoff"]
    )
    assert report["kernels"] == "reference"
    assert [s["source"] for s in report["sources"]] == [str(spoken)] * 2
    first, second = report["sources"]
    assert first == second  # each file from a fresh start, every model on it
    assert first["seconds"] > 2
    for d in first["detections"]:
        assert d["model"] in ("alexa", "hey_wakeward") and 0 <= d["mean"] <= d["output"] <= 1
    # the human lines went to stderr: one per model, then per file and per model
    err = done.stderr.splitlines()
    assert err[0].startswith("model alexa (") and err[1].startswith("model hey_wakeward (")
    assert "alexa: " in err[-2] and ", 2 files" in err[-2]
    assert err[-1].startswith("hey_wakeward: ") and err[-1].endswith(", 2 files")
    # the older form, the model first, still works; without --json the lines are on stdout
    done = wakeward("try", "wakeward_alexa", str(spoken), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("model wakeward_alexa (")
    assert done.stdout.splitlines()[-1].startswith(f"{spoken}: ")


def test_sim_runs_a_project_model_by_name(tmp_path):
    write_wav(tmp_path / "quiet.wav", np.zeros(RATE_HZ, np.int16))
    done = wakeward("sim", "quiet.wav", "--model", "hey_wakeward", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records and {r["model"] for r in records} == {"hey_wakeward"}


# -- --json, --save, --eval-hours ----------------------------------------------------------


def test_json_is_a_flag_everywhere():
    """--json never takes a file name: it prints on stdout (a file is --save FILE)."""
    with_json = {n: options(n)["--json"] for n in COMMANDS if "--json" in options(n)}
    assert {"try", "model check", "evaluate", "devices", "sim", "clips list"} <= set(with_json)
    for name, action in with_json.items():
        assert action.nargs == 0 and action.const is True, name
    assert options("evaluate")["--save"].metavar == "FIGURES.json"


def test_eval_hours_is_one_name_in_train_and_evaluate():
    train, evaluate = options("train"), options("evaluate")
    assert shown(train["--eval-hours"]) and shown(evaluate["--eval-hours"])
    assert "--hours" not in train and not shown(evaluate["--hours"])
    assert evaluate["--hours"].dest == evaluate["--eval-hours"].dest == train["--eval-hours"].dest
    first = train["--eval-hours"].help.split(" (default")[0]
    assert first == evaluate["--eval-hours"].help.split(" (default")[0]


def test_evaluate_checks_the_hours_under_their_name(tmp_path):
    for spelling in ("--eval-hours", "--hours"):
        done = wakeward("evaluate", "--model", "alexa", "--data", ".", spelling, "0", cwd=tmp_path)
        assert done.returncode == 1
        assert done.stderr.strip() == "wakeward: --eval-hours 0.0: must be more than 0"


# -- --json on devices ----------------------------------------------------------------------


def test_devices_json(tmp_path):
    where = ("--pairing", str(tmp_path / "pairing"))
    done = wakeward("devices", "--json", *where, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    for argv in (["pair", "kitchen"], ["pair", "hall"], ["devices", "--revoke", "hall"]):
        assert wakeward(*argv, *where, cwd=tmp_path).returncode == 0
    done = wakeward("devices", "--json", *where, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {r["device_id"]: r for r in json.loads(done.stdout)}
    assert rows["kitchen"]["state"] == "paired" and rows["kitchen"]["revoked_at"] is None
    assert rows["hall"]["state"] == "revoked" and rows["hall"]["revoked_at"]
    done = wakeward("devices", "--json", "--revoke", "kitchen", *where, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "wakeward: --json lists the devices: give it without --revoke"


# -- --seconds, --heap --------------------------------------------------------------------


def test_seconds_is_how_long_a_command_runs():
    """Where --seconds shows, it stops the command after that long; record's length of a
    take is --take-seconds (its old --seconds still works, unlisted)."""
    with_seconds = {n for n in COMMANDS if shown(options(n).get("--seconds", _HIDDEN))}
    assert with_seconds == {"try", "monitor"}
    for name in with_seconds:
        assert "(default: " in options(name)["--seconds"].help
        assert "Ctrl-C" in options(name)["--seconds"].help
    record = options("record")
    assert shown(record["--take-seconds"]) and not shown(record["--seconds"])
    assert record["--seconds"].dest == record["--take-seconds"].dest


_HIDDEN = argparse.Action(["--x"], "x", help=argparse.SUPPRESS)


def test_record_take_seconds_and_its_old_spelling(tmp_path):
    speaker = ("--from-speaker", "--tcp", "127.0.0.1:7070")  # checked before any recording
    for spelling in ("--take-seconds", "--seconds"):
        done = wakeward("record", "hey", "--out", "t", *speaker, spelling, "12", cwd=tmp_path)
        assert done.returncode == 1
        assert done.stderr.strip() == (
            "wakeward: --take-seconds 12: the speaker records at most 10 s a take"
        )
    help_text = wakeward("record", "--help", cwd=tmp_path).stdout
    assert "--take-seconds S" in help_text and "--seconds" not in help_text


def test_heap_has_one_default():
    heaps = {n: options(n)["--heap"] for n in COMMANDS if "--heap" in options(n)}
    assert {"sim", "monitor", "model check", "features"} <= set(heaps)
    assert {a.default for a in heaps.values()} == {unixport.MODEL_HEAP_PROFILE}


def test_heap_default_in_help(tmp_path):
    for argv in (["sim"], ["monitor"], ["model", "check"], ["features"]):
        done = wakeward(*argv, "--help", cwd=tmp_path)
        assert f"(default: {unixport.MODEL_HEAP_PROFILE})" in " ".join(done.stdout.split())


# -- a label can be cleared ---------------------------------------------------------------


def test_a_label_can_be_cleared(tmp_path):
    folder = tmp_path / "clips"
    with ClipStore(folder) as s:
        clip = s.add(
            np.zeros(8000, "<i2").tobytes(),
            device="kitchen",
            device_clip_id=1,
            model="alexa",
            score=230,
            end_reason="end_of_speech",
            received_at=time.time(),
        ).clip
    where = ("--store", str(folder))
    done = wakeward("clips", "label", str(clip.id), "false-wake", *where, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"clip {clip.id}: labelled false-wake\n")
    done = wakeward("clips", "label", str(clip.id), "--clear", *where, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"clip {clip.id}: label cleared\n")
    with ClipStore(folder) as s:
        again = s.get(clip.id)
    assert again.label is None and again.labeled_at is None
    listed = wakeward("clips", "list", "--label", "none", "--json", *where, cwd=tmp_path)
    assert [c["id"] for c in json.loads(listed.stdout)] == [clip.id]
    for argv in ([str(clip.id)], [str(clip.id), "wake", "--clear"]):
        done = wakeward("clips", "label", *argv, *where, cwd=tmp_path)
        assert done.returncode == 1
        assert done.stderr.strip() == (
            "wakeward: clips label: give a LABEL (wake, false-wake, unsure) or --clear"
        )
