"""Finding wake-word models: a path to a .tflite file, a model folder written by `wakeward
train` (models/NAME holding NAME.tflite and NAME.json, like the project's own
models/hey_wakeward), or the name of a model shipped in PyPI pymicro-wakeword (alexa,
hey_jarvis, hey_mycroft, okay_nabu)."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

from wakeward.errors import WakewardError

BUILTIN = ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")


def builtin_dir() -> Path:
    return Path(str(importlib.resources.files("pymicro_wakeword") / "models"))


def resolve(name_or_path: str | Path) -> Path:
    """The .tflite file a user means."""
    text = str(name_or_path)
    if text in BUILTIN:
        return builtin_dir() / f"{text}.tflite"
    path = Path(text)
    if path.is_dir():
        inside = path / f"{path.resolve().name}.tflite"
        if not inside.is_file():
            raise WakewardError(
                f"{path}: no {inside.name} in the folder (a model folder written by "
                "`wakeward train` holds NAME.tflite and NAME.json)"
            )
        return inside
    if not path.is_file():
        raise WakewardError(f"{path}: no such model file (or give one of: {', '.join(BUILTIN)})")
    return path


def manifest(model: Path) -> dict | None:
    """The microWakeWord JSON manifest beside a model, if there is one."""
    path = model.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise WakewardError(f"{path}: not a readable JSON manifest ({e})") from None
    if not isinstance(data, dict):
        raise WakewardError(f"{path}: a manifest must be a JSON object")
    return data
