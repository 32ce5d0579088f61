# Reader for TensorFlow Lite models (flatbuffers, schema version 3, identifier "TFL3").
#
# The model bytes stay where the caller put them: buffers come back as memoryviews into
# them, and tensors/operators are decoded on request (each call builds a fresh object),
# so the resident cost of a Model is a few small objects whatever the model's size.
#
# Every read is bounds-checked. Model() walks the whole structure once, so a truncated,
# corrupted or hostile file raises ModelError there; the walk is charged against a budget
# proportional to the file size, so tables shared or overlapped by a crafted file cannot
# make it (or any later full walk) run long.
#
# Field numbers follow tensorflow/lite/schema/schema.fbs (a field's vtable slot is its
# position among the table's fields, deprecated ones included).
import struct
from array import array

from micropython import const

SCHEMA_VERSION = const(3)
_IDENTIFIER = b"TFL3"
_MAX_RANK = const(16)
_MAX_CHANNELS = const(4096)
_MAX_IO = const(256)
_MAX_STRING = const(4096)
_BUDGET_BASE = const(4096)
_INT32_MIN = const(-0x80000000)
_INT32_MAX = const(0x7FFFFFFF)

# Model
_MODEL_VERSION = const(0)
_MODEL_OPERATOR_CODES = const(1)
_MODEL_SUBGRAPHS = const(2)
_MODEL_DESCRIPTION = const(3)
_MODEL_BUFFERS = const(4)
_MODEL_METADATA = const(6)
# OperatorCode
_OPC_DEPRECATED_BUILTIN = const(0)
_OPC_CUSTOM_CODE = const(1)
_OPC_VERSION = const(2)
_OPC_BUILTIN = const(3)
# SubGraph
_SG_TENSORS = const(0)
_SG_INPUTS = const(1)
_SG_OUTPUTS = const(2)
_SG_OPERATORS = const(3)
_SG_NAME = const(4)
# Tensor
_T_SHAPE = const(0)
_T_TYPE = const(1)
_T_BUFFER = const(2)
_T_NAME = const(3)
_T_QUANTIZATION = const(4)
_T_IS_VARIABLE = const(5)
_T_SPARSITY = const(6)
_T_SHAPE_SIGNATURE = const(7)
_T_HAS_RANK = const(8)
# QuantizationParameters
_Q_SCALE = const(2)
_Q_ZERO_POINT = const(3)
_Q_DETAILS_TYPE = const(4)
_Q_QUANTIZED_DIMENSION = const(6)
# Operator
_OP_OPCODE_INDEX = const(0)
_OP_INPUTS = const(1)
_OP_OUTPUTS = const(2)
_OP_OPTIONS_TYPE = const(3)
_OP_OPTIONS = const(4)
_OP_CUSTOM_OPTIONS = const(5)
_OP_INTERMEDIATES = const(8)
# Buffer
_BUF_DATA = const(0)
_BUF_OFFSET = const(1)
_BUF_SIZE = const(2)
# Metadata
_META_NAME = const(0)
_META_BUFFER = const(1)

# TensorType
FLOAT32 = const(0)
INT32 = const(2)
UINT8 = const(3)
INT64 = const(4)
BOOL = const(6)
INT16 = const(7)
INT8 = const(9)
RESOURCE = const(13)
_TYPE_NAMES = (
    "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16",
    "COMPLEX64", "INT8", "FLOAT64", "COMPLEX128", "UINT64", "RESOURCE", "VARIANT",
    "UINT32", "UINT16", "INT4", "BFLOAT16", "INT2", "UINT4", "FLOAT8_E4M3FN", "FLOAT8_E5M2",
)  # fmt: skip

