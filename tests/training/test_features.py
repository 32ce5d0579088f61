"""Training features are the device's numbers: bit-exact with `wakeward.features` (the PC
reference) and with the device frontend itself on the MicroPython unix port."""

from __future__ import annotations

import numpy as np
import pytest
from wakeward import features as wf
from wakeward.errors import WakewardError
from wakeward_train import augment
from wakeward_train.augment import Augmentation
from wakeward_train.features import FeatureStore, clip_features, frame_at, load_split

from tests.training.test_augment import speechlike


@pytest.fixture(scope="module")
def augmented_clip() -> np.ndarray:
    """A reverberant, noisy, level-shifted clip whose length is not a multiple of 160."""
    aug = Augmentation(1.07, 0.45, 2.0, "pink", 8.0, -24.0, 0.6, 0.25)
    clip = augment.apply(speechlike(1.1, 3), aug, np.random.default_rng(11)).samples
    return clip[:-53]


def test_features_equal_the_project_reference(augmented_clip):
    got = clip_features(augmented_clip)
    want = wf.esphome_int8(wf.reference_uint16(augmented_clip))
    assert got.dtype == np.int8 and got.shape == (len(augmented_clip) // 160 - 2, 40)
    assert got.tobytes() == want.tobytes()
    assert got.max() > 60 and got.min() < -60  # speech and quiet both in range


def test_features_equal_the_device_frontend(augmented_clip):
    """The firmware frontend on the unix port (what the speaker runs) gives the same bytes."""
    device = wf.device_features(augmented_clip, heap="esp32s3-psram")
    assert clip_features(augmented_clip).tobytes() == device.tobytes()


def test_features_refuse_anything_but_int16_mono():
    with pytest.raises(WakewardError, match="1-D int16"):
        clip_features(np.zeros(1600, np.float32))


def test_frame_at_finds_the_first_window_reaching_a_sample():
    # frame k's window is samples [160 k, 160 k + 480)
    assert [frame_at(s) for s in (0, 479, 480, 639, 640, 800)] == [0, 0, 1, 1, 2, 3]


def test_store_writes_one_memory_mappable_array(tmp_path):
    store = FeatureStore(tmp_path / "features" / "train.npy")
    a = np.full((5, 40), 3, np.int8)
    b = np.arange(80, dtype=np.int8).reshape(2, 40)
    assert store.add(a) == 0 and store.add(b) == 5
    path = store.close()
    data = load_split(path)
    assert isinstance(data, np.memmap) and data.shape == (7, 40)
    assert np.array_equal(data[5:7], b)
    with pytest.raises(WakewardError, match="int8 \\(frames, 40\\)"):
        store.add(np.zeros((3, 39), np.int8))
    (tmp_path / "bad.npy").write_bytes(b"nope")
    with pytest.raises(WakewardError, match="bad.npy: not a readable"):
        load_split(tmp_path / "bad.npy")
