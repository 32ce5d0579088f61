"""`wakeward train` without TensorFlow: a clear message, and nothing built (runs everywhere)."""

from __future__ import annotations

from wakeward import cli
from wakeward_train import backend


def test_train_without_tensorflow_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(backend, "_loaded", None)
    monkeypatch.setattr(backend, "available", lambda: False)
    out = tmp_path / "models" / "hey_test"
    code = cli.main(["train", "hey test", "--out", str(out), "--data", str(tmp_path / "d")])
    assert code == 1
    err = capsys.readouterr().err
    assert "training a model needs TensorFlow" in err
    assert "pip install -c constraints.txt -e '.[train]'" in err
    assert not out.exists() and not (tmp_path / "d").exists()


def test_train_help_names_its_outputs(capsys):
    try:
        cli.main(["train", "--help"])
    except SystemExit as e:
        assert e.code == 0
    said = capsys.readouterr().out
    for word in ("--quick", "--data", "--epochs", "--seed", "NAME.wakeward.json"):
        assert word in said


def test_fold_options_exclude_each_other_and_bad_parts_are_named(tmp_path, capsys):
    out = str(tmp_path / "models" / "m")
    try:
        cli.main(["train", "alexa", "--out", out, "--engine-folds", "--holdout-engine", "flite"])
    except SystemExit as e:
        assert e.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    code = cli.main(["train", "alexa", "--out", out, "--folds", str(tmp_path / "f")])
    assert code == 1
    assert f"--folds {tmp_path / 'f'}: only with --engine-folds" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()
    data = tmp_path / "d"
    code = cli.main(["train-data", "alexa", "--out", str(data), "--speaker-augment", "voice"])
    assert code == 1
    err = capsys.readouterr().err
    said = "--speaker-augment 'voice': say none, all, default or some of tempo,pitch,vtlp,mic,room"
    assert said in err
    assert not data.exists()