# BuiltinOperator (the ones the wake-word models and their relatives use)
ADD = const(0)
AVERAGE_POOL_2D = const(1)
CONCATENATION = const(2)
CONV_2D = const(3)
DEPTHWISE_CONV_2D = const(4)
DEQUANTIZE = const(6)
FULLY_CONNECTED = const(9)
LOGISTIC = const(14)
MAX_POOL_2D = const(17)
MUL = const(18)
RELU = const(19)
RELU6 = const(21)
RESHAPE = const(22)
SOFTMAX = const(25)
CUSTOM = const(32)
PAD = const(34)
MEAN = const(40)
SUB = const(41)
SQUEEZE = const(43)
STRIDED_SLICE = const(45)
SPLIT = const(49)
SPLIT_V = const(102)
QUANTIZE = const(114)
CALL_ONCE = const(129)
VAR_HANDLE = const(142)
READ_VARIABLE = const(143)
ASSIGN_VARIABLE = const(144)
# Names of builtin codes 0..161, space-separated, in code order.
_OP_NAMES = (
    "ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE "
    "EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D "
    "LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU "
    "RELU_N1_TO_1 RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH "
    "CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD "
    "UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN "
    "SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN "
    "EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM "
    "ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN "
    "TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE "
    "POW ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND "
    "LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD "
    "RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V "
    "UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG "
    "QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4 "
    "NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL "
    "PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL "
    "COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL "
    "CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS "
    "RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE "
    "RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2 "
    "UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT"
)

# Padding and ActivationFunctionType
PADDING_SAME = const(0)
PADDING_VALID = const(1)
ACT_NONE = const(0)
ACT_RELU = const(1)
ACT_RELU_N1_TO_1 = const(2)
ACT_RELU6 = const(3)
ACT_TANH = const(4)
ACT_SIGN_BIT = const(5)

# Builtin options the reader decodes, one line each: union type, table name, then the
# fields in schema order (a field's slot is its position) as name:kind, kind one of
# b int8, ? bool, i int32, f float32, s string, v [int32]; "=1"/"=T" give a default
# other than zero/false/none. A string rather than tuples: it costs a tenth of the RAM.
_OPTIONS = (
    "\n1 Conv2DOptions padding:b stride_w:i stride_h:i fused_activation_function:b"
    " dilation_w_factor:i=1 dilation_h_factor:i=1 quantized_bias_type:b"
    "\n2 DepthwiseConv2DOptions padding:b stride_w:i stride_h:i depth_multiplier:i"
    " fused_activation_function:b dilation_w_factor:i=1 dilation_h_factor:i=1"
    "\n5 Pool2DOptions padding:b stride_w:i stride_h:i filter_width:i filter_height:i"
    " fused_activation_function:b"
    "\n8 FullyConnectedOptions fused_activation_function:b weights_format:b keep_num_dims:?"
    " asymmetric_quantize_inputs:? quantized_bias_type:b"
    "\n9 SoftmaxOptions beta:f"
    "\n10 ConcatenationOptions axis:i fused_activation_function:b"
    "\n11 AddOptions fused_activation_function:b pot_scale_int16:?=T"
    "\n17 ReshapeOptions new_shape:v"
    "\n21 MulOptions fused_activation_function:b"
    "\n27 ReducerOptions keep_dims:?"
    "\n28 SubOptions fused_activation_function:b pot_scale_int16:?=T"
    "\n32 StridedSliceOptions begin_mask:i end_mask:i ellipsis_mask:i new_axis_mask:i"
    " shrink_axis_mask:i offset:?"
    "\n35 SplitOptions num_splits:i"
    "\n38 DequantizeOptions"
    "\n79 SplitVOptions num_splits:i"
    "\n89 QuantizeOptions"
    "\n103 CallOnceOptions init_subgraph_index:i"
    "\n111 VarHandleOptions container:s shared_name:s"
    "\n112 ReadVariableOptions"
    "\n113 AssignVariableOptions"
    "\n"
)
_CALL_ONCE_OPTIONS = const(103)


class ModelError(ValueError):
    pass


def type_name(code):
    """Name of a TensorType code ('INT8'), or 'TYPE_<n>' for one this reader doesn't know."""
    if 0 <= code < len(_TYPE_NAMES):
        return _TYPE_NAMES[code]
    return "TYPE_%d" % code


def op_name(code):
    """Name of a BuiltinOperator code ('CONV_2D'), or 'BUILTIN_<n>' for an unknown one."""
    if code >= 0:
        start = 0
        names = _OP_NAMES
        for _ in range(code):
            start = names.find(" ", start) + 1
            if start == 0:
                break
        else:
            end = names.find(" ", start)
            return names[start:] if end < 0 else names[start:end]
    return "BUILTIN_%d" % code


