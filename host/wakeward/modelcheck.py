"""`wakeward model check`: run a model on the device interpreter (MicroPython unix port,
ESP32-S3 heap profile) and on TFLite Micro with the same inputs, and compare every output."""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wakeward import models, unixport
from wakeward.errors import WakewardError
from wakeward.features import NUM_CHANNELS

# Runs on the device interpreter: every invocation under heap_lock (allocation fails it).
DEVICE_RUNNER = """
import gc, json, micropython, sys, time
from tflm import interpreter, model
m = model.load(MODEL_PATH)
gc.collect()
it = interpreter.Interpreter(m)
gc.collect()
ready = gc.mem_alloc()
inputs = open("inputs.raw", "rb").read()
n = len(it.inputs[0])
count = len(inputs) // n
width = len(it.outputs[0])
out = bytearray(count * width)
views = [memoryview(inputs)[k * n : (k + 1) * n] for k in range(count)]
def run():
    o = it.outputs[0]
    micropython.heap_lock()
    start = time.ticks_us()
    for k in range(count):
        it.set_input(0, views[k])
        it.invoke()
        for j in range(width):
            out[k * width + j] = o[j]
    elapsed = time.ticks_diff(time.ticks_us(), start)
    micropython.heap_unlock()
    return elapsed
elapsed_us = run()
open("outputs.raw", "wb").write(out)
print(json.dumps({"arena": it.arena_bytes, "variables": it.variable_bytes,
                  "scratch": it.scratch_bytes, "ops": list(it.op_names),
                  "us": elapsed_us, "heap_used": ready}))
"""


@dataclass
class Report:
    model: Path
    invocations: int
    bit_exact: bool
    first_mismatch: tuple[int, int, int, int] | None  # invocation, index, device, reference
    ops: dict[str, int]
    model_bytes: int
    arena_bytes: int
    variable_bytes: int
    scratch_bytes: int
    manifest_arena_bytes: int | None
    device_us_per_invocation: float
    reference_us_per_invocation: float
    heap_used_bytes: int
    outputs: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """`wakeward model check --json`: the figures `lines` prints (raw uint8 outputs in
        a mismatch, labelled so)."""
        mismatch = None
        if self.first_mismatch is not None:
            k, i, dev, ref = self.first_mismatch
            mismatch = {"invocation": k, "index": i, "device_u8": dev, "tflite_micro_u8": ref}
        return {
            "model": str(self.model),
            "model_bytes": self.model_bytes,
            "ops": dict(sorted(self.ops.items())),
            "arena_bytes": self.arena_bytes,
            "variable_bytes": self.variable_bytes,
            "scratch_bytes": self.scratch_bytes,
            "manifest_arena_bytes": self.manifest_arena_bytes,
            "heap_used_bytes": self.heap_used_bytes,
            "device_us_per_invocation": round(self.device_us_per_invocation, 1),
            "reference_us_per_invocation": round(self.reference_us_per_invocation, 1),
            "invocations": self.invocations,
            "bit_exact": self.bit_exact,
            "first_mismatch": mismatch,
        }

    def lines(self) -> list[str]:
        out = [f"model: {self.model} ({self.model_bytes:,} bytes)"]
        ops = ", ".join(f"{name} x{n}" for name, n in sorted(self.ops.items()))
        out.append(f"ops: {ops}")
        arena = (
            f"arena: {self.arena_bytes:,} bytes activations + {self.variable_bytes:,} bytes "
            f"streaming state + {self.scratch_bytes:,} bytes accumulators"
        )
        if self.manifest_arena_bytes is not None:
            arena += f" (manifest tensor_arena_size: {self.manifest_arena_bytes:,})"
        out.append(arena)
        out.append(
            f"heap in use with the model ready: {self.heap_used_bytes:,} bytes "
            "(unix port: code, model bytes and interpreter; 64-bit objects are larger than "
            "on the ESP32-S3)"
        )
        out.append(
            f"cost per invocation: {self.device_us_per_invocation:.0f} us on the unix port, "
            f"{self.reference_us_per_invocation:.0f} us in TFLite Micro "
            f"(x{self.device_us_per_invocation / max(self.reference_us_per_invocation, 1e-9):.1f})"
        )
        if self.bit_exact:
            out.append(f"bit-exact: yes, {self.invocations} invocations")
        else:
            k, i, dev, ref = self.first_mismatch or (0, 0, 0, 0)
            out.append(
                f"bit-exact: NO: first mismatch at invocation {k}, output index {i}: "
                f"device {dev}, TFLite Micro {ref}"
            )
        return out


def _reference(model: Path, inputs: np.ndarray) -> tuple[np.ndarray, float]:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model.read_bytes())
    outs = []
    start = time.perf_counter()
    for chunk in inputs:
        it.set_input(chunk, 0)
        it.invoke()
        outs.append(it.get_output(0).reshape(-1).copy())
    elapsed = time.perf_counter() - start
    return np.array(outs), elapsed / max(len(inputs), 1) * 1e6


# Reads the model with the device's own reader: its ModelError is the message the user gets.
DESCRIBE = """
import json
from tflm import model
try:
    m = model.load(MODEL_PATH)
    sg = m.subgraphs[0]
    if not len(sg.inputs):
        raise model.ModelError("subgraph 0 has no inputs")
    t = sg.tensor(sg.inputs[0])
    print(json.dumps({"shape": list(t.shape), "type": t.type_name}))
except model.ModelError as e:
    print(json.dumps({"error": str(e)}))
"""
_NUMPY_TYPES = {"INT8": np.dtype(np.int8), "UINT8": np.dtype(np.uint8)}


