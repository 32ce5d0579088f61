"""`make demo`: the main job as far as the pipeline exists today.

Synthesises a short recording with espeak-ng, runs the unmodified firmware on the
MicroPython unix port with the `sim` board fed from it (ESP32-S3 heap limit), and prints
what the device heard.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wakeward import sim, tts
from wakeward.audio import RATE_HZ, write_wav

DEMO_SENTENCES = (
    "Alexa, what time is it?",
    "The kettle is on, and the window is open.",
    "Alexa, turn off the lights.",
)
_GAP_S = 1.0


def make_recording(out: Path) -> Path:
    """Sentences separated by a second of quiet room noise, as one 16 kHz WAV."""
    rng = np.random.default_rng(20261122)
    parts = []
    for i, text in enumerate(DEMO_SENTENCES):
        part = tts.espeak(text, out.parent / f"part{i}.wav")
        (out.parent / f"part{i}.wav").unlink()
        parts.append(rng.normal(0, 30, int(_GAP_S * RATE_HZ)))
        parts.append(part.astype(np.float64) * 0.5)
    parts.append(rng.normal(0, 30, int(_GAP_S * RATE_HZ)))
    samples = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    return write_wav(out, samples)


def run(workdir: Path) -> int:
    wav = workdir / "demo.wav"
    print(f"wakeward demo: synthesising {len(DEMO_SENTENCES)} sentences into {wav}")
    make_recording(wav)
    print("wakeward demo: running the firmware on the sim board (ESP32-S3 heap limit)")
    return sim.run_sim(wav, events=workdir / "events.jsonl", say=sim.main_stdout)