def read_file(path):
    """The bytes of a model file in one bytearray (no transient second copy)."""
    import os

    try:
        size = os.stat(path)[6]
    except OSError:
        raise ModelError("%s: no such file" % path) from None
    try:
        buf = bytearray(size)
    except MemoryError:
        import gc

        gc.collect()
        raise ModelError(
            "%s: the model is %d bytes and does not fit in memory (%d bytes free)"
            % (path, size, gc.mem_free())
        ) from None
    mv = memoryview(buf)
    got = 0
    with open(path, "rb") as f:
        while got < size:
            n = f.readinto(mv[got:])
            if not n:
                break
            got += n
    if got != size:
        raise ModelError("%s: read %d of %d bytes" % (path, got, size))
    return buf


def load(path):
    """Model(read_file(path)), with the path named in any ModelError. The model owns its
    bytes: the interpreter may rewrite its convolution filters in place (Model.biased)."""
    data = read_file(path)
    try:
        model = Model(data)
    except ModelError as e:
        raise ModelError("%s: %s" % (path, e.args[0] if e.args else e))
    model.biased = False
    return model


class _Seq:
    """len(), [i] and iteration over objects decoded on request."""

    def __init__(self, get, n):
        self._get = get
        self._n = n

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if i < 0:
            i += self._n
        if i < 0 or i >= self._n:
            raise IndexError("index out of range")
        return self._get(i)

    def __iter__(self):
        for i in range(self._n):
            yield self._get(i)


