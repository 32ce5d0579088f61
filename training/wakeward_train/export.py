"""Export the trained model as a streaming, fully int8 TFLite model, and verify it.

Conversion (TensorFlow 2.21; each step is what made the export work, see issue 7):

- the streaming Keras model (`Net.streaming()`, state zeroed) is saved through
  `keras.export.ExportArchive` (a Keras 3 model saved with `tf.saved_model.save` keeps its
  weights as variables and calibration fails);
- `TFLiteConverter.from_saved_model` with `_experimental_variable_quantization = True`
  (otherwise the streaming state stays float32 behind DEQUANTIZE/QUANTIZE ops: 4x the RAM,
  and ops the device does not run), int8 builtins only, `inference_input_type = int8`,
  `inference_output_type = uint8`;
- a representative dataset of consecutive [1, 3, 40] chunks in stream order (the state
  variables are calibrated by running through it), ~16,000 of them, that contains the
  feature values 0 and 26 (int8 -128 and 127), so the input quantization comes out as
  scale 26/255 = 0.10196079, zero point -128, like the microWakeWord models.

Verification (each failure is a WakewardError naming the model file):

- `inspect`: only ops the device interpreter supports, no DEQUANTIZE, no float tensors,
  input int8 [1, 3, 40] with that scale and zero point, output uint8 [1, 1];
- `agreement`: TFLite Micro (the reference the device matches) over a held-out stream
  against the Keras non-streaming model, compared once the receptive field is full, as
  the logit difference where either model is unsure and the largest |dp|; a
  conversion that disagrees is made again from another calibration sample (at most
  CALIBRATION_TRIES in all: the int8 ranges depend on the sample, and a short or unlucky
  one can clip the state of a small model), and only then refused;
- the bit-exact check of the device interpreter against TFLite Micro is
  `wakeward.modelcheck.check` (run by the pipeline after the manifest is written).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from wakeward.errors import WakewardError

from wakeward_train.backend import require
from wakeward_train.dataset import HELDOUT, TRAIN, Dataset
from wakeward_train.model import (
    FEATURES,
    INPUT_SCALE,
    INPUT_ZERO_POINT,
    STRIDE,
    ModelConfig,
    Net,
    run_nonstreaming,
    to_float,
)

CALIBRATION_CHUNKS = 16_000
# int8 streaming vs float Keras. A wrong conversion (state lost, wrong scales, other weights)
# moves the logit by whole units (5.2 RMS for one model's int8 file against another's Keras
# model); quantization noise moves it by a few tenths (0.21-0.29 RMS on the trained models,
# about one step of the int8 logit). In probability that noise shows only where the sigmoid
# is steep, so a percentile of |dp| over a stream says more about how many invocations sit
# between 0 and 1 (4% of them for hey wakeward, 9% for alexa) than about the conversion.
# So the check is the logit difference (RMS) over the invocations where either model is
# unsure, and the largest |dp| anywhere.
AGREEMENT_LOGIT_RMS_LIMIT = 0.5
AGREEMENT_MAX_LIMIT = 0.4
UNSURE_P = (0.05, 0.95)  # a probability in here is unsure
MIN_UNSURE = 20  # fewer unsure invocations than this: no logit RMS (too few to judge)
# Calibration samples tried before a model is refused; try k draws its chunks with
# seed + k * CALIBRATION_SEED_STEP (try 0 is the run's own seed).
CALIBRATION_TRIES = 3
CALIBRATION_SEED_STEP = 1000
# The device interpreter's ops (firmware/tflm/interpreter.py).
SUPPORTED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "ADD",
        "MUL",
        "MEAN",
        "RESHAPE",
        "CONCATENATION",
        "STRIDED_SLICE",
        "SPLIT_V",
        "LOGISTIC",
        "QUANTIZE",
        "CALL_ONCE",
        "VAR_HANDLE",
        "READ_VARIABLE",
        "ASSIGN_VARIABLE",
    }
)
ALLOWED_TENSOR_TYPES = frozenset({"INT8", "UINT8", "INT32", "RESOURCE"})
OUTPUT_SCALE = 1.0 / 256.0  # uint8 probability: p = q / 256
ARENA_MARGIN = 1.15  # manifest arena = TFLite Micro's measured need (64-bit) + 15%


# -- calibration data --------------------------------------------------------------------


def stream_of(data: Dataset, split: str, frames: int, seed: int) -> np.ndarray:
    """int8 (frames, 40): the split's clips end to end in a seeded order (repeated in new
    orders when the split is shorter), as one continuous stream."""
    records = [r for r in data.records if r.split == split and r.frames > 0]
    if not records:
        raise WakewardError(f"{data.path}: the {split} split has no clips to stream")
    parts: list[np.ndarray] = []
    have = 0
    rnd = 0
    while have < frames:
        order = np.random.default_rng([seed, 0x737472, rnd]).permutation(len(records))
        for i in order:
            clip = data.clip(records[i])
            parts.append(np.asarray(clip))
            have += len(clip)
            if have >= frames:
                break
        rnd += 1
    return np.concatenate(parts)[:frames]


def calibration_chunks(data: Dataset, count: int, seed: int) -> tuple[np.ndarray, bool]:
    """(int8 chunks (count, 3, 40) in stream order, whether the extremes had to be set).

    The input's quantization is taken from the range calibration sees: it must see exactly
    int8 -128 and 127 (features 0 and 26). Real streams nearly always hold -128 (silence);
    where one lacks either, one value of the first chunk is set to it."""
    stream = stream_of(data, TRAIN, count * STRIDE, seed)
    chunks = np.array(stream.reshape(count, STRIDE, FEATURES))
    forced = False
    if not (chunks == -128).any():
        chunks[0, 0, 0] = -128
        forced = True
    if not (chunks == 127).any():
        chunks[0, 0, 1] = 127
        forced = True
    return chunks, forced


# -- conversion --------------------------------------------------------------------------


def convert(net: Net, chunks: np.ndarray) -> bytes:
    """The streaming model as fully int8 TFLite flatbuffer bytes."""
    tf, keras = require()
    streaming = net.streaming()
    net.reset_streaming(streaming)  # the initial state written into the model: zeros
    floats = to_float(chunks).reshape(len(chunks), 1, STRIDE, FEATURES)

    def representative() -> Any:
        for c in floats:
            yield [c]

    with tempfile.TemporaryDirectory(prefix="wakeward-export-") as tmp:
        archive = keras.export.ExportArchive()
        archive.track(streaming)
        archive.add_endpoint(
            name="serve",
            fn=lambda x: streaming(x, training=False),
            input_signature=[tf.TensorSpec((1, STRIDE, FEATURES), tf.float32, name="input_audio")],
        )
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter._experimental_variable_quantization = True
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.uint8
        converter.representative_dataset = representative
        from tensorflow.lite.python.convert_phase import ConverterError

        try:
            flatbuffer = converter.convert()
        except (ConverterError, ValueError, RuntimeError) as e:
            raise WakewardError(f"TFLite conversion failed: {type(e).__name__}: {e}") from None
    net.reset_streaming(streaming)
    return bytes(flatbuffer)


# -- inspection --------------------------------------------------------------------------


@dataclass
class ModelFacts:
    ops: dict[str, int]  # subgraph 0
    init_ops: dict[str, int]  # the other subgraphs (the CALL_ONCE initialiser)
    tensor_types: list[str]
    input_shape: list[int]
    input_type: str
    input_scale: float
    input_zero_point: int
    output_shape: list[int]
    output_type: str
    output_scale: float
    output_zero_point: int
    state_bytes: int  # the streaming state: every variable's initial value
    problems: list[str] = field(default_factory=list)


def inspect(flatbuffer: bytes) -> ModelFacts:
    """What the flatbuffer holds, and what in it the device could not run."""
    require()
    from tensorflow.lite.python import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    def code(op: Any) -> str:
        oc = m.operatorCodes[op.opcodeIndex]
        return op_names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode), "CUSTOM")

    def count(sg: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in sg.operators or []:
            out[code(op)] = out.get(code(op), 0) + 1
        return dict(sorted(out.items()))

    main = m.subgraphs[0]
    types = sorted({type_names.get(t.type, str(t.type)) for sg in m.subgraphs for t in sg.tensors})
    inp = main.tensors[main.inputs[0]]
    out = main.tensors[main.outputs[0]]

    def quant(t: Any) -> tuple[float, int]:
        q = t.quantization
        if q is None or q.scale is None or not len(q.scale):
            return 0.0, 0
        return float(q.scale[0]), int(q.zeroPoint[0])

    state = 0
    for sg in m.subgraphs[1:]:
        for op in sg.operators or []:
            if code(op) == "ASSIGN_VARIABLE":
                t = sg.tensors[op.inputs[1]]
                state += int(np.prod(t.shape))
    facts = ModelFacts(
        ops=count(main),
        init_ops={k: v for sg in m.subgraphs[1:] for k, v in count(sg).items()},
        tensor_types=types,
        input_shape=[int(d) for d in inp.shape],
        input_type=type_names.get(inp.type, "?"),
        input_scale=quant(inp)[0],
        input_zero_point=quant(inp)[1],
        output_shape=[int(d) for d in out.shape],
        output_type=type_names.get(out.type, "?"),
        output_scale=quant(out)[0],
        output_zero_point=quant(out)[1],
        state_bytes=state,
    )
    p = facts.problems
    unsupported = sorted((set(facts.ops) | set(facts.init_ops)) - SUPPORTED_OPS)
    if unsupported:
        p.append(f"ops the device interpreter does not support: {', '.join(unsupported)}")
    bad_types = sorted(set(types) - ALLOWED_TENSOR_TYPES)
    if bad_types:
        p.append(f"tensors of type {', '.join(bad_types)} (only int8/uint8/int32 allowed)")
    if facts.input_shape != [1, STRIDE, FEATURES] or facts.input_type != "INT8":
        p.append(f"input {facts.input_type} {facts.input_shape}, expected INT8 [1, 3, 40]")
    if (
        np.float32(facts.input_scale) != INPUT_SCALE  # to the bit
        or facts.input_zero_point != INPUT_ZERO_POINT
    ):
        p.append(
            f"input quantization scale {facts.input_scale:.8f} zero point "
            f"{facts.input_zero_point}, expected {float(INPUT_SCALE):.8f} / {INPUT_ZERO_POINT} "
            "(the representative data must hold features 0 and 26)"
        )
    if facts.output_shape != [1, 1] or facts.output_type != "UINT8":
        p.append(f"output {facts.output_type} {facts.output_shape}, expected UINT8 [1, 1]")
    elif abs(facts.output_scale - OUTPUT_SCALE) > 1e-9 or facts.output_zero_point != 0:
        p.append(
            f"output quantization {facts.output_scale} / {facts.output_zero_point}, "
            "expected 1/256 / 0"
        )
    return facts


# -- running it as the reference does ---------------------------------------------------


class Reference:
    """TFLite Micro (PyPI tflite-micro) running the model: what the device must equal."""

    def __init__(self, flatbuffer: bytes) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self._it = runtime.Interpreter.from_bytes(flatbuffer)

    def reset(self) -> None:
        self._it.reset()

    def run(self, chunks: np.ndarray) -> np.ndarray:
        """uint8 outputs, one per (3, 40) int8 chunk, continuing the current state."""
        out = np.empty(len(chunks), np.uint8)
        for k, c in enumerate(chunks):
            self._it.set_input(c.reshape(1, STRIDE, FEATURES), 0)
            self._it.invoke()
            out[k] = self._it.get_output(0).reshape(-1)[0]
        return out


@dataclass
class Agreement:
    invocations: int  # compared (after the receptive field is full)
    max_abs_diff: float  # probability
    mean_abs_diff: float
    p99_abs_diff: float
    worst_invocation: int
    unsure: int  # invocations where either model's probability is in UNSURE_P
    logit_rms: float | None  # RMS of int8 - float logit over them (None: under MIN_UNSURE)

    def problems(self) -> list[str]:
        """Why the int8 model does not agree with the float one (nothing when it does)."""
        out = []
        if self.logit_rms is not None and self.logit_rms > AGREEMENT_LOGIT_RMS_LIMIT:
            out.append(
                f"logit difference {self.logit_rms:.3f} RMS over the {self.unsure} invocations "
                f"where a model is unsure (limit {AGREEMENT_LOGIT_RMS_LIMIT})"
            )
        if self.max_abs_diff > AGREEMENT_MAX_LIMIT:
            out.append(
                f"largest |dp| {self.max_abs_diff:.3f} (limit {AGREEMENT_MAX_LIMIT}) at "
                f"invocation {self.worst_invocation}"
            )
        return out

    def rank(self) -> tuple[float, float]:
        """For keeping the closest of several disagreeing conversions: lower is closer."""
        return (self.logit_rms or 0.0, self.max_abs_diff)


def _logit(p: np.ndarray) -> np.ndarray:
    # the uint8 output reaches 0 and 255/256: held half a step inside (0, 1)
    q = np.clip(p, 0.5 * OUTPUT_SCALE, 1.0 - 0.5 * OUTPUT_SCALE)
    return np.log(q / (1.0 - q))


def compare(p_int8: np.ndarray, p_float: np.ndarray, first: int = 0) -> Agreement:
    """Agreement of two aligned probability series; `first` numbers the first invocation."""
    diff = np.abs(p_int8 - p_float)
    unsure = np.zeros(len(diff), bool)
    for p in (p_int8, p_float):
        unsure |= (p > UNSURE_P[0]) & (p < UNSURE_P[1])
    count = int(np.count_nonzero(unsure))
    rms = None
    if count >= MIN_UNSURE:
        d = _logit(p_int8[unsure]) - _logit(p_float[unsure])
        rms = round(float(np.sqrt(np.mean(d * d))), 4)
    return Agreement(
        invocations=len(diff),
        max_abs_diff=round(float(diff.max()), 5),
        mean_abs_diff=round(float(diff.mean()), 5),
        p99_abs_diff=round(float(np.quantile(diff, 0.99)), 5),
        worst_invocation=int(first + np.argmax(diff)),
        unsure=count,
        logit_rms=rms,
    )


def agreement(flatbuffer: bytes, model: Any, config: ModelConfig, stream: np.ndarray) -> Agreement:
    """int8 streaming (TFLite Micro) against float non-streaming (Keras) over one stream,
    from the first invocation whose receptive field lies inside the stream."""
    steps = len(stream) // STRIDE
    ref = Reference(flatbuffer)
    q = ref.run(stream[: steps * STRIDE].reshape(steps, STRIDE, FEATURES))
    p_int8 = q.astype(np.float64) * OUTPUT_SCALE
    p_float = run_nonstreaming(model, stream, config).astype(np.float64)
    first = config.warmup_steps
    n = min(len(p_float), steps - first)
    if n <= 0:
        raise WakewardError(f"agreement check: a stream of {len(stream)} frames is too short")
    return compare(p_int8[first : first + n], p_float[:n], first)


_ARENA_PROBE = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(), arena_size=1 << 20)
it.set_input(np.zeros((1, 3, 40), np.int8), 0)
it.invoke()
it.print_allocations()
"""


