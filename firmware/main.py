# Boot entry: the only module that touches hardware. Reads config.json, opens the board
# and runs the application on it.
import json
import sys

import listen
from board import open_board

CONFIG_PATH = "config.json"


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


def main():
    config = load_config()
    board = open_board(config["board"], **config.get("board_options", {}))
    try:
        listen.run(board)
    finally:
        board.close()


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:
        print("wakeward: %s" % e)
        sys.exit(1)
