# Wake-word models on the device: each model takes 3 consecutive int8 feature frames per
# invocation (microWakeWord v2: input [1, 3, 40], output uint8 probability; the blocks do
# not overlap, so a model runs every 30 ms), and a detector that decides as ESPHome's
# micro_wake_word does (esphome components/micro_wake_word/streaming_model.cpp), so that a
# published model's probability_cutoff means the same thing here:
#   - the last sliding_window_size outputs are kept (zeros at start);
#   - cutoff_u8 = int(probability_cutoff * 255) (truncated, as ESPHome's codegen does);
#   - detection when sum(outputs) > cutoff_u8 * sliding_window_size (mean above the cutoff),
#     checked after each new output;
#   - at start and after each detection the outputs are zeroed and detection is held off
#     for _MIN_FRAMES_BEFORE_DETECTION feature frames (10 ms each), counted only while the
#     newest output is below the cutoff: one utterance gives one detection.
from micropython import const
from tflm import interpreter, model

FRAMES_PER_INVOCATION = const(3)
FEATURES = const(40)
_MIN_FRAMES_BEFORE_DETECTION = const(100)  # ESPHome's MIN_SLICES_BEFORE_DETECTION


def cutoff_u8(probability_cutoff):
    """The manifest's probability_cutoff (0..1) as ESPHome compares it: a uint8."""
    return int(probability_cutoff * 255)


class Detector:
    """ESPHome's sliding-window detector over uint8 model outputs."""

    def __init__(self, cutoff, window):
        if not 0 <= cutoff <= 255:
            raise ValueError("probability cutoff %d is outside 0..255" % cutoff)
        if window < 1:
            raise ValueError("sliding window size %d must be at least 1" % window)
        self.cutoff_u8 = cutoff
        self.window = window
        self._recent = bytearray(window)
        self._at = 0
        self._sum = 0
        self._newest = 0
        self._hold = 0
        self.detections = 0
        self.reset()

    def reset(self):
        """Zero the outputs and hold detection off (start-up, and after a detection)."""
        for i in range(self.window):
            self._recent[i] = 0
        self._sum = 0
        self._newest = 0
        self._hold = _MIN_FRAMES_BEFORE_DETECTION

    def frame(self, p=None):
        """One feature frame went by; p is the model's new output if it ran on it.
        Returns True when this frame completes a detection."""
        if p is not None:
            self._at += 1
            if self._at == self.window:
                self._at = 0
            self._sum += p - self._recent[self._at]
            self._recent[self._at] = p
            self._newest = p
        if self._hold > 0 and self._newest < self.cutoff_u8:
            self._hold -= 1
        if p is None or self._hold > 0:
            return False
        if self._sum > self.cutoff_u8 * self.window:
            self.detections += 1
            self.reset()
            return True
        return False


class WakeWord:
    """One model: collects frames, invokes every FRAMES_PER_INVOCATION, detects."""

    def __init__(self, name, path, cutoff, window):
        self.name = name
        self.interp = interpreter.Interpreter(model.load(path))
        for what, tensors in (("input", self.interp.inputs), ("output", self.interp.outputs)):
            if not tensors:  # a broken model, refused like the others (main.load_wakewords)
                raise interpreter.InterpreterError("%s: the model has no %s tensor" % (path, what))
        inp = self.interp.inputs[0]
        if len(inp) != FRAMES_PER_INVOCATION * FEATURES:
            raise interpreter.InterpreterError(
                "%s: input of %d bytes, a microWakeWord model takes %d"
                % (path, len(inp), FRAMES_PER_INVOCATION * FEATURES)
            )
        if len(self.interp.outputs[0]) != 1:
            raise interpreter.InterpreterError("%s: more than one output value" % path)
        # the frames of one invocation, gathered here and handed over with set_input (so
        # the interpreter keeps its own input representation); one view per frame slot,
        # made once, so that add_frame copies with one slice store and allocates nothing
        self._frames = bytearray(FRAMES_PER_INVOCATION * FEATURES)
        frames = memoryview(self._frames)
        self._slots = tuple(
            frames[k * FEATURES : (k + 1) * FEATURES] for k in range(FRAMES_PER_INVOCATION)
        )
        self._filled = 0
        self.detector = Detector(cutoff, window)
        self.p = 0
        self.invocations = 0

    def add_frame(self, frame_int8):
        """Append one frame; returns True when a detection happened at this frame, None when
        no invocation happened, False otherwise (self.p holds the newest output)."""
        self._slots[self._filled][:] = frame_int8  # int8 bytes as they are
        self._filled += 1
        if self._filled < FRAMES_PER_INVOCATION:
            self.detector.frame()
            return None
        self._filled = 0
        self.interp.set_input(0, self._frames)
        self.interp.invoke()
        self.invocations += 1
        self.p = self.interp.outputs[0][0]
        return self.detector.frame(self.p)