class Model:
    """A parsed TFLite model; `data` is bytes, bytearray or a memoryview of bytes."""

    def __init__(self, data):
        try:
            buf = memoryview(data)
        except TypeError:
            raise ModelError("model data must be bytes, bytearray or memoryview")
        self._buf = buf
        # the convolutions' filters: None, the bytes are the caller's and stay as they are;
        # False (load()), the model owns them; True, the first interpreter biased them in
        # place (tflm.interpreter; a model whose interpreter failed to prepare is not reused)
        self.biased = None
        self._size = size = len(buf)
        self._left = 2 * size + _BUDGET_BASE
        self._checking = True
        if size < 8:
            raise ModelError("%d bytes is too short for a TFLite model" % size)
        if bytes(buf[4:8]) != _IDENTIFIER:
            raise ModelError(
                "file identifier %r is not 'TFL3' (not a TFLite model)" % bytes(buf[4:8])
            )
        root = self._u32(0)
        if root < 8 or root + 4 > size:
            raise ModelError("root table offset %d is outside the file (%d bytes)" % (root, size))
        self._root = root
        self.version = self._scalar(root, _MODEL_VERSION, "<I", 4, 0)
        if self.version != SCHEMA_VERSION:
            raise ModelError("schema version %d, expected %d" % (self.version, SCHEMA_VERSION))
        self.size = size
        self.description = self._str(root, _MODEL_DESCRIPTION, "model description")
        self._read_operator_codes()
        self._buffers, self.buffer_count = self._vec(root, _MODEL_BUFFERS, 4, "model buffers")
        start, n = self._vec(root, _MODEL_SUBGRAPHS, 4, "model subgraphs")
        if n == 0:
            raise ModelError("model has no subgraphs")
        self._charge(n)
        subgraphs = []
        for i in range(n):
            subgraphs.append(SubGraph(self, self._deref(start + 4 * i, "subgraph"), i))
        self.subgraphs = tuple(subgraphs)
        self.buffers = _Seq(self.buffer, self.buffer_count)
        self._validate()
        self._checking = False

    # -- low-level reads -------------------------------------------------------------

    def _need(self, pos, length, what):
        if pos < 0 or length < 0 or pos + length > self._size:
            raise ModelError(
                "%s at offset %d (%d bytes) runs past the end of the file (%d bytes)"
                % (what, pos, length, self._size)
            )

    def _charge(self, n):
        if self._checking:
            self._left -= n
            if self._left < 0:
                raise ModelError("structure is larger than the file can hold (shared tables?)")

    def _u16(self, pos):
        self._need(pos, 2, "uint16")
        return struct.unpack_from("<H", self._buf, pos)[0]

    def _u32(self, pos):
        self._need(pos, 4, "uint32")
        return struct.unpack_from("<I", self._buf, pos)[0]

    def _field(self, table, slot, length):
        """Absolute position of a table's field, or 0 when the field is absent."""
        self._need(table, 4, "table")
        vtable = table - struct.unpack_from("<i", self._buf, table)[0]
        self._need(vtable, 4, "vtable")
        vt_len = self._u16(vtable)
        if vt_len < 4 or vt_len & 1:
            raise ModelError("vtable at offset %d has bad size %d" % (vtable, vt_len))
        at = 4 + 2 * slot
        if at + 2 > vt_len:
            return 0
        self._need(vtable, vt_len, "vtable")
        off = self._u16(vtable + at)
        if off == 0:
            return 0
        tbl_len = self._u16(vtable + 2)
        if off < 4 or off + length > tbl_len:
            raise ModelError(
                "field %d of table at offset %d lies outside the table (%d bytes)"
                % (slot, table, tbl_len)
            )
        self._need(table, tbl_len, "table")
        return table + off

    def _scalar(self, table, slot, fmt, length, default):
        pos = self._field(table, slot, length)
        if not pos:
            return default
        return struct.unpack_from(fmt, self._buf, pos)[0]

    def _deref(self, pos, what):
        """Follow the uoffset stored at pos (pointers only go forward: no cycles)."""
        rel = self._u32(pos)
        if rel == 0 or rel > _INT32_MAX:
            raise ModelError("%s: bad offset %d at offset %d" % (what, rel, pos))
        self._charge(1)
        target = pos + rel
        self._need(target, 4, what)
        return target

    def _ref(self, table, slot, what):
        pos = self._field(table, slot, 4)
        if not pos:
            return 0
        return self._deref(pos, what)

    def _vec(self, table, slot, elem, what):
        """(start, count) of a vector field; (0, 0) when absent."""
        pos = self._ref(table, slot, what)
        if not pos:
            return 0, 0
        n = struct.unpack_from("<I", self._buf, pos)[0]
        self._need(pos + 4, n * elem, what)
        return pos + 4, n

    def _ints(self, table, slot, what, limit):
        """A [int] field as a tuple of ints, or None when absent."""
        start, n = self._vec(table, slot, 4, what)
        if not start:
            return None
        if n > limit:
            raise ModelError("%s has %d entries (limit %d)" % (what, n, limit))
        self._charge(n)
        if n == 0:
            return ()
        return struct.unpack_from("<%di" % n, self._buf, start)

    def _str(self, table, slot, what):
        start, n = self._vec(table, slot, 1, what)
        if not start:
            return None
        if n > _MAX_STRING:
            raise ModelError("%s is %d bytes long (limit %d)" % (what, n, _MAX_STRING))
        try:
            return str(self._buf[start : start + n], "utf-8")
        except UnicodeError:
            raise ModelError("%s at offset %d is not UTF-8" % (what, start))

    # -- structure -------------------------------------------------------------------

    def _read_operator_codes(self):
        start, n = self._vec(self._root, _MODEL_OPERATOR_CODES, 4, "operator codes")
        self._charge(n)
        codes = []
        versions = []
        custom = []
        for i in range(n):
            t = self._deref(start + 4 * i, "operator code")
            old = self._scalar(t, _OPC_DEPRECATED_BUILTIN, "<b", 1, 0)
            new = self._scalar(t, _OPC_BUILTIN, "<i", 4, 0)
            # As TFLite's GetBuiltinCode: codes above 127 sit in builtin_code, with the
            # deprecated byte holding the placeholder 127; older files have only the byte.
            codes.append(new if new > old else old)
            versions.append(self._scalar(t, _OPC_VERSION, "<i", 4, 1))
            custom.append(self._str(t, _OPC_CUSTOM_CODE, "custom code"))
        self.op_codes = tuple(codes)
        self.op_versions = tuple(versions)
        self.custom_codes = tuple(custom)

    def buffer(self, index):
        """Buffer `index` as a memoryview into the model bytes (empty when it has no data)."""
        if index < 0 or index >= self.buffer_count:
            raise ModelError("buffer %d does not exist (%d buffers)" % (index, self.buffer_count))
        table = self._deref(self._buffers + 4 * index, "buffer")
        start, n = self._vec(table, _BUF_DATA, 1, "buffer data")
        if n:
            return self._buf[start : start + n]
        offset = self._scalar(table, _BUF_OFFSET, "<Q", 8, 0)
        if offset > 1:
            # Data stored after the flatbuffer, at `offset` from the start of the file.
            n = self._scalar(table, _BUF_SIZE, "<Q", 8, 0)
            self._need(offset, n, "buffer %d data" % index)
            return self._buf[offset : offset + n]
        return self._buf[0:0]

    def metadata(self):
        """((name, buffer index), ...) of the model's metadata entries."""
        start, n = self._vec(self._root, _MODEL_METADATA, 4, "metadata")
        out = []
        for i in range(n):
            t = self._deref(start + 4 * i, "metadata")
            out.append(
                (
                    self._str(t, _META_NAME, "metadata name"),
                    self._scalar(t, _META_BUFFER, "<I", 4, 0),
                )
            )
        return tuple(out)

    def _validate(self):
        nbuf = self.buffer_count
        self._charge(nbuf)
        for i in range(nbuf):
            try:
                self.buffer(i)
            except ModelError as e:
                raise ModelError("buffer %d: %s" % (i, e.args[0]))
        for name, b in self.metadata():
            if b >= nbuf:
                raise ModelError("metadata %r names buffer %d of %d" % (name, b, nbuf))
        nsub = len(self.subgraphs)
        for sg in self.subgraphs:
            nt = sg.tensor_count
            for what, idx in (("input", sg.inputs), ("output", sg.outputs)):
                for t in idx:
                    if t < 0 or t >= nt:
                        raise ModelError(
                            "subgraph %d: %s tensor %d does not exist (%d tensors)"
                            % (sg.index, what, t, nt)
                        )
            self._charge(nt + sg.operator_count)
            for i in range(nt):
                try:
                    t = sg.tensor(i)
                    if t.quantization:
                        t.quantization._check()
                    if t.buffer >= nbuf:
                        raise ModelError("buffer %d does not exist (%d buffers)" % (t.buffer, nbuf))
                except ModelError as e:
                    raise ModelError("subgraph %d tensor %d: %s" % (sg.index, i, e.args[0]))
            for i in range(sg.operator_count):
                try:
                    op = sg.operator(i)
                    for what, idx in (("input", op.inputs), ("output", op.outputs)):
                        for t in idx:
                            if t < -1 or t >= nt:
                                raise ModelError(
                                    "%s tensor %d does not exist (%d tensors)" % (what, t, nt)
                                )
                    opts = op.options()
                    if op.options_type == _CALL_ONCE_OPTIONS:
                        s = opts.init_subgraph_index
                        if s < 0 or s >= nsub:
                            raise ModelError(
                                "CALL_ONCE subgraph %d does not exist (%d subgraphs)" % (s, nsub)
                            )
                except ModelError as e:
                    raise ModelError("subgraph %d operator %d: %s" % (sg.index, i, e.args[0]))


