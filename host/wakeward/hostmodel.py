"""The device's listening pipeline on the PC, fast enough for a live microphone: the
frontend (pymicro-features, the numbers the device computes), the model on LiteRT
(PyPI ai-edge-litert, the maintained successor of tflite-runtime, which has no build for
Python 3.12 and later), three feature frames per invocation, and the device's detection
rule (`wakeward.detector.Detector`, hold-off included).

Kernels: by default LiteRT's reference kernels (`OpResolverType.BUILTIN_REF`), the code
TFLite Micro's kernels come from; over the four pymicro-wakeword models and espeak-ng
speech they give TFLite Micro's outputs to the bit, at about 50-80 us per invocation (one
invocation per 30 ms of audio). `optimized=True` takes LiteRT's default kernels (XNNPACK),
about ten times faster, whose outputs differ from TFLite Micro's by up to 14 uint8 steps
(out of 255) on some invocations (measured; see README "Trying a model").

Times are those of `wakeward sim --json`: invocation k ends at feature frame 3k + 2, at
(480 + 160 * (3k + 2)) / 16000 s into the audio.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wakeward import detector, features, models
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError

INSTALL_HINT = (
    "pip install -c constraints.txt -e . in the project (make venv installs it), or "
    "pip install ai-edge-litert"
)


@dataclass(frozen=True)
class ModelSpec:
    """A model and its detection rule (the manifest's, or given)."""

    path: Path
    name: str
    probability_cutoff: float  # 0..1, as in the manifest
    window: int  # sliding_window_size

    @property
    def cutoff_u8(self) -> int:
        return detector.cutoff_u8(self.probability_cutoff)


def model_spec(
    spec: str | Path, cutoff: float | None = None, window: int | None = None
) -> ModelSpec:
    """The model and its rule: cutoff and window from its manifest unless given (the model
    found as every command finds one: wakeward.models)."""
    path, manifest = models.resolve_with_manifest(spec)
    micro = (manifest or {}).get("micro", {})
    if not isinstance(micro, dict):
        raise WakewardError(f"{path.with_suffix('.json')}: its 'micro' field is not an object")
    if cutoff is None:
        cutoff = _manifest_value(path, micro, "probability_cutoff", "--cutoff")
    if window is None:
        window = int(_manifest_value(path, micro, "sliding_window_size", "--window"))
    if not 0.0 <= cutoff <= 1.0:
        raise WakewardError(f"probability cutoff {cutoff}: must be between 0 and 1")
    if window < 1:
        raise WakewardError(f"sliding window {window}: must be at least 1")
    return ModelSpec(path, path.stem, float(cutoff), int(window))


def _manifest_value(path: Path, micro: dict[str, Any], key: str, option: str) -> float:
    value = micro.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        where = path.with_suffix(".json")
        said = "no manifest" if not where.is_file() else f"no micro.{key} in it"
        raise WakewardError(f"{where}: {said}; give the model's {option}")
    return float(value)


def _interpreter_module() -> Any:
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        raise WakewardError(
            f"running a model on the PC needs ai-edge-litert (LiteRT): {INSTALL_HINT}"
        ) from None
    return interpreter


class HostModel:
    """One streaming model (int8 [1, 3, 40] in, uint8 out, state in resource variables)
    on LiteRT; each instance starts from the model's initial state."""

    def __init__(self, path: Path, *, optimized: bool = False) -> None:
        lite = _interpreter_module()
        kernels = lite.OpResolverType.AUTO if optimized else lite.OpResolverType.BUILTIN_REF
        try:
            self._it = lite.Interpreter(
                model_content=path.read_bytes(),
                num_threads=1,
                experimental_op_resolver_type=kernels,
            )
            self._it.allocate_tensors()
        except OSError as e:
            raise WakewardError(f"{path}: cannot read the model ({e.strerror})") from None
        except (ValueError, RuntimeError) as e:
            raise WakewardError(f"{path}: LiteRT cannot load the model ({e})") from None
        inputs, outputs = self._it.get_input_details(), self._it.get_output_details()
        shape = (1, features.MODEL_STRIDE, features.NUM_CHANNELS)
        if (
            len(inputs) != 1
            or tuple(inputs[0]["shape"]) != shape
            or inputs[0]["dtype"] != np.int8
            or len(outputs) != 1
            or int(np.prod(outputs[0]["shape"])) != 1
            or outputs[0]["dtype"] != np.uint8
        ):
            got = [(list(d["shape"]), np.dtype(d["dtype"]).name) for d in inputs + outputs]
            raise WakewardError(
                f"{path}: not a microWakeWord streaming model (int8 {list(shape)} in, one "
                f"uint8 out); its tensors: {got}"
            )
        self._input = inputs[0]["index"]
        self._output = outputs[0]["index"]
        self._shape = shape

    def invoke(self, frames: np.ndarray) -> int:
        """The uint8 output for the next 3 feature frames (int8, 3 x 40)."""
        self._it.set_tensor(self._input, frames.reshape(self._shape))
        self._it.invoke()
        return int(self._it.get_tensor(self._output).reshape(-1)[0])


@dataclass(frozen=True)
class Detection:
    t: float  # seconds into the audio
    model: str
    p: int  # the output at the detection, 0..255
    mean: float  # of the window's outputs, 0..255 (what the rule compares with the cutoff)


def invocation_time_s(k: int) -> float:
    """When invocation k's last feature frame ends, as `wakeward sim --json` stamps it."""
    frame = features.MODEL_STRIDE * k + features.MODEL_STRIDE - 1
    return (features.WINDOW_SIZE + features.WINDOW_STEP * frame) / RATE_HZ


class Listener:
    """Audio in, detections out: frontend -> model -> the device's rule, from a fresh start."""

    def __init__(
        self, spec: ModelSpec, *, optimized: bool = False, keep_outputs: bool = True
    ) -> None:
        """`keep_outputs` False: `outputs` stays empty, for a stream that never ends (a
        service), whose every output would otherwise be kept (about 1 MB an hour)."""
        self.spec = spec
        self.keep_outputs = keep_outputs
        self.invocations = 0
        self._model = HostModel(spec.path, optimized=optimized)
        self._features = features.StreamingFeatures()
        self._detector = detector.Detector(spec.cutoff_u8, spec.window)
        self._recent: deque[int] = deque([0] * spec.window, maxlen=spec.window)
        self._frames = np.zeros((0, features.NUM_CHANNELS), np.int8)
        self.samples = 0
        self.outputs: list[int] = []
        self.detections: list[Detection] = []

    @property
    def seconds(self) -> float:
        return self.samples / RATE_HZ

    def feed(self, samples: np.ndarray) -> list[Detection]:
        self.samples += len(samples)
        self._frames = np.concatenate([self._frames, self._features.feed(samples)])
        found = []
        stride = features.MODEL_STRIDE
        while len(self._frames) >= stride:
            p = self._model.invoke(self._frames[:stride])
            self._frames = self._frames[stride:]
            k = self.invocations
            self.invocations += 1
            if self.keep_outputs:
                self.outputs.append(p)
            self._recent.append(p)
            mean = sum(self._recent) / self.spec.window
            if self._detector.output(p):
                found.append(Detection(invocation_time_s(k), self.spec.name, p, mean))
                self._recent.extend([0] * self.spec.window)
        self.detections += found
        return found
