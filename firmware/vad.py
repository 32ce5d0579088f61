# Energy-based speech activity with an adaptive noise floor and hangover, integer only.
# Used to say what the device heard and (later) to end a clip at the end of speech.
#
# Per 10 ms frame the level is the mean absolute amplitude. The noise floor follows the
# level down at once and up slowly: 1/64 of the gap per frame outside speech (~0.6 s
# time constant), 1/1024 inside it (~10 s, so a steady new noise ends a segment).
# A frame is speech when its level is above _RATIO x floor and above _MIN_LEVEL.
# A segment starts after _ATTACK speech frames in a row and ends after _HANGOVER
# frames without speech.
from micropython import const

NONE = const(0)
START = const(1)
END = const(2)

_RATIO = const(4)  # 12 dB above the floor
_MIN_LEVEL = const(64)  # about -54 dBFS mean absolute amplitude
_ATTACK = const(3)
_HANGOVER = const(30)
_FLOOR_RISE_SHIFT = const(6)
_FLOOR_RISE_SHIFT_SPEECH = const(10)


class EnergyVad:
    def __init__(self):
        self.floor = -1
        self.in_speech = False
        self.frame = 0
        self.start_frame = 0
        self.end_frame = 0
        self.peak = 0
        self.speech = False  # the newest frame's decision
        self._run = 0
        self._quiet = 0

    def process(self, level):
        """Feed one frame's level; returns NONE, START or END."""
        frame = self.frame
        self.frame = frame + 1
        if self.floor < 0 or level < self.floor:
            self.floor = level
        else:
            shift = _FLOOR_RISE_SHIFT_SPEECH if self.in_speech else _FLOOR_RISE_SHIFT
            self.floor += ((level - self.floor) >> shift) + 1
        threshold = self.floor * _RATIO
        if threshold < _MIN_LEVEL:
            threshold = _MIN_LEVEL
        speech = level > threshold
        self.speech = speech
        if not self.in_speech:
            self._run = self._run + 1 if speech else 0
            if self._run >= _ATTACK:
                self.in_speech = True
                self.start_frame = frame + 1 - _ATTACK
                self.peak = level
                self._quiet = 0
                return START
            return NONE
        if level > self.peak:
            self.peak = level
        if speech:
            self._quiet = 0
            return NONE
        self._quiet += 1
        if self._quiet >= _HANGOVER:
            self.in_speech = False
            self._run = 0
            self.end_frame = frame + 1 - _HANGOVER
            return END
        return NONE

    def flush(self):
        """End an open segment at the end of the stream; returns END or NONE."""
        if not self.in_speech:
            return NONE
        self.in_speech = False
        self.end_frame = self.frame - self._quiet
        return END
