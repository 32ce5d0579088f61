"""Finding wake-word models, one way for every command: a model folder written by `wakeward
train` (models/NAME holding NAME.tflite and NAME.json), its NAME.tflite or NAME.json, the
name of one of the project's shipped models (the folders under the repository's models/:
hey_wakeward, wakeward_alexa) or of a model shipped in PyPI pymicro-wakeword (alexa,
hey_jarvis, hey_mycroft, okay_nabu). A shipped model's name wins over a file or folder of
the same name in the current folder (give ./NAME for that).

Every command that runs a model takes it as `--model NAME_OR_PATH` (`add_model_option`);
those that took it as their first word before (try, model check, evaluate, wake-service)
still do (`chosen`)."""

from __future__ import annotations

import argparse
import importlib.resources
import json
from pathlib import Path
from typing import Any

from wakeward.errors import WakewardError

BUILTIN = ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")  # pymicro-wakeword's

MODEL_METAVAR = "MODEL"
MODEL_HELP = (
    "a model folder (models/NAME, as `wakeward train` writes it), its NAME.tflite or "
    "NAME.json, or a shipped model's name: {names}"
)


def builtin_dir() -> Path:
    return Path(str(importlib.resources.files("pymicro_wakeword") / "models"))


def project_dir() -> Path:
    """The repository's models/ folder (the project's shipped models)."""
    return Path(__file__).resolve().parents[2] / "models"


def project_names() -> tuple[str, ...]:
    """The project's shipped models: each folder under models/ holding its NAME.tflite."""
    folder = project_dir()
    if not folder.is_dir():  # an installed package without the repository beside it
        return ()
    return tuple(sorted(d.name for d in folder.iterdir() if (d / f"{d.name}.tflite").is_file()))


def names() -> tuple[str, ...]:
    """Every name `resolve` takes for a model: the project's, then pymicro-wakeword's."""
    return (*project_names(), *BUILTIN)


def resolve(name_or_path: str | Path) -> Path:
    """The .tflite file a user means."""
    return _find(name_or_path)[0]


def resolve_with_manifest(name_or_path: str | Path) -> tuple[Path, dict[str, Any] | None]:
    """The .tflite file a user means and its manifest (None without one): the NAME.json
    given, or the one beside the model."""
    path, given = _find(name_or_path)
    return path, given if given is not None else manifest(path)


def _find(name_or_path: str | Path) -> tuple[Path, dict[str, Any] | None]:
    """The .tflite file, and the manifest when one was given (a NAME.json names its model
    file in its `model` field)."""
    text = str(name_or_path)
    if text in BUILTIN:
        return builtin_dir() / f"{text}.tflite", None
    if text in project_names():
        return project_dir() / text / f"{text}.tflite", None
    path = Path(text)
    if path.is_dir():
        inside = path / f"{path.resolve().name}.tflite"
        if not inside.is_file():
            raise WakewardError(
                f"{path}: no {inside.name} in the folder (a model folder written by "
                "`wakeward train` holds NAME.tflite and NAME.json)"
            )
        return inside, None
    if path.suffix == ".json" and path.is_file():
        data = _read_manifest(path)
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise WakewardError(f"{path}: no 'model' file named in the manifest")
        tflite = path.parent / model
        if not tflite.is_file():
            raise WakewardError(f"{tflite}: no such model file (named by {path})")
        return tflite, data
    if not path.is_file():
        bare_name = len(path.parts) == 1 and not path.suffix
        raise WakewardError(
            f"{path}: no such model{'' if bare_name else ' file'}; a model is a model folder "
            f"(models/NAME), a .tflite file or its NAME.json, or one of: {', '.join(names())}"
        )
    return path, None


def manifest(model: Path) -> dict | None:
    """The microWakeWord JSON manifest beside a model, if there is one."""
    path = model.with_suffix(".json")
    if not path.is_file():
        return None
    return _read_manifest(path)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WakewardError(f"{path}: not a readable JSON manifest ({e})") from None
    if not isinstance(data, dict):
        raise WakewardError(f"{path}: a manifest must be a JSON object")
    return data


def model_help(extra: str = "") -> str:
    """--model's help: what a model can be (and `extra`, e.g. "repeatable")."""
    text = MODEL_HELP.format(names=", ".join(names()))
    return f"{text}{'; ' + extra if extra else ''}"


def add_model_option(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    several: bool,
    positional: str | None = None,
    help_extra: str = "",
) -> None:
    """--model MODEL, repeatable where a command runs several models; `positional` (its
    nargs, "?" or "*") also takes them as the first words, as the command did before."""
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar=MODEL_METAVAR,
        help=model_help(", ".join(x for x in ("repeatable" if several else "", help_extra) if x)),
    )
    if positional is not None:
        p.add_argument(
            "model_words",
            nargs=positional,
            metavar=MODEL_METAVAR,
            help="the same as --model (the older form)",
        )


def chosen(args: argparse.Namespace, *, several: bool, command: str) -> list[str]:
    """The models a command was given: --model's and any given as its first words."""
    words = getattr(args, "model_words", None)
    if isinstance(words, str):
        words = [words]
    given = [*args.model, *(words or [])]
    if not given:
        raise WakewardError(f"{command}: give a model: --model {MODEL_METAVAR} ({model_help()})")
    if not several and len(given) > 1:
        raise WakewardError(f"{command} takes one model; given {len(given)}: {', '.join(given)}")
    return given
