"""The wake-word model: one definition, built as two Keras 3 graphs over the same layers.

- `Net.nonstreaming()`: input (batch, frames, 40) float features, any number of frames;
  output (batch, steps) probabilities, one per 3 frames once the receptive field is full.
  Training feeds windows of exactly `receptive_frames` frames (one output each); evaluation
  feeds whole clips (an output at every step, as the device would produce them).
- `Net.streaming()`: input (1, 3, 40), output (1, 1): the microWakeWord v2 interface. Each
  temporal layer keeps the frames (or steps) it still needs from earlier calls in a
  `RingBuffer`, a non-trainable variable that the call reads, concatenates with the new
  input and re-assigns (READ_VARIABLE, CONCATENATION, STRIDED_SLICE, ASSIGN_VARIABLE after
  conversion), as microWakeWord's streaming layers do.

Both graphs call the very same layer objects, so they share every weight: nothing is copied.

The architecture (microWakeWord's "inception"/mixednet spirit, kept small for the device):

    features (T, 40) as (T, 1, 40) NHWC, time on H
    Conv2D first_filters, kernel (first_kernel, 1), stride (3, 1), ReLU  -- one step per
        3 frames, the device's invocation rate
    per block (kernel k, channels c): DepthwiseConv2D (k, 1) over time, Conv2D 1x1 to c,
        BatchNormalization, ReLU
    Conv2D 1 filter, kernel (head_steps, 1): a dense layer over the last head_steps steps
    sigmoid

All convolutions are "valid" in time, so the output at a step depends on the last
`receptive_frames` frames only; the streaming model reproduces the non-streaming one
exactly once its buffers are full (`warmup_steps` invocations).

Ops after int8 conversion: CONV_2D, DEPTHWISE_CONV_2D, RESHAPE, CONCATENATION,
STRIDED_SLICE, LOGISTIC, QUANTIZE, CALL_ONCE, VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE
(BatchNormalization folds into the 1x1 convolutions): all supported by the device.

Input scale: the device feeds ESPHome's int8 features q; the converted model reads them as
`(q + 128) * INPUT_SCALE` (scale 26/255, zero point -128, like the microWakeWord models),
so training uses exactly those floats (`to_float`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from wakeward.errors import WakewardError

from wakeward_train.backend import require

FEATURES = 40
STRIDE = 3  # frames per device invocation ([1, 3, 40])
INPUT_MAX = 26.0  # float feature range 0..26 (microWakeWord); int8 -128..127 maps onto it
INPUT_SCALE = np.float32(INPUT_MAX / 255.0)  # 0.10196079
INPUT_ZERO_POINT = -128


def to_float(features_int8: np.ndarray) -> np.ndarray:
    """The floats the int8 model sees for int8 features: (q + 128) * 26/255."""
    q = np.asarray(features_int8)
    if q.dtype != np.int8:
        raise WakewardError(f"features must be int8, got {q.dtype}")
    return (q.astype(np.float32) + 128.0) * INPUT_SCALE


@dataclass(frozen=True)
class ModelConfig:
    first_filters: int = 24
    first_kernel: int = 5  # frames; >= STRIDE
    blocks: tuple[tuple[int, int], ...] = ((5, 40), (9, 40), (13, 40), (17, 40))  # (k, c)
    head_steps: int = 5  # steps the final dense layer looks at
    dropout: float = 0.1  # before the head, training only

    def check(self) -> None:
        if self.first_kernel < STRIDE:
            raise WakewardError(f"model first_kernel {self.first_kernel} < stride {STRIDE}")
        if self.first_filters < 1 or self.head_steps < 1:
            raise WakewardError("model first_filters and head_steps must be >= 1")
        for k, c in self.blocks:
            if k < 1 or c < 1:
                raise WakewardError(f"model block ({k}, {c}): kernel and channels must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise WakewardError(f"model dropout {self.dropout} is not in [0, 1)")

    @property
    def receptive_steps(self) -> int:
        """Invocations that feed one output (the first conv's step counts as one)."""
        return 1 + sum(k - 1 for k, _ in self.blocks) + self.head_steps - 1

    @property
    def receptive_frames(self) -> int:
        """Feature frames behind one output: a training window's length."""
        return self.first_kernel + STRIDE * (self.receptive_steps - 1)

    @property
    def warmup_steps(self) -> int:
        """Streaming invocations before the buffers hold only real input: outputs from
        this invocation on (0-based) equal the non-streaming model's."""
        return -(-self.receptive_frames // STRIDE) - 1

    @property
    def alignment(self) -> int:
        """Leading frames to drop from a stream so that the non-streaming model's outputs
        fall where the device's invocations end (every 3rd frame, counted from 0)."""
        return (STRIDE - self.first_kernel) % STRIDE

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"] = [list(b) for b in self.blocks]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelConfig:
        try:
            return cls(
                first_filters=int(d["first_filters"]),
                first_kernel=int(d["first_kernel"]),
                blocks=tuple((int(k), int(c)) for k, c in d["blocks"]),
                head_steps=int(d["head_steps"]),
                dropout=float(d["dropout"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise WakewardError(f"model config: bad or missing field ({e})") from None


QUICK_CONFIG = ModelConfig(first_filters=8, blocks=((5, 12), (9, 12)), head_steps=3)


def _ring_buffer_class() -> type:
    _, keras = require()

    class RingBuffer(keras.layers.Layer):  # type: ignore[name-defined]
        """Streaming memory of the last `keep` time steps before the new input: returns
        concat(state, x) along time and keeps its last `keep` steps for the next call."""

        def __init__(self, keep: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.keep = keep

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            batch, _, width, channels = input_shape
            if batch is None:
                raise WakewardError("a streaming buffer needs a fixed batch size")
            self.state = self.add_weight(
                shape=(batch, self.keep, width, channels),
                initializer="zeros",
                trainable=False,
                name="state",
            )

        def call(self, x: Any) -> Any:
            y = keras.ops.concatenate([self.state, x], axis=1)
            self.state.assign(y[:, -self.keep :])
            return y

        def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple:
            b, t, w, c = input_shape
            return (b, None if t is None else t + self.keep, w, c)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "keep": self.keep}

    return RingBuffer


class Net:
    """The layers of one model; `nonstreaming()` and `streaming()` wire them into graphs."""

    def __init__(self, config: ModelConfig) -> None:
        config.check()
        _, keras = require()
        L = keras.layers
        self.config = config
        self.first = L.Conv2D(
            config.first_filters,
            (config.first_kernel, 1),
            strides=(STRIDE, 1),
            padding="valid",
            activation="relu",
            name="first_conv",
        )
        self.blocks = []
        for n, (k, c) in enumerate(config.blocks):
            self.blocks.append(
                (
                    k,
                    L.DepthwiseConv2D((k, 1), padding="valid", name=f"block{n}_depthwise"),
                    L.Conv2D(c, (1, 1), use_bias=False, name=f"block{n}_pointwise"),
                    L.BatchNormalization(momentum=0.9, name=f"block{n}_norm"),
                    L.ReLU(name=f"block{n}_relu"),
                )
            )
        self.dropout = L.Dropout(config.dropout, name="dropout")
        self.head = L.Conv2D(1, (config.head_steps, 1), padding="valid", name="head")
        self.sigmoid = L.Activation("sigmoid", name="probability")

    def _trunk(self, x: Any, buffer: Any = None) -> Any:
        """The layers after the input reshape; `buffer(keep, name)` wraps a temporal layer's
        input in a RingBuffer when streaming."""
        cfg = self.config
        if buffer is not None:
            x = buffer(cfg.first_kernel - STRIDE, "first_conv")(x)
        x = self.first(x)
        for k, depthwise, pointwise, norm, relu in self.blocks:
            if buffer is not None:
                x = buffer(k - 1, depthwise.name)(x)
            x = relu(norm(pointwise(depthwise(x))))
        x = self.dropout(x)
        if buffer is not None:
            x = buffer(cfg.head_steps - 1, "head")(x)
        return self.head(x)

    def nonstreaming(self) -> Any:
        """(batch, frames, 40) -> (batch, steps) probabilities."""
        _, keras = require()
        L = keras.layers
        inp = keras.Input((None, FEATURES), name="features")
        x = L.Reshape((-1, 1, FEATURES), name="to_nhwc")(inp)
        x = self._trunk(x)
        x = L.Reshape((-1,), name="to_steps")(x)
        return keras.Model(inp, self.sigmoid(x), name="wakeword")

    def streaming(self) -> Any:
        """(1, 3, 40) -> (1, 1): one invocation; the state lives in the RingBuffers."""
        _, keras = require()
        L = keras.layers
        ring = _ring_buffer_class()

        def buffer(keep: int, name: str) -> Any:
            if keep <= 0:
                return lambda x: x
            return ring(keep, name=f"stream_{name}")

        inp = keras.Input((STRIDE, FEATURES), batch_size=1, name="input_audio")
        x = L.Reshape((STRIDE, 1, FEATURES), name="stream_to_nhwc")(inp)
        x = self._trunk(x, buffer)
        x = L.Reshape((1,), name="stream_to_output")(x)
        return keras.Model(inp, self.sigmoid(x), name="wakeword_streaming")

    def reset_streaming(self, streaming: Any) -> None:
        """Zero every RingBuffer of a streaming model (a fresh stream)."""
        for layer in streaming.layers:
            state = getattr(layer, "state", None)
            if state is not None:
                state.assign(np.zeros(state.shape, dtype="float32"))

    def count_params(self) -> int:
        return int(self.nonstreaming().count_params())


def numpy_of(tensor: Any) -> np.ndarray:
    """A model output as numpy (keras.ops.convert_to_numpy: np.asarray warns on numpy 2)."""
    _, keras = require()
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def run_streaming(streaming: Any, features: np.ndarray) -> np.ndarray:
    """Float streaming outputs over int8 features (frames, 40), one per 3 frames (a last
    partial group is dropped, as the device waits for it)."""
    steps = len(features) // STRIDE
    x = to_float(np.asarray(features[: steps * STRIDE])).reshape(steps, 1, STRIDE, FEATURES)
    out = np.empty(steps, dtype=np.float32)
    for n in range(steps):
        out[n] = float(numpy_of(streaming(x[n], training=False))[0, 0])
    return out


def run_nonstreaming(model: Any, features: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Float non-streaming outputs over one stream of int8 features (frames, 40), aligned
    with the streaming invocations: element j is invocation `config.warmup_steps + j`."""
    x = to_float(np.asarray(features[config.alignment :]))
    if len(x) < config.receptive_frames:
        return np.zeros(0, dtype=np.float32)
    return numpy_of(model(x[None], training=False))[0]
