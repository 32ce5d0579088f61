"""Tiny int8 TFLite models built without TensorFlow, for kernel parity tests.

The flatbuffers object API of the schema that ships with TFLite Micro's Python package
(tflite_micro...schema_py_generated) writes the file: a Model builder collects tensors,
constant buffers and operators, and `build()` returns the .tflite bytes (schema version 3,
identifier "TFL3"). Helpers add one operator each with random int8 weights and int32
biases, per-tensor or per-channel quantized (filters: dimension 0 for CONV_2D and
FULLY_CONNECTED, 3 for DEPTHWISE_CONV_2D), and work out the output shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

Op = fb.BuiltinOperator
TensorType = fb.TensorType
SAME = fb.Padding.SAME
VALID = fb.Padding.VALID
NONE = fb.ActivationFunctionType.NONE
RELU = fb.ActivationFunctionType.RELU
RELU6 = fb.ActivationFunctionType.RELU6

_DTYPES = {
    TensorType.INT8: np.int8,
    TensorType.UINT8: np.uint8,
    TensorType.INT16: np.int16,
    TensorType.INT32: np.int32,
    TensorType.FLOAT32: np.float32,
}


def _options_type(options: Any) -> int:
    name = type(options).__name__
    if not name.endswith("T"):
        raise TypeError(f"{name} is not a schema options object")
    return getattr(fb.BuiltinOptions, name[:-1])


class Model:
    """One subgraph under construction. Tensor and operator indices are positions."""

    def __init__(self) -> None:
        self.tensors: list[Any] = []
        self.buffers: list[Any] = [fb.BufferT()]  # buffer 0: the empty sentinel
        self.operators: list[Any] = []
        self.op_codes: list[int] = []

    def tensor(
        self,
        shape: Sequence[int],
        type: int = TensorType.INT8,
        scale: float | Sequence[float] | None = None,
        zero_point: int | Sequence[int] = 0,
        data: np.ndarray | None = None,
        quantized_dimension: int = 0,
        name: str | None = None,
    ) -> int:
        t = fb.TensorT()
        t.shape = [int(d) for d in shape]
        t.type = type
        t.name = name or f"t{len(self.tensors)}"
        if scale is not None:
            q = fb.QuantizationParametersT()
            scales = [float(s) for s in np.atleast_1d(scale)]
            zps = [int(z) for z in np.atleast_1d(zero_point)]
            if len(zps) == 1 and len(scales) > 1:
                zps = zps * len(scales)
            q.scale = scales
            q.zeroPoint = zps
            q.quantizedDimension = quantized_dimension
            t.quantization = q
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data, _DTYPES[type]).reshape(t.shape))
            buf = fb.BufferT()
            buf.data = np.frombuffer(arr.tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.tensors[i].shape)

    def quant(self, i: int) -> tuple[float, int]:
        q = self.tensors[i].quantization
        return q.scale[0], q.zeroPoint[0]

    def ints(self, values: Sequence[int]) -> int:
        """A constant int32 vector (axes, begin/end/strides, split sizes)."""
        return self.tensor([len(values)], TensorType.INT32, data=np.array(values, np.int32))

    def op(
        self, code: int, inputs: Sequence[int], outputs: Sequence[int], options: Any = None
    ) -> None:
        if code not in self.op_codes:
            self.op_codes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex = self.op_codes.index(code)
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        if options is not None:
            o.builtinOptionsType = _options_type(options)
            o.builtinOptions = options
        self.operators.append(o)

    def build(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        sg = fb.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = list(inputs)
        sg.outputs = list(outputs)
        sg.operators = self.operators
        sg.name = "main"
        m = fb.ModelT()
        m.version = 3
        m.description = "wakeward tests/tflm_builder.py"
        m.buffers = self.buffers
        m.subgraphs = [sg]
        m.operatorCodes = []
        for code in self.op_codes:
            oc = fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            m.operatorCodes.append(oc)
        builder = flatbuffers.Builder(1024)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def check_loads(model: bytes) -> None:
    """TFLite Micro accepts the model and runs it once (raises otherwise)."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model)
    it.invoke()


# -- single operators -------------------------------------------------------------------


def out_size(n: int, k: int, stride: int, dilation: int, padding: int) -> int:
    eff = (k - 1) * dilation + 1
    if padding == SAME:
        return (n + stride - 1) // stride
    return (n - eff + stride) // stride


def _weights_scale(rng: np.random.Generator, n: int, per_channel: bool) -> np.ndarray:
    count = n if per_channel else 1
    return (rng.uniform(0.002, 0.02, count)).astype(np.float32)