def input_details(model: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the model's first input, read by the device's model reader."""
    code = DESCRIBE.replace("MODEL_PATH", repr(str(model.resolve())))
    done = unixport.run(code=code, heap="esp32s3-psram", timeout_s=120)
    text = (done.stdout + done.stderr).decode(errors="replace").strip()
    try:
        info = json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        raise WakewardError(f"{model}: the model reader failed: {text[-500:]}") from None
    if "error" in info:
        raise WakewardError(info["error"])
    if info["type"] not in _NUMPY_TYPES:
        raise WakewardError(f"{model}: input type {info['type']} (only INT8 and UINT8 models)")
    return tuple(info["shape"]), _NUMPY_TYPES[info["type"]]


def _check_input_size(model: Path, shape: tuple[int, ...], dtype: np.dtype, heap: str) -> None:
    """An input that cannot fit in the device's heap is refused before any inputs are made
    (the shape comes from the file: a damaged one can ask for exabytes)."""
    per = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if per == 0:
        raise WakewardError(f"{model}: input shape {list(shape)} holds no values")
    limit = unixport.heap_bytes(heap)
    if per > limit:
        raise WakewardError(
            f"{model}: input shape {list(shape)} is {per:,} bytes per invocation, more than "
            f"the whole {heap} heap ({limit:,} bytes)"
        )


@dataclass
class Inputs:
    """The model's inputs from an --inputs file, one per invocation, and how they were
    read from it (`note`: said to the user, or None)."""

    values: np.ndarray
    note: str | None = None


def load_inputs(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> Inputs:
    """An --inputs .npy file: features as `wakeward features` writes them (frames x
    NUM_CHANNELS), grouped into the model's input (consecutive, non-overlapping frames, as
    the device feeds them; frames left over at the end are dropped), or one model input per
    invocation along the first axis."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise WakewardError(f"{path}: not a readable .npy array ({e})") from None
    if data.dtype != dtype:
        raise WakewardError(f"{path}: dtype {data.dtype}, the model's input is {dtype}")
    per = int(np.prod(shape))
    frames = per // NUM_CHANNELS
    if data.ndim == 2 and data.shape[1] == NUM_CHANNELS and per == frames * NUM_CHANNELS:
        return _grouped(path, data, shape, frames)
    if data.ndim < 1 or len(data) == 0 or data[0].size != per:
        raise WakewardError(
            f"{path}: shape {data.shape}: give features as `wakeward features --out` writes "
            f"them (frames x {NUM_CHANNELS}), or one invocation per entry of the first axis "
            f"(each invocation needs {per} values: model input shape {list(shape)})"
        )
    return Inputs(data.reshape((len(data), *shape)))


def _grouped(path: Path, data: np.ndarray, shape: tuple[int, ...], frames: int) -> Inputs:
    count = len(data) // frames
    if count == 0:
        raise WakewardError(
            f"{path}: {len(data)} frames of features, fewer than the {frames} the model takes "
            f"at once; make features of a longer WAV (`wakeward features AUDIO.wav --out "
            f"{path}`)"
        )
    left = len(data) - count * frames
    note = (
        f"{path}: {len(data)} frames of features, {frames} to an invocation: {count} "
        + ("invocation" if count == 1 else "invocations")
        + (
            f" (the last {left} {'frame is' if left == 1 else 'frames are'} dropped)"
            if left
            else ""
        )
    )
    return Inputs(data[: count * frames].reshape((count, *shape)), note)


def check(
    model_name_or_path: str | Path,
    *,
    inputs: np.ndarray | None = None,
    invocations: int = 200,
    seed: int = 0,
    heap: str = unixport.MODEL_HEAP_PROFILE,
) -> Report:
    model = models.resolve(model_name_or_path)
    shape, dtype = input_details(model)
    _check_input_size(model, shape, dtype, heap)
    if inputs is None:
        info = np.iinfo(dtype)
        rng = np.random.default_rng(seed)
        inputs = rng.integers(info.min, info.max + 1, (invocations, *shape)).astype(dtype)
    with tempfile.TemporaryDirectory(prefix="wakeward-check-") as tmp:
        (Path(tmp) / "inputs.raw").write_bytes(np.ascontiguousarray(inputs).tobytes())
        code = DEVICE_RUNNER.replace("MODEL_PATH", repr(str(model.resolve())))
        text = unixport.run_or_fail(
            f"{model}: the device interpreter", code, heap=heap, cwd=tmp, timeout_s=3600
        )
        info = json.loads(text.splitlines()[-1])
        raw = np.frombuffer((Path(tmp) / "outputs.raw").read_bytes(), np.uint8)
    reference, ref_us = _reference(model, inputs)
    device = raw.reshape(len(inputs), -1).view(reference.dtype)
    mismatch = np.argwhere(device != reference)
    first = None
    if len(mismatch):
        k, i = (int(v) for v in mismatch[0])
        first = (k, i, int(device[k, i]), int(reference[k, i]))
    manifest = models.manifest(model)
    return Report(
        model=model,
        invocations=len(inputs),
        bit_exact=first is None,
        first_mismatch=first,
        ops=dict(Counter(info["ops"])),
        model_bytes=model.stat().st_size,
        arena_bytes=info["arena"],
        variable_bytes=info["variables"],
        scratch_bytes=info["scratch"],
        manifest_arena_bytes=(manifest or {}).get("micro", {}).get("tensor_arena_size"),
        device_us_per_invocation=info["us"] / max(len(inputs), 1),
        reference_us_per_invocation=ref_us,
        heap_used_bytes=info["heap_used"],
        outputs=device,
    )
