"""`make demo`: the main job as far as the pipeline exists today.

Synthesises a short recording with espeak-ng (the wake word "Alexa" in two of three
sentences), runs the unmodified firmware on the MicroPython unix port with the `sim` board
fed from it, with the device frontend and the "alexa" model from pymicro-wakeword on the
device interpreter, and streams each detected clip to a receiver on this PC (loopback TCP),
which puts it into a clip store of the demo's own (WORKDIR/store, so the owner's store is
never touched). It ends by listing the clips it received, as `wakeward clips list` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wakeward import receiver, sim, store, tts
from wakeward.audio import RATE_HZ, write_wav
from wakeward.wording import plural

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


DEMO_MODEL = "alexa"
# The models do not fit the 128,000-byte no-PSRAM profile on the 64-bit unix port yet
# (see BENCHMARKS.md and issue 3's note), so the demo runs with the PSRAM board's heap.
DEMO_HEAP = "esp32s3-psram"


def run(workdir: Path) -> int:
    wav = workdir / "demo.wav"
    print(f"wakeward demo: synthesising {len(DEMO_SENTENCES)} sentences into {wav}")
    make_recording(wav)
    print(
        f"wakeward demo: running the firmware on the sim board with the {DEMO_MODEL!r} model "
        f"(heap profile {DEMO_HEAP})"
    )
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        sim.main_stdout(line)

    store_dir = workdir / "store"
    port, thread, result = receiver.serve_in_background(
        store_dir, lambda line: sim.main_stdout("receiver: " + line)
    )
    rc = sim.run_sim(
        wav,
        events=workdir / "events.jsonl",
        model_names=[DEMO_MODEL],
        link_tcp=f"127.0.0.1:{port}",
        heap=DEMO_HEAP,
        say=say,
    )
    thread.join(30)
    detections = [line for line in lines if line.startswith("detected:")]
    expected = sum(1 for text in DEMO_SENTENCES if "Alexa" in text)
    print(
        f"wakeward demo: {plural(len(detections), 'detection')}; "
        f"the recording says the wake word {plural(expected, 'time')}"
    )
    clips = result[0].clips if result else []
    print(f"wakeward demo: {plural(len(clips), 'clip')} received:")
    if clips:
        with store.ClipStore(store_dir, create=False) as stored:  # read back from disk
            rows = [stored.get(clip.id) for clip in clips]
        for line in store.table_lines(rows):
            print(f"  {line}")
        print(f"wakeward demo: review them with `wakeward clips list --store {store_dir}`")
    return rc
