# Boot entry: the only module that touches hardware. Reads config.json, opens the board
# and runs the application on it.
import json
import sys

import listen
from board import open_board

CONFIG_PATH = "config.json"
_DEFAULT_CUTOFF = 0.9
_DEFAULT_WINDOW = 5


class ConfigError(ValueError):
    pass


def load_config(path=CONFIG_PATH):
    try:
        with open(path) as f:
            config = json.load(f)
    except OSError:
        raise ConfigError("%s: cannot be read" % path) from None
    except ValueError as e:
        raise ConfigError("%s: not valid JSON (%s)" % (path, e)) from None
    if not isinstance(config, dict):
        raise ConfigError("%s: the top level must be an object" % path)
    board = config.get("board")
    if not isinstance(board, str):
        raise ConfigError("%s: field 'board' must be a board profile name or \"sim\"" % path)
    options = config.get("board_options", {})
    if not isinstance(options, dict):
        raise ConfigError("%s: field 'board_options' must be an object" % path)
    return config


def load_wakewords(config, say=print):
    """The configured models; a missing or broken one is reported and left out."""
    models = config.get("models", [])
    if not isinstance(models, list):
        raise ConfigError("%s: field 'models' must be a list" % CONFIG_PATH)
    if not models:
        return []
    import wakeword  # the interpreter's code costs heap: only when there are models

    loaded = []
    for i, entry in enumerate(models):
        where = "%s: models[%d]" % (CONFIG_PATH, i)
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ConfigError("%s: needs a 'path' to a .tflite file" % where)
        name = entry.get("name", entry["path"])
        cutoff = entry.get("probability_cutoff", _DEFAULT_CUTOFF)
        window = entry.get("sliding_window_size", _DEFAULT_WINDOW)
        if not isinstance(cutoff, (int, float)) or not 0 <= cutoff <= 1:
            raise ConfigError("%s: 'probability_cutoff' must be a number from 0 to 1" % where)
        if not isinstance(window, int) or window < 1:
            raise ConfigError("%s: 'sliding_window_size' must be a positive integer" % where)
        try:
            cutoff_u8 = wakeword.cutoff_u8(cutoff)
            loaded.append(wakeword.WakeWord(name, entry["path"], cutoff_u8, window))
        except (ValueError, OSError, MemoryError) as e:
            say("wakeward: model %s not loaded: %s" % (name, e))
    return loaded


def main():
    config = load_config()
    board = open_board(config["board"], **config.get("board_options", {}))
    try:
        wakewords = load_wakewords(config)
        listen.run(board, wakewords=wakewords, trace=bool(config.get("trace", False)))
    finally:
        board.close()


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:
        print("wakeward: %s" % e)
        sys.exit(1)
