"""TensorFlow and Keras for the model stages (model, train, export), imported on demand.

TensorFlow is the optional `train` extra (`pip install -c constraints.txt -e '.[train]'`),
so the data stages and the rest of wakeward install and run without it. `require()` imports
it with Keras 3 on the TensorFlow backend, quiet logs, and deterministic ops, or raises a
WakewardError that says how to install it. `quiet()` keeps TensorFlow's C++ log lines off
the terminal for a whole run (`wakeward train --verbose` shows them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

from wakeward.errors import WakewardError

TENSORFLOW_VERSION = "2.21"  # the version the export's facts were checked with
INSTALL_HINT = "pip install -c constraints.txt -e '.[train]'  (or: make venv-train)"
_loaded: tuple[ModuleType, ModuleType] | None = None
_verbose = False  # quiet(verbose=True): TensorFlow's own log lines are shown
# What TensorFlow's C++ side writes to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says
# (2.21 logs through absl before absl::InitializeLog): its start-up lines, once per library
# that loads (the oneDNN note among them), absl's info and warning lines (the converter's,
# tf.data's "end of sequence"), and the converter's print of its flags. Errors (E..., F...)
# and anything else still go through.
NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    r"|fully_quantize: \d+, inference_type: "
)
_PIPE_READ_BYTES = 65536
_FILTER_JOIN_S = 2.0  # a child that outlived the run may hold the pipe: do not wait on it


@contextlib.contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """TensorFlow without its noise, unless `verbose`: its Python loggers at ERROR (set by
    require()), and file descriptor 2 through a filter that drops NOISE lines (C++ writes
    there directly) and passes every other line at once."""
    global _verbose
    _verbose = verbose
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_filter, args=(read_end, saved), daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end here closes: the filter sees its end
        thread.join(_FILTER_JOIN_S)
        os.close(saved)


def _filter(read_end: int, out: int) -> None:
    """Copy whole lines from `read_end` to `out`, NOISE left out."""
    held = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(_PIPE_READ_BYTES):
            *lines, held = (held + chunk).split(b"\n")
            kept = [x for x in lines if not NOISE.match(x.decode(errors="replace"))]
            if kept:
                os.write(out, b"".join(x + b"\n" for x in kept))
    if held and not NOISE.match(held.decode(errors="replace")):
        os.write(out, held)


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
    if not _verbose:
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
    if not _verbose:
        tf.get_logger().setLevel("ERROR")
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    tf.config.experimental.enable_op_determinism()
    _loaded = (tf, keras)
    return _loaded


def seed_everything(seed: int) -> None:
    """Python, numpy and TensorFlow generators from one seed (keras.utils.set_random_seed)."""
    _, keras = require()
    keras.utils.set_random_seed(seed)