def conv2d(
    m: Model,
    x: int,
    out_c: int,
    kernel: tuple[int, int],
    rng: np.random.Generator,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: int = SAME,
    activation: int = NONE,
    per_channel: bool = True,
    out_scale: float = 0.05,
    out_zp: int = 3,
) -> int:
    _, h, w, c = m.shape(x)
    in_s, _ = m.quant(x)
    w_s = _weights_scale(rng, out_c, per_channel)
    filt = m.tensor(
        (out_c, *kernel, c),
        scale=w_s,
        zero_point=0,
        data=rng.integers(-127, 128, (out_c, *kernel, c)),
        quantized_dimension=0,
    )
    bias_s = (in_s * w_s).astype(np.float32)
    bias = m.tensor(
        (out_c,),
        TensorType.INT32,
        scale=bias_s,
        zero_point=0,
        data=rng.integers(-3000, 3000, out_c),
    )
    oh = out_size(h, kernel[0], stride[0], dilation[0], padding)
    ow = out_size(w, kernel[1], stride[1], dilation[1], padding)
    y = m.tensor((1, oh, ow, out_c), scale=out_scale, zero_point=out_zp)
    o = fb.Conv2DOptionsT()
    o.padding = padding
    o.strideH, o.strideW = stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.fusedActivationFunction = activation
    m.op(Op.CONV_2D, [x, filt, bias], [y], o)
    return y


def depthwise_conv2d(
    m: Model,
    x: int,
    multiplier: int,
    kernel: tuple[int, int],
    rng: np.random.Generator,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: int = SAME,
    activation: int = NONE,
    per_channel: bool = True,
    out_scale: float = 0.05,
    out_zp: int = -7,
) -> int:
    _, h, w, c = m.shape(x)
    out_c = c * multiplier
    in_s, _ = m.quant(x)
    w_s = _weights_scale(rng, out_c, per_channel)
    filt = m.tensor(
        (1, *kernel, out_c),
        scale=w_s,
        zero_point=0,
        data=rng.integers(-127, 128, (1, *kernel, out_c)),
        quantized_dimension=3,
    )
    bias = m.tensor(
        (out_c,),
        TensorType.INT32,
        scale=(in_s * w_s).astype(np.float32),
        zero_point=0,
        data=rng.integers(-3000, 3000, out_c),
    )
    oh = out_size(h, kernel[0], stride[0], dilation[0], padding)
    ow = out_size(w, kernel[1], stride[1], dilation[1], padding)
    y = m.tensor((1, oh, ow, out_c), scale=out_scale, zero_point=out_zp)
    o = fb.DepthwiseConv2DOptionsT()
    o.padding = padding
    o.strideH, o.strideW = stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.depthMultiplier = multiplier
    o.fusedActivationFunction = activation
    m.op(Op.DEPTHWISE_CONV_2D, [x, filt, bias], [y], o)
    return y


def fully_connected(
    m: Model,
    x: int,
    units: int,
    rng: np.random.Generator,
    *,
    bias: bool = True,
    activation: int = NONE,
    per_channel: bool = False,
    out_scale: float = 0.1,
    out_zp: int = 5,
) -> int:
    shape = m.shape(x)
    depth = shape[-1]
    batches = int(np.prod(shape)) // depth
    in_s, _ = m.quant(x)
    w_s = _weights_scale(rng, units, per_channel)
    filt = m.tensor(
        (units, depth),
        scale=w_s,
        zero_point=0,
        data=rng.integers(-127, 128, (units, depth)),
    )
    inputs = [x, filt]
    if bias:
        inputs.append(
            m.tensor(
                (units,),
                TensorType.INT32,
                scale=(in_s * w_s).astype(np.float32),
                zero_point=0,
                data=rng.integers(-3000, 3000, units),
            )
        )
    else:
        inputs.append(-1)
    y = m.tensor((batches, units), scale=out_scale, zero_point=out_zp)
    o = fb.FullyConnectedOptionsT()
    o.fusedActivationFunction = activation
    m.op(Op.FULLY_CONNECTED, inputs, [y], o)
    return y


def pool2d(
    m: Model,
    code: int,
    x: int,
    filter_hw: tuple[int, int],
    *,
    stride: tuple[int, int] = (1, 1),
    padding: int = SAME,
    activation: int = NONE,
) -> int:
    """AVERAGE_POOL_2D or MAX_POOL_2D; the output shares the input's quantization."""
    n, h, w, c = m.shape(x)
    s, z = m.quant(x)
    oh = out_size(h, filter_hw[0], stride[0], 1, padding)
    ow = out_size(w, filter_hw[1], stride[1], 1, padding)
    y = m.tensor((n, oh, ow, c), scale=s, zero_point=z)
    o = fb.Pool2DOptionsT()
    o.padding = padding
    o.strideH, o.strideW = stride
    o.filterHeight, o.filterWidth = filter_hw
    o.fusedActivationFunction = activation
    m.op(code, [x], [y], o)
    return y


