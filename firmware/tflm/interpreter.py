# A TFLite Micro interpreter for int8 streaming models (microWakeWord v2 and ours).
#
# Prepare (once, may allocate): read the model, run the CALL_ONCE init subgraph, plan one
# arena for the activations (tensors whose lifetimes do not overlap share bytes), build
# each kernel's constant tables, and turn every operator into steps (fn, a, b, c, d) of
# viper calls over preallocated buffers. invoke() then only calls those steps: it
# allocates nothing.
import array
import gc
import struct

from micropython import const

from tflm import conv, elementwise, move, pool, quant, reduce
from tflm import model as tfl

_ALIGN = const(4)
_INT8_MIN = const(-128)
_INT8_MAX = const(127)
_UINT8_MAX = const(255)
_FLIP = const(0x80)  # conv.py's filters are biased: each byte w ^ 0x80
_ELEMENT_BYTES = {tfl.INT8: 1, tfl.UINT8: 1, tfl.INT16: 2, tfl.INT32: 4, tfl.BOOL: 1}


class InterpreterError(ValueError):
    pass


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _align(n):
    return (n + _ALIGN - 1) & ~(_ALIGN - 1)


def _slice_elements(ranges, strides_in, count):
    """(src, dst, 1) for each element of a strided slice, generated (runs() merges them)."""
    rank = len(ranges)
    for k in range(count):
        rem = k
        src = 0
        for d in range(rank - 1, -1, -1):
            n = len(ranges[d])
            src += ranges[d][rem % n] * strides_in[d]
            rem //= n
        yield (src, k, 1)