def tflm_arena_bytes(model: Path) -> int:
    """The arena TFLite Micro allocates for the model on this (64-bit) PC, from its
    RecordingMicroAllocator (printed by C code, hence a child process)."""
    done = subprocess.run(
        [sys.executable, "-c", _ARENA_PROBE, str(model)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r"Arena allocation total (\d+) bytes", done.stdout + done.stderr)
    if done.returncode != 0 or not found:
        raise WakewardError(
            f"{model}: TFLite Micro could not allocate the model: "
            f"{(done.stdout + done.stderr).strip()[-400:]}"
        )
    return int(found.group(1))


def manifest_arena_bytes(tflm_bytes: int) -> int:
    """tensor_arena_size for the manifest: the measured need plus a margin, to 16 bytes."""
    return int(-(-tflm_bytes * ARENA_MARGIN // 16) * 16)


# -- the whole export --------------------------------------------------------------------


@dataclass
class ExportReport:
    path: Path
    model_bytes: int
    facts: ModelFacts
    calibration_chunks: int
    calibration_extremes_forced: bool
    calibration_sample: int  # 1 unless earlier samples gave a disagreeing model
    agreement: Agreement
    tflm_arena_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "model_bytes": self.model_bytes,
            "ops": self.facts.ops,
            "init_ops": self.facts.init_ops,
            "tensor_types": self.facts.tensor_types,
            "input": {
                "shape": self.facts.input_shape,
                "type": self.facts.input_type,
                "scale": self.facts.input_scale,
                "zero_point": self.facts.input_zero_point,
            },
            "output": {
                "shape": self.facts.output_shape,
                "type": self.facts.output_type,
                "scale": self.facts.output_scale,
                "zero_point": self.facts.output_zero_point,
            },
            "state_bytes": self.facts.state_bytes,
            "calibration_chunks": self.calibration_chunks,
            "calibration_extremes_forced": self.calibration_extremes_forced,
            "calibration_sample": self.calibration_sample,
            "agreement": self.agreement.__dict__,
            "tflm_arena_bytes_64bit": self.tflm_arena_bytes,
        }

    def lines(self) -> list[str]:
        f, a = self.facts, self.agreement
        ops = ", ".join(f"{k} x{v}" for k, v in f.ops.items())
        return [
            f"export: {self.path} ({self.model_bytes:,} bytes), ops: {ops}",
            f"export: input {f.input_type} {f.input_shape} scale {f.input_scale:.8f} zero "
            f"point {f.input_zero_point}; output {f.output_type} {f.output_shape}; tensor "
            f"types {', '.join(f.tensor_types)}; streaming state {f.state_bytes:,} bytes",
            f"export: int8 streaming (TFLite Micro) vs float Keras over {a.invocations} "
            f"held-out invocations: max |dp| {a.max_abs_diff:.4f}, mean {a.mean_abs_diff:.4f}, "
            f"99th percentile {a.p99_abs_diff:.4f}; logit difference "
            + (f"{a.logit_rms:.3f} RMS" if a.logit_rms is not None else "not measured")
            + f" over {a.unsure} unsure invocations (calibration sample "
            f"{self.calibration_sample} of {CALIBRATION_TRIES} at most)",
            f"export: TFLite Micro arena {self.tflm_arena_bytes:,} bytes (64-bit PC)",
        ]


REFUSED_SUFFIX = ".refused.tflite"


def _refuse(path: Path, agree: Agreement, flatbuffer: bytes, tries: int) -> NoReturn:
    """Keep the closest disagreeing model as NAME.refused.tflite and say why it was refused."""
    from wakeward.files import write_atomic

    refused = path.with_name(path.stem + REFUSED_SUFFIX)
    write_atomic(refused, lambda f: f.write(flatbuffer))
    raise WakewardError(
        f"{path}: the int8 streaming model disagrees with the Keras model after {tries} "
        f"calibration samples: at best {'; '.join(agree.problems())} on the held-out "
        f"stream; not written (the closest is {refused.name}); train again with another --seed"
    )


def export(
    net: Net,
    model: Any,
    data: Dataset,
    path: Path,
    *,
    seed: int = 0,
    chunks: int = CALIBRATION_CHUNKS,
    agreement_frames: int = 9000,
    tries: int = CALIBRATION_TRIES,
    say: Callable[[str], None] = lambda line: None,
) -> ExportReport:
    """Convert, inspect, compare, and only then write `path` (.tflite); raises on any
    problem. A conversion that disagrees with Keras is made again from another calibration
    sample, up to `tries` in all; when every one disagrees, the closest is kept beside it
    as NAME.refused.tflite (for a look), never under the name a user would deploy."""
    from wakeward.files import write_atomic

    split = HELDOUT if any(r.split == HELDOUT for r in data.records) else TRAIN
    stream = stream_of(data, split, agreement_frames, seed + 1)
    closest: tuple[Agreement, bytes] | None = None
    for attempt in range(1, tries + 1):
        cal, forced = calibration_chunks(data, chunks, seed + (attempt - 1) * CALIBRATION_SEED_STEP)
        flatbuffer = convert(net, cal)
        facts = inspect(flatbuffer)
        if facts.problems:
            raise WakewardError(
                f"{path}: the converted model is unusable: {'; '.join(facts.problems)}"
            )
        agree = agreement(flatbuffer, model, net.config, stream)
        problems = agree.problems()
        if not problems:
            break
        if closest is None or agree.rank() < closest[0].rank():
            closest = (agree, flatbuffer)
        if attempt < tries:
            say(
                f"export: calibration sample {attempt}/{tries} gives an int8 model that "
                f"disagrees with Keras ({'; '.join(problems)}); converting again from another "
                "sample"
            )
    else:
        if closest is None:  # no try at all
            raise ValueError(f"export: tries must be at least 1, not {tries}")
        _refuse(path, *closest, tries)
    write_atomic(path, lambda f: f.write(flatbuffer))
    return ExportReport(
        path=path,
        model_bytes=len(flatbuffer),
        facts=facts,
        calibration_chunks=len(cal),
        calibration_extremes_forced=forced,
        calibration_sample=attempt,
        agreement=agree,
        tflm_arena_bytes=tflm_arena_bytes(path),
    )


def write_json(path: Path, data: dict[str, Any]) -> Path:
    from wakeward.files import write_text_atomic

    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")