class SubGraph:
    """Tensors and operators of one subgraph (index 0 is the main one)."""

    def __init__(self, model, table, index):
        self._m = model
        self.index = index
        self.name = model._str(table, _SG_NAME, "subgraph name")
        self._tensors, self.tensor_count = model._vec(table, _SG_TENSORS, 4, "tensors")
        self._ops, self.operator_count = model._vec(table, _SG_OPERATORS, 4, "operators")
        limit = min(self.tensor_count, _MAX_IO)
        self.inputs = model._ints(table, _SG_INPUTS, "subgraph inputs", limit) or ()
        self.outputs = model._ints(table, _SG_OUTPUTS, "subgraph outputs", limit) or ()
        self.tensors = _Seq(self.tensor, self.tensor_count)
        self.operators = _Seq(self.operator, self.operator_count)

    def tensor(self, i):
        if i < 0 or i >= self.tensor_count:
            raise ModelError("tensor %d does not exist (%d tensors)" % (i, self.tensor_count))
        return Tensor(self._m, self._m._deref(self._tensors + 4 * i, "tensor"), i)

    def operator(self, i):
        if i < 0 or i >= self.operator_count:
            raise ModelError("operator %d does not exist (%d operators)" % (i, self.operator_count))
        return Operator(self._m, self._m._deref(self._ops + 4 * i, "operator"), i)


