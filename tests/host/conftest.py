"""Fixtures shared by the host tests that run the firmware against a receiver."""

from __future__ import annotations

import os

import numpy as np
import pytest
from wakeward import pairing

from tests.conftest import require_tools


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """'Alexa, what time is it?' (espeak-ng, at half level): one detection, one clip."""
    require_tools("espeak-ng", "sox")
    from wakeward import tts

    voice = tts.espeak("Alexa, what time is it?", tmp_path_factory.mktemp("tts") / "a.wav")
    return (voice.astype(np.float64) * 0.5).astype(np.int16)


@pytest.fixture(scope="module")
def identities(tmp_path_factory) -> tuple[pairing.Pairing, pairing.Pairing]:
    """This receiver's pairing folder (its identity, no device yet) and another one's."""
    mine = pairing.Pairing(tmp_path_factory.mktemp("pairing") / "p")
    other = pairing.Pairing(tmp_path_factory.mktemp("other") / "p")
    mine.ensure_identity()
    other.ensure_identity()
    return mine, other


@pytest.fixture
def pairs(identities, tmp_path) -> pairing.Pairing:
    """A pairing folder with this receiver's identity and no paired device."""
    folder = tmp_path / "pairing"
    folder.mkdir(mode=0o700)
    for src in (identities[0].key_path, identities[0].cert_path):
        (folder / src.name).write_bytes(src.read_bytes())
        os.chmod(folder / src.name, 0o600)
    return pairing.Pairing(folder)
