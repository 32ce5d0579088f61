"""The host's config file: defaults for the receiver when it runs as a service.

It is ``config.toml`` in ``$WAKEWARD_CONFIG_DIR``, else in the platform's user config
directory (platformdirs: ~/.config/wakeward on Linux), beside the pairing folder. Every
setting is optional, and a command-line flag always wins over it:

    store = "~/wakeward/clips"     # the clip store folder (--store), for every command
    pairing = "~/wakeward/pairing" # the pairing folder (--pairing), for every command
    listen = "0.0.0.0:7000"        # listen's and satellite's --tcp when neither --tcp
                                   # nor --serial is given

A relative path is taken from the config file's folder; `~` is the home folder. The
environment's WAKEWARD_DATA_DIR still wins over `store` (a test or a script that sets it
means it). A file that is not TOML, a setting that is not one of these, or a value of the
wrong type is refused with the file and the setting named; a missing file is no settings.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from wakeward.errors import WakewardError

CONFIG_NAME = "config.toml"
_PATHS = ("store", "pairing")  # settings that name a folder
_TEXTS = ("listen",)  # settings that are text (checked where they are used)
SETTINGS = (*_PATHS, *_TEXTS)


def config_dir() -> Path:
    """$WAKEWARD_CONFIG_DIR, else the platform's user config directory for wakeward."""
    override = os.environ.get("WAKEWARD_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("wakeward"))


def config_path() -> Path:
    return config_dir() / CONFIG_NAME


@dataclass(frozen=True)
class HostConfig:
    """The config file's settings (None: not set). `path`: the file they came from."""

    path: Path
    store: Path | None = None
    pairing: Path | None = None
    listen: str | None = None

    def error(self, field: str, problem: str) -> WakewardError:
        """The error for a setting that is wrong where it is used: file and field named."""
        return WakewardError(f"{self.path}: {field}: {problem}")


def load(path: Path | None = None) -> HostConfig:
    """The settings in `path` (default: config_path()); none where there is no file."""
    path = path if path is not None else config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return HostConfig(path)
    except UnicodeDecodeError:
        raise WakewardError(f"{path}: not a text file (UTF-8 TOML expected)") from None
    except OSError as e:
        raise WakewardError(f"{path}: cannot read ({e.strerror})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise WakewardError(f"{path}: not valid TOML: {e}") from None
    paths: dict[str, Path] = {}
    texts: dict[str, str] = {}
    for field, value in table.items():
        if field not in SETTINGS:
            raise WakewardError(
                f"{path}: {field}: not a setting (the settings: {', '.join(SETTINGS)})"
            )
        if not isinstance(value, str) or not value:
            raise WakewardError(
                f"{path}: {field}: must be a non-empty string in quotes, not {value!r}"
            )
        if field in _PATHS:
            paths[field] = _folder(path, value)
        else:
            texts[field] = value
    return HostConfig(
        path, store=paths.get("store"), pairing=paths.get("pairing"), listen=texts.get("listen")
    )


def _folder(path: Path, value: str) -> Path:
    folder = Path(value).expanduser()
    return folder if folder.is_absolute() else path.parent / folder
