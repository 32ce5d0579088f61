"""The seeded fuzz tests' knobs: the suite runs each for seconds; a longer run multiplies
their inputs (and time limits) by WAKEWARD_FUZZ_SCALE and picks another seed with
WAKEWARD_FUZZ_SEED, e.g.

    WAKEWARD_FUZZ_SCALE=50 WAKEWARD_FUZZ_SEED=7 .venv/bin/python -m pytest -s \\
        tests/host/test_audio.py tests/firmware/test_tflm_fuzz.py tests/firmware/test_config_fuzz.py

(the receiver's fuzzers, tests/host/test_receiver_fuzz.py, run for WAKEWARD_FUZZ_S seconds)."""

from __future__ import annotations

import os

SCALE = max(1, int(os.environ.get("WAKEWARD_FUZZ_SCALE", "1")))


def seed(default: int) -> int:
    """The test's own seed, or WAKEWARD_FUZZ_SEED."""
    return int(os.environ.get("WAKEWARD_FUZZ_SEED", str(default)))
