# The listening loop: reads the microphone in 10 ms frames, honours the mute button (LED on
# while listening, off while muted, blinking while the owner's request is active: request.py),
# computes the speech features, runs every wake-word model on them and reports detections
# and each stretch of speech (on the USB serial link, where the console goes to the PC, only
# in trace mode or while the owner's request is active); with a link (link.py), each
# detection's clip goes to the owner's PC, every model output goes to the link (sent only
# while a monitor request is active), and the link is polled once per frame, muted or not
# (acks, requests, status, reconnects).
import json
import math

import chime
from frontend import Frontend
from micropython import const
from pcm import mean_abs
from vad import END, EnergyVad

FRAME_SAMPLES = const(160)  # 10 ms at 16 kHz
_ASKED_BLINK_MS = const(250)  # the LED's half period while a request is active
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


def _invocation(say, ww, frames, detected):
    """One JSON line per model invocation (trace mode): t is the audio time in seconds at the
    end of the newest frame."""
    say(json.dumps({"t": _frame_end_s(frames), "model": ww.name, "p": ww.p, "detected": detected}))


def _frame_end_s(frames):
    """Audio time at the end of frame number `frames` (the first ends at 30 ms)."""
    return (frames * FRAME_SAMPLES + 2 * FRAME_SAMPLES) / 16000


def _led_on(board, muted, link):
    """The state LED: off while muted, blinking while a request is active, else on."""
    if muted:
        return False
    if link is not None and link.asked():
        return (board.ticks_ms() // _ASKED_BLINK_MS) & 1 == 0
    return True


def _speech_said(speech_log, trace, link):
    """Whether a stretch of speech is reported: when and how loud someone spoke comes from
    the audio, so where the console leaves the device (the USB serial link) only when the
    owner asked (trace mode, or a request is active)."""
    return speech_log or trace or (link is not None and link.asked())


def run(board, say=print, wakewords=(), trace=False, link=None, speech_log=True):
    """Listen until the microphone ends (only a simulated one does).

    A press of the mute button toggles listening; returns the number of speech segments.
    speech_log False: the `heard:` lines only in trace mode or while a request is active."""
    frame = bytearray(2 * FRAME_SAMPLES)
    frame_ms = FRAME_SAMPLES * 1000 // board.mic.rate_hz
    vad = EnergyVad()
    frontend = Frontend()
    ding = chime.make() if wakewords else None
    muted = False
    was_pressed = False
    lit = True
    board.led.value(lit)
    segments = 0
    while True:
        got = board.mic.readinto(frame)
        if got < len(frame):
            break
        pressed = board.button.pressed()
        if pressed and not was_pressed:
            muted = not muted
            if link is not None:
                link.set_muted(muted)
            say("muted" if muted else "listening")
        was_pressed = pressed
        if muted:
            level = 0
        else:
            level = mean_abs(frame, FRAME_SAMPLES)
            if link is not None:
                link.frame(frame, level)
            at = 0
            while at < FRAME_SAMPLES:
                at += frontend.feed(frame, at, FRAME_SAMPLES - at)
                if frontend.ready:
                    for ww in wakewords:
                        detected = ww.add_frame(frontend.frame_int8)
                        if detected is None:
                            continue
                        if trace:
                            _invocation(say, ww, frontend.frames, detected)
                        if link is not None:
                            link.output(ww.name, ww.p)
                        if detected:
                            t = _frame_end_s(frontend.frames)
                            say("detected: %s at %.2f s" % (ww.name, t))
                            if link is not None:
                                link.detected(ww.name, ww.p)
                            board.speaker.play(ding)
        event = vad.process(level)
        if event == END:
            segments += 1
            if _speech_said(speech_log, trace, link):
                _report(say, vad, frame_ms)
        if link is not None:
            link.poll()
        on = _led_on(board, muted, link)
        if on != lit:
            board.led.value(on)
            lit = on
    if link is not None:
        link.close()
    if vad.flush() == END:
        segments += 1
        if _speech_said(speech_log, trace, link):
            _report(say, vad, frame_ms)
    board.led.value(False)
    return segments
