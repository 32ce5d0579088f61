"""`wakeward sim --board-port`: a board to try `wakeward deploy` on, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WAKEWARD = [sys.executable, "-m", "wakeward"]


def test_deploy_to_the_sim_board_port_end_to_end(tmp_path: Path):
    flash = tmp_path / "flash"
    board = subprocess.Popen(
        [*WAKEWARD, "sim", "--board-port", "--flash", str(flash)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = board.stdout.readline() if board.stdout else ""
        assert "wakeward deploy --port " in line, line + (
            board.stderr.read() if board.stderr else ""
        )
        port = line.split("wakeward deploy --port ", 1)[1].split()[0]
        done = subprocess.run(
            [*WAKEWARD, "deploy", "--port", port, "--sim-board", "--no-reset"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert f"deploy: reading the board on {port} (waiting up to 120 s" in done.stdout
        assert "deploy: verified" in done.stdout
        assert (flash / "main.py").is_file() and (flash / "config.json").is_file()
    finally:
        board.terminate()
        board.wait(timeout=30)
