# What the device heard: reads the microphone in 10 ms frames, honours the mute button
# (LED on while listening), and reports each stretch of speech. The wake-word pipeline
# replaces the reporting once the frontend and the interpreter land.
import math

from micropython import const
from pcm import mean_abs
from vad import END, EnergyVad

FRAME_SAMPLES = const(160)  # 10 ms at 16 kHz
_FULL_SCALE = 32768.0


def level_dbfs(level):
    if level <= 0:
        return -120.0
    return 20.0 * math.log10(level / _FULL_SCALE)


def _report(say, vad, frame_ms):
    say(
        "heard: speech %.2f-%.2f s, peak %.0f dBFS"
        % (
            vad.start_frame * frame_ms / 1000,
            vad.end_frame * frame_ms / 1000,
            level_dbfs(vad.peak),
        )
    )


def run(board, say=print):
    """Listen until the microphone ends (only a simulated one does).

    A press of the mute button toggles listening; returns the number of speech segments."""
    frame = bytearray(2 * FRAME_SAMPLES)
    frame_ms = FRAME_SAMPLES * 1000 // board.mic.rate_hz
    vad = EnergyVad()
    muted = False
    was_pressed = False
    board.led.value(True)
    segments = 0
    while True:
        got = board.mic.readinto(frame)
        if got < len(frame):
            break
        pressed = board.button.pressed()
        if pressed and not was_pressed:
            muted = not muted
            board.led.value(not muted)
            say("muted" if muted else "listening")
        was_pressed = pressed
        if muted:
            level = 0
        else:
            level = mean_abs(frame, FRAME_SAMPLES)
        event = vad.process(level)
        if event == END:
            segments += 1
            _report(say, vad, frame_ms)
    if vad.flush() == END:
        segments += 1
        _report(say, vad, frame_ms)
    board.led.value(False)
    return segments