class Quantization:
    """Affine quantization: one scale and zero point, or one per channel along
    quantized_dimension (`channels` of them). The `scale` (array('f')) and `zero_point`
    (array('i')) properties decode from the model on each access: keep what they return.
    """

    def __init__(self, model, table, shape):
        m = model
        self._m = m
        self.quantized_dimension = m._scalar(table, _Q_QUANTIZED_DIMENSION, "<i", 4, 0)
        self.details_type = m._scalar(table, _Q_DETAILS_TYPE, "<B", 1, 0)
        self._scales, ns = m._vec(table, _Q_SCALE, 4, "quantization scales")
        self._zeros, nz = m._vec(table, _Q_ZERO_POINT, 8, "quantization zero points")
        if ns > _MAX_CHANNELS or nz > _MAX_CHANNELS:
            raise ModelError("%d quantization channels (limit %d)" % (max(ns, nz), _MAX_CHANNELS))
        if nz != ns and ns != 0:
            raise ModelError("%d zero points for %d scales" % (nz, ns))
        if ns > 1:
            qd = self.quantized_dimension
            if qd < 0 or qd >= len(shape) or shape[qd] != ns:
                raise ModelError(
                    "%d scales do not match dimension %d of shape %r" % (ns, qd, shape)
                )
        m._charge(ns + nz)
        self.channels = ns
        self._nz = nz

    @property
    def scale(self):
        start = self._scales
        return array("f", bytes(self._m._buf[start : start + 4 * self.channels]))

    def _zero_point(self, i):
        z = struct.unpack_from("<q", self._m._buf, self._zeros + 8 * i)[0]
        if z < _INT32_MIN or z > _INT32_MAX:
            raise ModelError("zero point %d does not fit 32 bits" % z)
        return z

    @property
    def zero_point(self):
        zp = array("i")
        for i in range(self._nz):
            zp.append(self._zero_point(i))
        return zp

    def _check(self):
        for i in range(self._nz):
            self._zero_point(i)


class Tensor:
    """One tensor's description, decoded from the model when asked for."""

    def __init__(self, model, table, index):
        m = model
        self.index = index
        shape = m._ints(table, _T_SHAPE, "tensor shape", _MAX_RANK) or ()
        for d in shape:
            if d < 0:
                raise ModelError("negative dimension in shape %r" % (shape,))
        self.shape = shape
        self.shape_signature = m._ints(table, _T_SHAPE_SIGNATURE, "shape signature", _MAX_RANK)
        self.type = m._scalar(table, _T_TYPE, "<b", 1, 0)
        self.buffer = m._scalar(table, _T_BUFFER, "<I", 4, 0)
        self.name = m._str(table, _T_NAME, "tensor name") or ""
        self.is_variable = bool(m._scalar(table, _T_IS_VARIABLE, "<B", 1, 0))
        self.has_rank = bool(m._scalar(table, _T_HAS_RANK, "<B", 1, 0))
        self.sparse = m._field(table, _T_SPARSITY, 4) != 0
        q = m._ref(table, _T_QUANTIZATION, "quantization")
        self.quantization = Quantization(m, q, shape) if q else None

    @property
    def type_name(self):
        return type_name(self.type)


class Options:
    """Decoded builtin options: `kind` is the schema table name, then one attribute per
    field (schema defaults where the file leaves a field out)."""

    def __init__(self, kind):
        self.kind = kind


class Table:
    """Raw access to a flatbuffer table, by field slot, for options this reader doesn't
    decode; every read is bounds-checked."""

    def __init__(self, model, pos):
        self._m = model
        self.pos = pos

    def has(self, slot):
        return self._m._field(self.pos, slot, 1) != 0

    def int8(self, slot, default=0):
        return self._m._scalar(self.pos, slot, "<b", 1, default)

    def uint8(self, slot, default=0):
        return self._m._scalar(self.pos, slot, "<B", 1, default)

    def bool(self, slot, default=False):
        return bool(self._m._scalar(self.pos, slot, "<B", 1, default))

    def int32(self, slot, default=0):
        return self._m._scalar(self.pos, slot, "<i", 4, default)

    def uint32(self, slot, default=0):
        return self._m._scalar(self.pos, slot, "<I", 4, default)

    def float32(self, slot, default=0.0):
        return self._m._scalar(self.pos, slot, "<f", 4, default)

    def string(self, slot):
        return self._m._str(self.pos, slot, "options string")

    def ints(self, slot, limit=_MAX_IO):
        return self._m._ints(self.pos, slot, "options vector", limit)