class Interpreter:
    """Runs subgraph 0 of a parsed model (tflm.model.Model)."""

    def __init__(self, model):
        self.model = model
        sg = model.subgraphs[0]
        self._sg = sg
        # Operators and tensors are decoded afresh when needed and dropped, and the arena
        # is allocated right after a collection: what stays is few, so the heap does not
        # fragment into holes too small for the buffers (a 128 KB heap has no room to).
        self._views = [None] * sg.tensor_count  # type: list
        self._constant = array.array("I", bytes(4 * sg.tensor_count))  # buffer index or 0
        self._var_of = {}  # type: dict  # resource tensor index -> variable key
        self.variables = {}  # type: dict  # key -> its view in the arena
        self._initial = {}  # type: dict  # key -> the initial value, a view into the model
        self.steps = []  # type: list
        self._offset_of = {}  # type: dict  # id(arena view) -> its offset in the arena
        self._pending = []  # type: list  # arena-to-arena copy runs (flat) not yet a step
        # (loops here, not generator expressions: each of those is one more function the
        # module's code holds on the heap)
        names = []
        for k in range(sg.operator_count):
            names.append(sg.operator(k).op_name)
        self.op_names = tuple(names)
        self._work_uses = []  # type: list  # (step, argument) that takes the work buffer
        self.scratch_bytes = 0  # the work buffer's size
        # buffer index -> how many times operators and reset() read it (0: non-constants)
        self._reads = {}  # type: dict
        self._constants()
        self._scan_init()
        self._plan_arena()
        self._constant_views()
        for k in range(sg.operator_count):
            op = sg.operator(k)
            try:
                self._prepare(op)
            except (InterpreterError, tfl.ModelError, ValueError) as e:
                raise InterpreterError("operator %d (%s): %s" % (op.index, op.op_name, e)) from None
            except (IndexError, KeyError, ZeroDivisionError, TypeError) as e:
                # a corrupted model: tensor lists too short, sizes of zero, wrong kinds
                raise InterpreterError(
                    "operator %d (%s): malformed (%s: %s)"
                    % (op.index, op.op_name, type(e).__name__, e)
                ) from None
            except MemoryError:
                gc.collect()
                raise InterpreterError(
                    "operator %d (%s): not enough memory to prepare it (%d bytes free)"
                    % (op.index, op.op_name, gc.mem_free())
                ) from None
        self._flush_copies()
        # one work buffer for every step that takes one (see _work_step)
        gc.collect()
        work = bytearray(self.scratch_bytes)
        for k, at in self._work_uses:
            step = list(self.steps[k])
            step[at] = work
            self.steps[k] = tuple(step)
        ends = []  # the inputs' views, then the outputs'
        for i in sg.inputs + sg.outputs:
            ends.append(self._views[i])
        n = len(sg.inputs)
        self.inputs = tuple(ends[:n])
        self.outputs = tuple(ends[n:])
        runs = []
        for v in self.inputs:
            runs.append(move.runs(((0, 0, len(v)),)))
        self._input_runs = tuple(runs)
        self.variable_bytes = 0
        for value in self.variables.values():
            self.variable_bytes += len(value)
        # what only prepare needed goes, so the running interpreter holds less heap: set to
        # None, not deleted. MicroPython's delattr leaves the value in the instance's table,
        # where the collector still finds it (views into the model and the arena, 4 KB for
        # alexa), and lookups probe past deleted slots (deleting them cost about 250
        # instructions per alexa invocation)
        for name in ("_views", "_constant", "_offset_of", "_var_of", "_work_uses", "_reads"):
            setattr(self, name, None)
        if model.biased is False:
            model.biased = True  # the filters are biased in place (_accumulate_and_requantize)
        gc.collect()

    # -- tensors ------------------------------------------------------------------------

    def _constants(self):
        for i in range(self._sg.tensor_count):
            t = self._sg.tensor(i)
            if t.type == tfl.RESOURCE:
                continue
            data = self.model.buffer(t.buffer) if t.buffer else None
            if data is not None and len(data):
                want = _size(t.shape) * self._element_bytes(t)
                if len(data) != want:
                    raise InterpreterError(
                        "tensor %d (%s): %d bytes of data for shape %r"
                        % (t.index, t.name, len(data), tuple(t.shape))
                    )
                self._constant[t.index] = t.buffer
        # the views into the model are made after the arena is allocated: small objects
        # made now would sit between the garbage of decoding and fragment the heap

    def _constant_views(self):
        for i in range(len(self._constant)):
            if self._constant[i]:
                self._views[i] = self.model.buffer(self._constant[i])

    def _element_bytes(self, t):
        try:
            return _ELEMENT_BYTES[t.type]
        except KeyError:
            raise InterpreterError(
                "tensor %d (%s) has type %s, which is not supported"
                % (t.index, t.name, t.type_name)
            ) from None

    def _plan_arena(self):
        """Greedy plan: biggest first, each at the lowest offset free during its lifetime."""
        sg = self._sg
        n_ops = sg.operator_count
        first = {}
        last = {}
        for i in self._sg.inputs:
            first[i] = 0
            last[i] = 0
        op = None
        reads = self._reads
        for k in range(n_ops):
            op = sg.operator(k)
            for i in op.outputs:
                if i >= 0 and i not in first:
                    first[i] = k
                    last[i] = k
            for i in op.inputs:
                if i >= 0:
                    if i not in first:
                        first[i] = k
                    last[i] = k
                    buf = self._constant[i]
                    reads[buf] = reads.get(buf, 0) + 1
        for i in self._sg.outputs:
            if i not in first:
                first[i] = n_ops
            last[i] = n_ops
        items = []
        nbytes = {}
        for i in first:
            t = self._sg.tensor(i)
            if self._constant[i] or t.type == tfl.RESOURCE:
                continue
            nbytes[i] = _size(t.shape) * self._element_bytes(t)
            items.append((_align(nbytes[i]), i))
        items.sort(reverse=True)
        placed = []  # type: list  # (offset, size, first, last)
        offsets = {}
        # the streaming state lives at the start of the arena for the model's whole life, so
        # every data movement (READ/ASSIGN_VARIABLE included) is arena-to-arena and
        # consecutive ones become one step
        var_offsets = {}
        state = 0
        for key, value in self._initial.items():
            var_offsets[key] = state
            state += _align(len(value))
        total = state
        for size, i in items:
            offset = state
            for p_off, p_size, p_first, p_last in sorted(placed):
                if p_last < first[i] or p_first > last[i]:
                    continue
                if offset + size <= p_off:
                    break
                if p_off + p_size > offset:
                    offset = p_off + p_size
            placed.append((offset, size, first[i], last[i]))
            offsets[i] = offset
            if offset + size > total:
                total = offset + size
        self.arena_bytes = total - state  # activations; the buffer also holds the state
        del op, placed, items
        gc.collect()
        try:
            self.arena = bytearray(total)
        except MemoryError:
            raise InterpreterError(
                "the model needs a %d-byte arena: not enough memory" % total
            ) from None
        mv = memoryview(self.arena)
        self._arena_mv = mv
        for i, offset in offsets.items():
            self._views[i] = mv[offset : offset + nbytes[i]]
            self._offset_of[id(self._views[i])] = offset
        for key, offset in var_offsets.items():
            view = mv[offset : offset + len(self._initial[key])]
            view[:] = self._initial[key]
            self.variables[key] = view
            self._offset_of[id(view)] = offset

    def _view(self, i):
        v = self._views[i]
        if v is None:
            raise InterpreterError("tensor %d has no storage" % i)
        return v

    def _tensor(self, i):
        """The tensor's description, decoded afresh (prepare only: nothing is kept)."""
        return self._sg.tensor(i)

    # -- operators ----------------------------------------------------------------------

    def _prepare(self, op):
        code = op.op
        if code == tfl.CALL_ONCE:
            pass  # its init subgraph was run by _scan_init: the state is in the arena
        elif code == tfl.VAR_HANDLE:
            self._var_handle(op)
        elif code == tfl.READ_VARIABLE:
            var = self.variables[self._variable(op.inputs[0])]
            self._copy(self._view(op.outputs[0]), var, ((0, 0, len(var)),))
        elif code == tfl.ASSIGN_VARIABLE:
            var = self.variables[self._variable(op.inputs[0])]
            value = self._view(op.inputs[1])
            if len(value) != len(var):
                raise InterpreterError(
                    "assigns %d bytes to a %d-byte variable" % (len(value), len(var))
                )
            self._copy(var, value, ((0, 0, len(var)),))
        elif code == tfl.RESHAPE:
            src = self._view(op.inputs[0])
            dst = self._view(op.outputs[0])
            if len(src) != len(dst):
                raise InterpreterError("reshape from %d to %d bytes" % (len(src), len(dst)))
            self._copy(dst, src, ((0, 0, len(src)),))
        elif code == tfl.CONCATENATION:
            self._concatenation(op)
        elif code == tfl.STRIDED_SLICE:
            self._strided_slice(op)
        elif code == tfl.SPLIT_V:
            self._split_v(op)
        elif code == tfl.CONV_2D:
            self._conv(op, depthwise=False)
        elif code == tfl.DEPTHWISE_CONV_2D:
            self._conv(op, depthwise=True)
        elif code == tfl.FULLY_CONNECTED:
            self._fully_connected(op)
        elif code == tfl.LOGISTIC:
            self._logistic(op)
        elif code == tfl.QUANTIZE:
            self._quantize(op)
        elif code == tfl.AVERAGE_POOL_2D:
            self._pool(op, pool.average_pool)
        elif code == tfl.MAX_POOL_2D:
            self._pool(op, pool.max_pool)
        elif code == tfl.ADD:
            self._add(op)
        elif code == tfl.MUL:
            self._mul(op)
        elif code == tfl.MEAN:
            self._mean(op)
        else:
            raise InterpreterError("op %s is not supported" % op.op_name)

    def _copy(self, dst, src, triples):
        d_off = self._offset_of.get(id(dst))
        s_off = self._offset_of.get(id(src))
        if d_off is None or s_off is None:
            table = move.runs(triples)
            self._add_step((move.copy_runs, dst, src, table, len(table) // 3))
            return
        pending = self._pending  # flat (src, dst, n) runs, merged as they come
        for s, d, n in triples:
            s += s_off
            d += d_off
            if pending and pending[-3] + pending[-1] == s and pending[-2] + pending[-1] == d:
                pending[-1] += n
            elif n > 0:
                pending.extend((s, d, n))

    def _flush_copies(self):
        """Make the arena-to-arena copies gathered so far one step (runs stay in order)."""
        if self._pending:
            table = array.array("i", self._pending)
            self._pending = []
            mv = self._arena_mv
            self.steps.append((move.copy_runs, mv, mv, table, len(table) // 3))

    def _add_step(self, step):
        self._flush_copies()
        self.steps.append(step)

    def _work_step(self, step, at, nbytes):
        """Add a step whose argument `at` (None in step) is the work buffer: int32
        accumulators and scratch that live from one step to the next, so one buffer of the
        largest size asked for serves every such step."""
        self._add_step(step)
        self._work_uses.append((len(self.steps) - 1, at))
        if nbytes > self.scratch_bytes:
            self.scratch_bytes = nbytes

    # resource variables

    def _var_key(self, op):
        o = op.options("VarHandleOptions")
        return (o.container or "") + "/" + (o.shared_name or "")

    def _var_handle(self, op):
        self._var_of[op.outputs[0]] = self._var_key(op)

    def _variable(self, i):
        try:
            return self._var_of[i]
        except KeyError:
            raise InterpreterError("tensor %d is not a variable handle" % i) from None

    def _scan_init(self):
        """The streaming state: what each CALL_ONCE init subgraph assigns (constants)."""
        sg = self._sg
        for k in range(sg.operator_count):
            op = sg.operator(k)
            if op.op == tfl.CALL_ONCE:
                try:
                    self._call_once(op)
                except (tfl.ModelError, ValueError, IndexError, KeyError) as e:
                    raise InterpreterError("operator %d (CALL_ONCE): %s" % (k, e)) from None

    def _call_once(self, op):
        index = op.options("CallOnceOptions").init_subgraph_index
        sg = self.model.subgraphs[index]
        handles = {}
        for k in range(sg.operator_count):
            init = sg.operator(k)
            if init.op == tfl.VAR_HANDLE:
                handles[init.outputs[0]] = self._var_key(init)
            elif init.op == tfl.ASSIGN_VARIABLE:
                key = handles.get(init.inputs[0])
                t = sg.tensor(init.inputs[1])
                data = self.model.buffer(t.buffer) if t.buffer else None
                if key is None or data is None or not len(data):
                    raise InterpreterError("init subgraph %d assigns a non-constant" % index)
                self._initial[key] = data
                self._reads[t.buffer] = self._reads.get(t.buffer, 0) + 1  # reset() reads it
            else:
                raise InterpreterError(
                    "init subgraph %d: op %s is not supported there" % (index, init.op_name)
                )

    def reset(self):
        """Put the streaming state back to what the init subgraph assigned."""
        for key, value in self._initial.items():
            self.variables[key][:] = value

    # data movement

    def _check_same_quantization(self, a, b):
        qa = self._tensor(a).quantization
        qb = self._tensor(b).quantization
        if qa is None or qb is None:
            return
        if tuple(qa.scale) != tuple(qb.scale) or tuple(qa.zero_point) != tuple(qb.zero_point):
            raise InterpreterError("inputs and output are quantized differently (not supported)")

    def _concatenation(self, op):
        axis = op.options("ConcatenationOptions").axis
        out = self._tensor(op.outputs[0])
        rank = len(out.shape)
        if axis < 0:
            axis += rank
        outer = _size(out.shape[:axis])
        out_chunk = _size(out.shape[axis:])
        dst = self._view(op.outputs[0])
        at = 0
        for i in op.inputs:
            self._check_same_quantization(i, op.outputs[0])
            chunk = _size(self._tensor(i).shape[axis:])
            triples = [(o * chunk, o * out_chunk + at, chunk) for o in range(outer)]
            self._copy(dst, self._view(i), triples)
            at += chunk
        if at != out_chunk:
            raise InterpreterError("inputs do not add up to the output along axis %d" % axis)

    def _ints(self, i):
        # (the message is the filters' too: one string in the module)
        if self._tensor(i).type != tfl.INT32 or not self._constant[i]:
            raise InterpreterError("tensor %d must be a constant %s tensor" % (i, "int32"))
        data = self._views[i]
        return struct.unpack("<%di" % (len(data) // 4), data)

    def _strided_slice(self, op):
        o = op.options("StridedSliceOptions")
        if o.ellipsis_mask or o.new_axis_mask or o.offset:
            raise InterpreterError("ellipsis, new-axis and offset slicing are not supported")
        self._check_same_quantization(op.inputs[0], op.outputs[0])
        shape = tuple(self._tensor(op.inputs[0]).shape)
        begin = self._ints(op.inputs[1])
        end = self._ints(op.inputs[2])
        strides = self._ints(op.inputs[3])
        ranges = []
        for d, dim in enumerate(shape):
            stride = strides[d]
            if stride == 0:
                raise InterpreterError("stride 0 on axis %d" % d)
            lo, hi = (0, dim) if stride > 0 else (-1, dim - 1)
            start = begin[d]
            if o.begin_mask & (1 << d):
                start = lo if stride > 0 else hi
            elif start < 0:
                start += dim
            start = min(max(start, lo), hi)
            if o.shrink_axis_mask & (1 << d):
                stop = start + 1 if stride > 0 else start - 1
            else:
                stop = end[d]
                if o.end_mask & (1 << d):
                    stop = hi if stride > 0 else lo
                elif stop < 0:
                    stop += dim
                stop = min(max(stop, lo), hi)
            ranges.append(range(start, stop, stride))
        count = _size([len(r) for r in ranges])
        if count != len(self._view(op.outputs[0])):
            raise InterpreterError(
                "slice of %d elements for a %d-byte output"
                % (count, len(self._view(op.outputs[0])))
            )
        strides_in = [1] * len(shape)
        for d in range(len(shape) - 2, -1, -1):
            strides_in[d] = strides_in[d + 1] * shape[d + 1]
        self._copy(
            self._view(op.outputs[0]),
            self._view(op.inputs[0]),
            _slice_elements(ranges, strides_in, count),
        )

    def _split_v(self, op):
        src_t = self._tensor(op.inputs[0])
        axis = self._ints(op.inputs[2])[0]
        shape = tuple(src_t.shape)
        if axis < 0:
            axis += len(shape)
        outer = _size(shape[:axis])
        in_chunk = _size(shape[axis:])
        at = 0
        for i in op.outputs:
            self._check_same_quantization(op.inputs[0], i)
            chunk = _size(self._tensor(i).shape[axis:])
            triples = [(o * in_chunk + at, o * chunk, chunk) for o in range(outer)]
            self._copy(self._view(i), self._view(op.inputs[0]), triples)
            at += chunk
        if at != in_chunk:
            raise InterpreterError("outputs do not add up to the input along axis %d" % axis)

    # arithmetic

    def _quant(self, i):
        q = self._tensor(i).quantization
        if q is None or not len(q.scale):
            raise InterpreterError("tensor %d is not quantized" % i)
        return q

    def _int8(self, i):
        t = self._tensor(i)
        if t.type != tfl.INT8:
            raise InterpreterError("tensor %d is %s, expected INT8" % (i, t.type_name))
        return t

    def _conv(self, op, depthwise):
        inp = self._int8(op.inputs[0])
        filt = self._int8(op.inputs[1])
        out = self._int8(op.outputs[0])
        if len(inp.shape) != 4 or inp.shape[0] != 1:
            raise InterpreterError("input shape %r: only batch 1 NHWC" % (tuple(inp.shape),))
        o = op.options("DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
        in_h, in_w, in_c = inp.shape[1], inp.shape[2], inp.shape[3]
        if depthwise:
            k_h, k_w, out_c = filt.shape[1], filt.shape[2], filt.shape[3]
            mult = out_c // in_c
            if mult * in_c != out_c:
                raise InterpreterError("%d output channels for %d input channels" % (out_c, in_c))
        else:
            out_c, k_h, k_w = filt.shape[0], filt.shape[1], filt.shape[2]
            mult = 0
            if filt.shape[3] != in_c:
                raise InterpreterError(
                    "filter depth %d for %d input channels" % (filt.shape[3], in_c)
                )
        stride = (o.stride_h, o.stride_w)
        dilation = (o.dilation_h_factor, o.dilation_w_factor)
        pads = []
        outs = []
        for n, k, s, d in (
            (in_h, k_h, stride[0], dilation[0]),
            (in_w, k_w, stride[1], dilation[1]),
        ):
            eff = (k - 1) * d + 1
            if o.padding == tfl.PADDING_SAME:
                size = (n + s - 1) // s
            else:
                size = (n - eff + s) // s
            outs.append(size)
            pads.append(max(0, (size - 1) * s + eff - n) // 2)
        if tuple(out.shape) != (1, outs[0], outs[1], out_c):
            raise InterpreterError(
                "output shape %r, expected %r" % (tuple(out.shape), (1, outs[0], outs[1], out_c))
            )
        geom = conv.geometry(
            (in_h, in_w, in_c),
            (outs[0], outs[1], out_c),
            (k_h, k_w),
            stride,
            dilation,
            tuple(pads),
            -self._quant(op.inputs[0]).zero_point[0],
            mult,
        )
        self._accumulate_and_requantize(
            op,
            conv.depthwise_conv2d if depthwise else conv.conv2d,
            geom,
            out_c,
            outs[0] * outs[1] * out_c,
            o.fused_activation_function,
        )

    def _fully_connected(self, op):
        inp = self._int8(op.inputs[0])
        filt = self._int8(op.inputs[1])
        self._int8(op.outputs[0])
        o = op.options("FullyConnectedOptions")
        if o.weights_format != 0:
            raise InterpreterError("shuffled weights are not supported")
        units, depth = filt.shape[0], filt.shape[1]
        batches = _size(inp.shape) // depth
        geom = conv.geometry(
            (batches, 1, depth),
            (batches, 1, units),
            (1, 1),
            (1, 1),
            (1, 1),
            (0, 0),
            -self._quant(op.inputs[0]).zero_point[0],
        )
        self._accumulate_and_requantize(
            op, conv.conv2d, geom, units, batches * units, o.fused_activation_function
        )

    def _accumulate_and_requantize(self, op, kernel, geom, out_c, n_out, activation):
        in_q = self._quant(op.inputs[0])
        f_q = self._quant(op.inputs[1])
        out_q = self._quant(op.outputs[0])
        for z in f_q.zero_point:
            if z != 0:
                raise InterpreterError("filter zero point %d (must be 0)" % z)
        scales = f_q.scale
        if len(scales) not in (1, out_c):
            raise InterpreterError("%d filter scales for %d channels" % (len(scales), out_c))
        in_s = quant.f32(in_q.scale[0])
        out_s = quant.f32(out_q.scale[0])
        multipliers = []
        for c in range(len(scales)):
            d = quant.ddiv(quant.dmul(in_s, quant.f32(scales[c])), out_s)
            multipliers.append(quant.quantize_multiplier(d))
        out_zp = out_q.zero_point[0]
        lo, hi = quant.activation_range(activation, out_q.scale[0], out_zp, _INT8_MIN, _INT8_MAX)
        table = quant.requant_table(multipliers, out_zp, lo, hi)
        bias = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias = self._view(op.inputs[2])
            if len(bias) != 4 * out_c:
                raise InterpreterError("bias of %d bytes for %d channels" % (len(bias), out_c))
        # the filter biased as conv.py reads it (each byte w ^ 0x80): in place in a loaded
        # model's own bytes, once in the model's life (model.biased), when this is the only
        # read of its buffer; else (the caller's bytes, a buffer read twice) in a copy
        i = op.inputs[1]
        buf = self._constant[i]
        if not buf:
            raise InterpreterError("tensor %d must be a constant %s tensor" % (i, "int8"))
        filt = self._views[i]
        biased = self.model.biased
        if biased is None or self._reads[buf] > 1:
            filt = bytearray(filt)
            biased = False
        if not biased:
            flip = bytes(range(_FLIP, 2 * _FLIP)) + bytes(range(_FLIP))  # b -> b ^ 0x80
            move.map_bytes(filt, filt, flip, len(filt))
        t = conv.table(geom, bias, filt, kernel is conv.depthwise_conv2d)
        self._work_step((kernel, self._view(op.inputs[0]), filt, None, t), 3, conv.work_bytes(t))
        step = (quant.requantize, None, self._view(op.outputs[0]), n_out, table)
        self._work_step(step, 1, 4 * n_out)

    def _lut_step(self, op, lut):
        src = self._view(op.inputs[0])
        self._add_step((move.map_bytes, self._view(op.outputs[0]), src, lut, len(src)))

    def _logistic(self, op):
        from tflm import logistic

        self._int8(op.inputs[0])
        out_q = self._quant(op.outputs[0])
        if out_q.zero_point[0] != _INT8_MIN:
            raise InterpreterError("output zero point %d (must be -128)" % out_q.zero_point[0])
        q = self._quant(op.inputs[0])
        self._lut_step(op, logistic.lut(q.scale[0], q.zero_point[0]))

    def _quantize(self, op):
        src = self._tensor(op.inputs[0])
        dst = self._tensor(op.outputs[0])
        ranges = {tfl.INT8: (_INT8_MIN, _INT8_MAX), tfl.UINT8: (0, _UINT8_MAX)}
        if src.type not in ranges or dst.type not in ranges:
            raise InterpreterError(
                "QUANTIZE from %s to %s is not supported" % (src.type_name, dst.type_name)
            )
        in_q = self._quant(op.inputs[0])
        out_q = self._quant(op.outputs[0])
        d = quant.ddiv(quant.f32(in_q.scale[0]), quant.f32(out_q.scale[0]))
        multiplier, shift = quant.quantize_multiplier(d)
        lo, hi = ranges[dst.type]
        in_lo = ranges[src.type][0]
        lut = bytearray(256)
        for b in range(256):
            x = b if in_lo == 0 else (b ^ 0x80) - 0x80
            v = quant.mbqm(x - in_q.zero_point[0], multiplier, shift) + out_q.zero_point[0]
            lut[b] = min(max(v, lo), hi) & 0xFF
        self._lut_step(op, bytes(lut))

    def _pool(self, op, kernel):
        inp = self._int8(op.inputs[0])
        out = self._int8(op.outputs[0])
        if len(inp.shape) != 4:
            raise InterpreterError("input shape %r: only NHWC" % (tuple(inp.shape),))
        in_q = self._quant(op.inputs[0])
        out_q = self._quant(op.outputs[0])
        if in_q.zero_point[0] != out_q.zero_point[0] or abs(in_q.scale[0] - out_q.scale[0]) > 1e-6:
            raise InterpreterError("input and output are quantized differently")
        o = op.options("Pool2DOptions")
        batches, in_h, in_w, c = inp.shape
        pads = []
        outs = []
        for n, k, s in ((in_h, o.filter_height, o.stride_h), (in_w, o.filter_width, o.stride_w)):
            if k < 1 or s < 1:
                raise InterpreterError("filter %d stride %d" % (k, s))
            if o.padding == tfl.PADDING_SAME:
                size = (n + s - 1) // s
            else:
                size = (n - k + s) // s
            outs.append(size)
            pads.append(max(0, (size - 1) * s + k - n) // 2)
        if tuple(out.shape) != (batches, outs[0], outs[1], c):
            raise InterpreterError(
                "output shape %r, expected %r" % (tuple(out.shape), (batches, outs[0], outs[1], c))
            )
        lo, hi = quant.activation_range(
            o.fused_activation_function, out_q.scale[0], out_q.zero_point[0], _INT8_MIN, _INT8_MAX
        )
        geom = pool.geometry(
            (in_h, in_w, c),
            (outs[0], outs[1]),
            (o.filter_height, o.filter_width),
            (o.stride_h, o.stride_w),
            tuple(pads),
            lo,
            hi,
        )
        src = self._view(op.inputs[0])
        dst = self._view(op.outputs[0])
        in_n = in_h * in_w * c
        out_n = outs[0] * outs[1] * c
        for b in range(batches):
            self._add_step(
                (
                    kernel,
                    src[b * in_n : (b + 1) * in_n],
                    dst[b * out_n : (b + 1) * out_n],
                    geom,
                    0,
                )
            )

    def _binary(self, op, mode, lut1, lut2, multiplier, activation):
        """ADD/MUL: int32 accumulators through the broadcast, then requantize."""
        out_t = self._tensor(op.outputs[0])
        shape1 = tuple(self._tensor(op.inputs[0]).shape)
        shape2 = tuple(self._tensor(op.inputs[1]).shape)
        try:
            t = elementwise.table(mode, shape1, shape2, lut1, lut2)
        except ValueError as e:
            raise InterpreterError(str(e)) from None
        n = _size(out_t.shape)
        dims = t[1 : 1 + 4]
        if _size(dims) != n:
            raise InterpreterError(
                "output shape %r for inputs %r and %r" % (tuple(out_t.shape), shape1, shape2)
            )
        out_q = self._quant(op.outputs[0])
        lo, hi = quant.activation_range(
            activation, out_q.scale[0], out_q.zero_point[0], _INT8_MIN, _INT8_MAX
        )
        table = quant.requant_table([multiplier], out_q.zero_point[0], lo, hi)
        v1 = self._view(op.inputs[0])
        v2 = self._view(op.inputs[1])
        self._work_step((elementwise.binary, v1, v2, None, t), 3, 4 * n)
        self._work_step((quant.requantize, None, self._view(op.outputs[0]), n, table), 1, 4 * n)

    def _binary_operands(self, op):
        for i in (op.inputs[0], op.inputs[1], op.outputs[0]):
            self._int8(i)
        return self._quant(op.inputs[0]), self._quant(op.inputs[1]), self._quant(op.outputs[0])

    def _add(self, op):
        q1, q2, out_q = self._binary_operands(op)
        s1 = q1.scale[0]
        s2 = q2.scale[0]
        twice_max = quant.f32(s1 if s1 > s2 else s2)
        twice_max = (twice_max[0], twice_max[1] + 1)
        out_s = quant.f32(out_q.scale[0])
        luts = []
        for s, zp in ((s1, q1.zero_point[0]), (s2, q2.zero_point[0])):
            m, shift = quant.quantize_multiplier(quant.ddiv(quant.f32(s), twice_max))
            lut = []
            for b in range(256):
                x = ((b ^ 0x80) - 0x80 - zp) << 20
                lut.append(quant.mbqm(x, m, shift))
            luts.append(lut)
        multiplier = quant.quantize_multiplier(quant.ddiv(twice_max, (out_s[0], out_s[1] + 20)))
        if multiplier[1] > 0:
            raise InterpreterError("output scale too small for the inputs' (multiplier >= 1)")
        o = op.options("AddOptions")
        self._binary(op, elementwise.ADD, luts[0], luts[1], multiplier, o.fused_activation_function)

    def _mul(self, op):
        q1, q2, out_q = self._binary_operands(op)
        real = quant.ddiv(
            quant.dmul(quant.f32(q1.scale[0]), quant.f32(q2.scale[0])), quant.f32(out_q.scale[0])
        )
        multiplier = quant.quantize_multiplier(real)
        luts = []
        biggest = 1
        for q in (q1, q2):
            zp = q.zero_point[0]
            lut = [((b ^ 0x80) - 0x80) - zp for b in range(256)]
            biggest *= max(abs(lut[127]), abs(lut[128]))
            luts.append(lut)
        if multiplier[1] > 0 and (biggest << multiplier[1]) >= 1 << 31:
            raise InterpreterError("multiplier %d shift %d overflows int32" % multiplier)
        o = op.options("MulOptions")
        self._binary(op, elementwise.MUL, luts[0], luts[1], multiplier, o.fused_activation_function)

    def _mean(self, op):
        inp = self._int8(op.inputs[0])
        self._int8(op.outputs[0])
        in_q = self._quant(op.inputs[0])
        out_q = self._quant(op.outputs[0])
        shape = tuple(inp.shape)
        axes = []
        for a in self._ints(op.inputs[1]):
            if a < 0:
                a += len(shape)
            if a < 0 or a >= len(shape):
                raise InterpreterError("axis %d for rank %d" % (a, len(shape)))
            if a not in axes:
                axes.append(a)
        try:
            table, outputs, count = reduce.plan(shape, axes, in_q.zero_point[0])
        except ValueError as e:
            raise InterpreterError(str(e)) from None
        if outputs != len(self._view(op.outputs[0])):
            raise InterpreterError(
                "mean into %d outputs for a %d-byte output"
                % (outputs, len(self._view(op.outputs[0])))
            )
        m, shift = quant.quantize_multiplier(
            quant.ddiv(quant.f32(in_q.scale[0]), quant.f32(out_q.scale[0]))
        )
        m, shift = reduce.mean_multiplier(m, shift, count)
        if shift > 0 and (255 * count) << shift >= 1 << 31:
            raise InterpreterError("multiplier %d shift %d overflows int32" % (m, shift))
        rtable = quant.requant_table([(m, shift)], out_q.zero_point[0], _INT8_MIN, _INT8_MAX)
        nbytes = 4 * outputs
        self._work_step((reduce.mean_sums, self._view(op.inputs[0]), None, table, 0), 2, nbytes)
        step = (quant.requantize, None, self._view(op.outputs[0]), outputs, rtable)
        self._work_step(step, 1, nbytes)

    # -- running ------------------------------------------------------------------------

    def set_input(self, index, data):
        """Copy `data` (bytes-like, exactly the input's size) into input `index`."""
        dst = self.inputs[index]
        if len(data) != len(dst):
            raise InterpreterError("input %d takes %d bytes, got %d" % (index, len(dst), len(data)))
        move.copy_runs(dst, data, self._input_runs[index], 1)

    def invoke(self):
        for fn, a, b, c, d in self.steps:
            fn(a, b, c, d)
