"""Fixtures shared by the host tests that run the firmware against a receiver."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_tools


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """'Alexa, what time is it?' (espeak-ng, at half level): one detection, one clip."""
    require_tools("espeak-ng", "sox")
    from wakeward import tts

    voice = tts.espeak("Alexa, what time is it?", tmp_path_factory.mktemp("tts") / "a.wav")
    return (voice.astype(np.float64) * 0.5).astype(np.int16)
