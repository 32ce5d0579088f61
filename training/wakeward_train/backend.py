"""TensorFlow and Keras for the model stages (model, train, export), imported on demand.

TensorFlow is the optional `train` extra (`pip install -c constraints.txt -e '.[train]'`),
so the data stages and the rest of wakeward install and run without it. `require()` imports
it with Keras 3 on the TensorFlow backend, quiet logs, and deterministic ops, or raises a
WakewardError that says how to install it.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

from wakeward.errors import WakewardError

TENSORFLOW_VERSION = "2.21"  # the version the export's facts were checked with
INSTALL_HINT = "pip install -c constraints.txt -e '.[train]'  (or: make venv-train)"
_loaded: tuple[ModuleType, ModuleType] | None = None


def available() -> bool:
    """Whether TensorFlow is installed (without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


def require() -> tuple[ModuleType, ModuleType]:
    """(tensorflow, keras), imported once, or a WakewardError saying how to install them."""
    global _loaded
    if _loaded is not None:
        return _loaded
    if not available():
        raise WakewardError(
            "training a model needs TensorFlow, which is not installed in this environment: "
            + INSTALL_HINT
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banners
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ["TF_DETERMINISTIC_OPS"] = "1"
    import keras
    import tensorflow as tf

    if keras.config.backend() != "tensorflow":
        raise WakewardError(
            f"Keras is configured for the {keras.config.backend()!r} backend (KERAS_BACKEND or "
            "~/.keras/keras.json); the trainer needs 'tensorflow'"
        )
    if not tf.__version__.startswith(TENSORFLOW_VERSION + "."):
        raise WakewardError(
            f"TensorFlow {tf.__version__} is installed; the trainer's export is checked with "
            f"{TENSORFLOW_VERSION}.x: {INSTALL_HINT}"
        )
    tf.get_logger().setLevel("ERROR")
    tf.config.experimental.enable_op_determinism()
    _loaded = (tf, keras)
    return _loaded


def seed_everything(seed: int) -> None:
    """Python, numpy and TensorFlow generators from one seed (keras.utils.set_random_seed)."""
    _, keras = require()
    keras.utils.set_random_seed(seed)
