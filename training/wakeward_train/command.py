"""`wakeward train-data`: build the training dataset with progress lines and a summary.
(The first stage of `wakeward train`, which adds the model, export and evaluation.)"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from wakeward_train import augment, clips, dataset, voices

PROGRESS_EVERY_S = 2.0


class ProgressLines:
    """Plain progress lines: one when a stage starts, then at most every 2 s, and its end."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.stage = ""
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage == self.stage and done < total and now - self.last < PROGRESS_EVERY_S:
            return
        self.stage, self.last = stage, now
        pct = 100 * done // total if total else 100
        print(f"train-data: {stage} {done}/{total} ({pct}%)", file=self.stream, flush=True)


def train_data(
    phrase: str,
    out: Path,
    *,
    seed: int = 0,
    positives: int = 1000,
    negatives: int = 1000,
    heldout_fraction: float = 0.2,
    owner: Sequence[Path] = (),
    false_wakes: Sequence[Path] = (),
    false_wake_store: Path | None = None,
    words: Path | None = None,
    engines: Sequence[str] = (),
    piper_voices: Sequence[Path] = (),
    speaker_augment: str = "default",
    save_audio: bool = False,
    say: Callable[[str], None] = print,
) -> int:
    owner_sources, false_sources = clips.sources(owner, false_wakes, false_wake_store)
    config = dataset.DataConfig(
        phrase=phrase,
        positives=positives,
        negatives=negatives,
        seed=seed,
        heldout_fraction=heldout_fraction,
        engines=tuple(engines) or voices.ENGINES,
        piper_voices=tuple(piper_voices),
        speaker=augment.SpeakerAugment.parse(speaker_augment),
        words=words,
        owner=owner_sources,
        false_wakes=false_sources,
        save_audio=save_audio,
    )
    say(f"train-data: building {positives} positives and {negatives} negatives for {phrase!r}")
    summary = dataset.build(config, out, ProgressLines())
    for line in summary.lines():
        say(line)
    say(f"dataset written to {out}")
    return 0
