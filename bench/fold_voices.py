"""A leave-one-engine-out fold's misses voice by voice (issue 13): which people of the
held-out engine the fold fails to hear at its chosen point.

The fold is `make bench-train`'s (build/train/DATA/folds/ENGINE, `wakeward train
--holdout-engine ENGINE`), judged as its record says: at the cutoff and window of its
evaluation, on every positive clip ENGINE spoke in build/train/DATA/data (both splits), as
`wakeward evaluate --heldout-engine ENGINE` does. Each line also gives the way the voice
pronounces the phrase where the engine can say (festival's `lex.lookup`, word by word), since
an engine's own letter-to-sound rules can say a made-up or foreign word differently from
the other engines; where the dataset taught festival the reference pronunciation
(pronounce.py, the summary's `pronunciations`), the line says so.

Run: .venv/bin/python bench/fold_voices.py alexa festival [--root build/train] (about a
minute a fold; DATA is the folder under ROOT: alexa or hey_wakeward). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "training"), str(REPO / "host")]

from wakeward_train import dataset, evaluate, folds, streams, voices  # noqa: E402


def festival_pronunciation(voice: str, phrase: str) -> str:
    """The phones festival's voice `voice` says `phrase` with: syllables split by '/',
    words by '+'."""
    words = re.findall(r"[a-z']+", phrase.lower())
    lookups = "".join(f"(print (lex.lookup {voices._scheme_string(w)}))\n" for w in words)
    out = voices._run(
        [voices.FESTIVAL, "--pipe"],
        what=f"festival's {voice} pronunciation",
        stdin=f"(voice_{voice})\n{lookups}",
    )
    said = []
    for line in out.splitlines():
        syllables = re.findall(r"\(\(([^()]*)\) \d\)", line)
        if syllables:
            said.append(" / ".join(syllables))
    return " + ".join(said)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="the dataset's folder under build/train/: alexa, hey_wakeward")
    ap.add_argument("engine", choices=voices.ENGINES)
    ap.add_argument("--root", type=Path, default=REPO / "build" / "train", help="(build/train)")
    args = ap.parse_args()
    base = args.root / args.data
    fold = base / "folds" / args.engine
    record = json.loads((fold / f"{args.engine}.wakeward.json").read_text(encoding="utf-8"))
    ev = record["evaluation"]
    data = dataset.open_dataset(base / "data")
    view = folds.fold_view(data, args.engine, for_training=False)
    ref = evaluate.load_reference((fold / f"{args.engine}.tflite").read_bytes(), fold)
    hours = float(ev["negative_hours"])
    negatives = streams.ensure(view, hours, say=lambda _: None)
    positives = streams.positive_stream(view, negatives)
    outputs = evaluate.run_model(ref, negatives, positives)
    hit = evaluate.detected_clips(outputs, int(ev["cutoff_u8"]), int(ev["sliding_window_size"]))
    clips: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    for r, found in zip(positives.records, hit, strict=True):
        name = (r.voice or "").split(":", 1)[-1]
        clips[name] += 1
        missed[name] += 0 if found else 1
    phrase = record["phrase"]
    taught = {}  # voice id -> "word: /own/ -> /taught/"
    for line in (data.info.get("summary") or {}).get("pronunciations") or []:
        who, sep, what = line.partition(" is taught ")
        if sep:
            taught[who] = what
    print(
        f"{args.data} fold without {args.engine}: cutoff {ev['probability_cutoff']}, window "
        f"{ev['sliding_window_size']}; {sum(missed.values())}/{sum(clips.values())} missed"
    )
    print()
    print("| voice | missed | pronunciation |")
    print("| --- | --- | --- |")
    for name in sorted(clips):
        said = festival_pronunciation(name, phrase) if args.engine == "festival" else ""
        if f"{args.engine}:{name}" in taught:
            said = f"taught {taught[f'{args.engine}:{name}']}"
        print(
            f"| {name} | {missed[name]}/{clips[name]} ({missed[name] / clips[name]:.0%}) "
            f"| {said or '-'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
