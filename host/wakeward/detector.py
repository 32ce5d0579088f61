"""The device's detection rule on the PC: ESPHome's sliding-window detector, as
firmware/wakeword.py's `Detector` runs it, for `wakeward try` (one output at a time) and for
the trainer's evaluation (hours of outputs at once, many cutoffs).

The rule (see firmware/wakeword.py): a model runs every third 10 ms feature frame; the
detector keeps its last `window` uint8 outputs (zeros at start) and detects when their sum
exceeds `cutoff_u8 * window`. At start and after each detection the outputs are zeroed and
detection is held off for HOLD_FRAMES feature frames, counted only while the newest output
is below the cutoff. `tests/firmware/test_wakeword.py` checks both functions here against
the firmware's own class on the unix port.

`detections` finds the same invocations without stepping frame by frame: after a reset at
invocation r (or at start, r = -1) the hold runs out at invocation j exactly when at least
`_QUIET_OUTPUTS` outputs strictly between r and j are below the cutoff (the zeroed newest
output counts 2 frames, each quiet output 3: 2 + 3 * 33 >= 100). By then j - r > 33, so a
window of at most `_FAST_WINDOW_MAX` outputs holds only outputs after the reset, and the
window sum is the plain moving sum. Wider windows take the step-by-step path.
"""

from __future__ import annotations

import numpy as np

HOLD_FRAMES = 100  # ESPHome's MIN_SLICES_BEFORE_DETECTION
FRAMES_PER_INVOCATION = 3
_RESET_FRAMES = FRAMES_PER_INVOCATION - 1  # frames of the next invocation before its output
_QUIET_OUTPUTS = -(-(HOLD_FRAMES - _RESET_FRAMES) // FRAMES_PER_INVOCATION)  # 33
_FAST_WINDOW_MAX = _QUIET_OUTPUTS + 1


def cutoff_u8(probability_cutoff: float) -> int:
    """The manifest's probability_cutoff as the device compares it (ESPHome truncates)."""
    return int(probability_cutoff * 255)


def probability(output_u8: int) -> float:
    """A model output (0..255, what the device and the protocol carry) as the probability
    users see everywhere (0..1, 3 decimals, the scale of probability_cutoff)."""
    return round(output_u8 / 255, 3)


class Detector:
    """One output at a time, frame for frame as firmware/wakeword.py's Detector."""

    def __init__(self, cutoff: int, window: int) -> None:
        if not 0 <= cutoff <= 255:
            raise ValueError(f"probability cutoff {cutoff} is outside 0..255")
        if window < 1:
            raise ValueError(f"sliding window size {window} must be at least 1")
        self.cutoff_u8 = cutoff
        self.window = window
        self._recent = [0] * window
        self._at = 0
        self._newest = 0
        self._hold = HOLD_FRAMES
        self.detections = 0

    def _reset(self) -> None:
        self._recent = [0] * self.window
        self._newest = 0
        self._hold = HOLD_FRAMES

    def _frame(self, p: int | None) -> bool:
        if p is not None:
            self._at = (self._at + 1) % self.window
            self._recent[self._at] = p
            self._newest = p
        if self._hold > 0 and self._newest < self.cutoff_u8:
            self._hold -= 1
        if p is None or self._hold > 0:
            return False
        if sum(self._recent) > self.cutoff_u8 * self.window:
            self.detections += 1
            self._reset()
            return True
        return False

    def output(self, p: int) -> bool:
        """One invocation's output (after its feature frames); True on a detection."""
        for _ in range(_RESET_FRAMES):
            self._frame(None)
        return self._frame(int(p))


def _stepwise(outputs: np.ndarray, cutoff: int, window: int) -> np.ndarray:
    d = Detector(cutoff, window)
    return np.array([k for k, p in enumerate(outputs.tolist()) if d.output(p)], np.int64)


def detections(outputs: np.ndarray, cutoff: int, window: int) -> np.ndarray:
    """Invocation indices at which the device detects, over a whole stream of uint8
    outputs from one model run from start (fresh state)."""
    if not 0 <= cutoff <= 255:
        raise ValueError(f"probability cutoff {cutoff} is outside 0..255")
    if window < 1:
        raise ValueError(f"sliding window size {window} must be at least 1")
    p = np.asarray(outputs, dtype=np.int64)
    if window > _FAST_WINDOW_MAX:
        return _stepwise(p, cutoff, window)
    sums = np.convolve(p, np.ones(window, np.int64))[: len(p)]
    candidates = np.flatnonzero(sums > cutoff * window)
    quiet = np.concatenate(([0], np.cumsum(p < cutoff)))  # quiet[i]: quiet outputs before i
    found = []
    last = -1
    at = 0
    while at < len(candidates):
        # the first j > last with quiet outputs in (last, j) >= _QUIET_OUTPUTS
        ready = int(np.searchsorted(quiet, quiet[last + 1] + _QUIET_OUTPUTS, side="left"))
        at = int(np.searchsorted(candidates, max(ready, last + 1), side="left"))
        if at >= len(candidates):
            break
        last = int(candidates[at])
        found.append(last)
    return np.array(found, np.int64)