def _spec_line(kind):
    """The _OPTIONS entry for union type `kind`: 'Name field:k ...', or None."""
    key = "\n%d " % kind
    i = _OPTIONS.find(key)
    if i < 0:
        return None
    i += len(key)
    return _OPTIONS[i : _OPTIONS.find("\n", i)]


def _spec_named(name):
    """(union type, entry) of the options table called `name`."""
    for end in (" ", "\n"):
        i = _OPTIONS.find(" " + name + end)
        if i >= 0:
            start = _OPTIONS.rfind("\n", 0, i) + 1
            return int(_OPTIONS[start:i]), _spec_line(int(_OPTIONS[start:i]))
    raise ModelError("unknown options table %r" % name)


class Operator:
    """One operator: `op` is the builtin code (CONV_2D ...); inputs/outputs are tensor
    indices, -1 for an optional input left out."""

    def __init__(self, model, table, index):
        m = model
        self._m = m
        self.index = index
        self.opcode_index = i = m._scalar(table, _OP_OPCODE_INDEX, "<I", 4, 0)
        if i >= len(m.op_codes):
            raise ModelError("opcode index %d out of range (%d codes)" % (i, len(m.op_codes)))
        self.op = m.op_codes[i]
        self.version = m.op_versions[i]
        self.custom_code = m.custom_codes[i]
        self.inputs = m._ints(table, _OP_INPUTS, "operator inputs", _MAX_IO) or ()
        self.outputs = m._ints(table, _OP_OUTPUTS, "operator outputs", _MAX_IO) or ()
        self.intermediates = (
            m._ints(table, _OP_INTERMEDIATES, "operator intermediates", _MAX_IO) or ()
        )
        self.options_type = m._scalar(table, _OP_OPTIONS_TYPE, "<B", 1, 0)
        pos = m._ref(table, _OP_OPTIONS, "builtin options")
        self.options_table = Table(m, pos) if pos else None
        start, n = m._vec(table, _OP_CUSTOM_OPTIONS, 1, "custom options")
        self.custom_options = m._buf[start : start + n] if start else None

    @property
    def op_name(self):
        return op_name(self.op)

    @property
    def options_name(self):
        t = self.options_type
        line = _spec_line(t) if t else None
        if line:
            return line.split(" ", 1)[0]
        return "NONE" if t == 0 else "OPTIONS_%d" % t

    def options(self, expect=None):
        """The builtin options decoded into an Options object.

        With `expect` (a table name such as "Conv2DOptions") the options must be of that
        kind; when the operator has none, the schema defaults come back, as TFLite does.
        Without it: None when the operator has no options or ones this reader doesn't
        decode (options_table still reads them).
        """
        t = self.options_type
        line = _spec_line(t) if t else None
        table = self.options_table if t else None
        if expect is not None:
            if t == 0:
                line = _spec_named(expect)[1]
            elif line is None or line.split(" ", 1)[0] != expect:
                raise ModelError(
                    "operator %d (%s) has %s, expected %s"
                    % (self.index, self.op_name, self.options_name, expect)
                )
        if line is None:
            return None
        fields = line.split()
        out = Options(fields[0])
        m = self._m
        for slot in range(1, len(fields)):
            name, kind = fields[slot].split(":")
            k = kind[0]
            if k == "s" or k == "v":
                value = None
            elif k == "?":
                value = kind == "?=T"
            elif k == "f":
                value = 0.0
            else:
                value = 1 if kind == "i=1" else 0
            if table is not None:
                pos = table.pos
                if k == "b":
                    value = m._scalar(pos, slot - 1, "<b", 1, value)
                elif k == "?":
                    value = bool(m._scalar(pos, slot - 1, "<B", 1, value))
                elif k == "i":
                    value = m._scalar(pos, slot - 1, "<i", 4, value)
                elif k == "f":
                    value = m._scalar(pos, slot - 1, "<f", 4, value)
                elif k == "s":
                    value = m._str(pos, slot - 1, name)
                else:
                    value = m._ints(pos, slot - 1, name, _MAX_RANK)
            setattr(out, name, value)
        return out
