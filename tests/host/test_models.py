"""Finding a model: a pymicro-wakeword name, a .tflite file, or a `wakeward train` folder."""

from __future__ import annotations

import pytest
from wakeward import models
from wakeward.errors import WakewardError


def test_a_name_a_file_and_a_model_folder(tmp_path):
    shipped = models.resolve("alexa")
    assert shipped.name == "alexa.tflite" and shipped.is_file()
    folder = tmp_path / "hey_there"
    folder.mkdir()
    (folder / "hey_there.tflite").write_bytes(shipped.read_bytes())
    assert models.resolve(folder) == folder / "hey_there.tflite"
    assert models.resolve(folder / "hey_there.tflite") == folder / "hey_there.tflite"


def test_a_folder_without_its_model_and_a_missing_file_are_named(tmp_path):
    with pytest.raises(WakewardError, match=f"{tmp_path}: no {tmp_path.name}.tflite in the"):
        models.resolve(tmp_path)
    with pytest.raises(WakewardError, match=f"{tmp_path / 'x.tflite'}: no such model file"):
        models.resolve(tmp_path / "x.tflite")