def binary(
    m: Model,
    code: int,
    a: int,
    b: int,
    *,
    out_scale: float,
    out_zp: int,
    activation: int = NONE,
) -> int:
    """ADD or MUL of a and b with numpy broadcasting."""
    shape = np.broadcast_shapes(m.shape(a), m.shape(b))
    y = m.tensor(shape, scale=out_scale, zero_point=out_zp)
    o = fb.AddOptionsT() if code == Op.ADD else fb.MulOptionsT()
    o.fusedActivationFunction = activation
    m.op(code, [a, b], [y], o)
    return y


def mean(
    m: Model, x: int, axes: Sequence[int], *, keep_dims: bool, out_scale: float, out_zp: int
) -> int:
    shape = m.shape(x)
    rank = len(shape)
    resolved = {a % rank for a in axes}
    if keep_dims:
        out = [1 if d in resolved else n for d, n in enumerate(shape)]
    else:
        out = [n for d, n in enumerate(shape) if d not in resolved]
    y = m.tensor(out, scale=out_scale, zero_point=out_zp)
    o = fb.ReducerOptionsT()
    o.keepDims = keep_dims
    m.op(Op.MEAN, [x, m.ints(list(axes))], [y], o)
    return y


def quantize(m: Model, x: int, *, type: int, scale: float, zero_point: int) -> int:
    y = m.tensor(m.shape(x), type, scale=scale, zero_point=zero_point)
    m.op(Op.QUANTIZE, [x], [y], fb.QuantizeOptionsT())
    return y


def logistic(m: Model, x: int) -> int:
    y = m.tensor(m.shape(x), scale=1 / 256, zero_point=-128)
    m.op(Op.LOGISTIC, [x], [y])
    return y


def reshape(m: Model, x: int, shape: Sequence[int]) -> int:
    s, z = m.quant(x)
    y = m.tensor(shape, scale=s, zero_point=z)
    o = fb.ReshapeOptionsT()
    o.newShape = list(shape)
    m.op(Op.RESHAPE, [x, m.ints(list(shape))], [y], o)
    return y


def concatenation(m: Model, xs: Sequence[int], axis: int) -> int:
    shapes = [m.shape(x) for x in xs]
    rank = len(shapes[0])
    out = list(shapes[0])
    out[axis % rank] = sum(s[axis % rank] for s in shapes)
    s, z = m.quant(xs[0])
    y = m.tensor(out, scale=s, zero_point=z)
    o = fb.ConcatenationOptionsT()
    o.axis = axis
    m.op(Op.CONCATENATION, list(xs), [y], o)
    return y


def strided_slice(
    m: Model,
    x: int,
    begin: Sequence[int],
    end: Sequence[int],
    strides: Sequence[int],
    *,
    begin_mask: int = 0,
    end_mask: int = 0,
    shrink_axis_mask: int = 0,
) -> int:
    """Output shape from numpy's slicing, which follows the same rules."""
    shape = m.shape(x)
    probe = np.arange(int(np.prod(shape))).reshape(shape)
    index: list[Any] = []
    for d in range(len(shape)):
        if shrink_axis_mask >> d & 1:
            index.append(begin[d])
            continue
        lo = None if begin_mask >> d & 1 else begin[d]
        hi = None if end_mask >> d & 1 else end[d]
        index.append(slice(lo, hi, strides[d]))
    out = probe[tuple(index)].shape
    s, z = m.quant(x)
    y = m.tensor(out, scale=s, zero_point=z)
    o = fb.StridedSliceOptionsT()
    o.beginMask = begin_mask
    o.endMask = end_mask
    o.shrinkAxisMask = shrink_axis_mask
    m.op(Op.STRIDED_SLICE, [x, m.ints(begin), m.ints(end), m.ints(strides)], [y], o)
    return y


def split_v(m: Model, x: int, sizes: Sequence[int], axis: int) -> list[int]:
    shape = m.shape(x)
    s, z = m.quant(x)
    outs = []
    for n in sizes:
        out = list(shape)
        out[axis % len(shape)] = n
        outs.append(m.tensor(out, scale=s, zero_point=z))
    o = fb.SplitVOptionsT()
    o.numSplits = len(sizes)
    axis_t = m.tensor([], TensorType.INT32, data=np.array(axis, np.int32))
    m.op(Op.SPLIT_V, [x, m.ints(sizes), axis_t], outs, o)
    return outs
