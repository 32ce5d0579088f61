"""Does composing the recorded validation speech several ways steady the chosen point?
(issue 13)

Each fold's operating point is chosen on the synthetic streams and on the validation part of
the held-out recorded speech (2.50 h, realspeech.py). Composed once, <= 0.5 FA/h allows one
false accept there, so the point rests on one or two events. This evaluates each fold under
FOLDS/ENGINE/ with its validation recordings composed 1 and K ways
(streams.VALIDATION_COMPOSITIONS), as `wakeward evaluate --heldout-engine ENGINE` does, and
prints per fold: the FRR at the chosen point, the false accepts an hour on the recorded
speech's test part there, and for reference the FRR at 0.5 FA/h on the synthetic streams
alone. Figures are saved to FOLDS/ENGINE/validation-xK.json once, then reused.

Run: .venv/bin/python bench/validation_compose.py --data build/train/alexa/data
         build/train/alexa/folds [more FOLDS ...]
(about a minute per fold and composition, the 10 h of validation streams built into DATA once)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "training"), str(REPO / "host")]

from wakeward_train import evalcmd, streams  # noqa: E402
from wakeward_train.voices import ENGINES  # noqa: E402


def _figures(fold: Path, engine: str, data: Path, ways: int) -> dict:
    saved = fold / f"validation-x{ways}.json"
    if not saved.is_file():
        streams.VALIDATION_COMPOSITIONS = ways
        evalcmd.evaluate_cmd(
            str(fold), data, heldout_engine=engine, save=saved, say=lambda _line: None
        )
    return json.loads(saved.read_text(encoding="utf-8"))


def _cell(ev: dict) -> tuple[str, int, int]:
    real = ev.get("real_speech") or {}
    row = next(r for r in ev["by_engine"]["rows"] if r.get("heldout_engine"))
    text = (
        f"{ev['false_reject_rate']:.1%} ({ev['probability_cutoff']:g}, "
        f"w{ev['sliding_window_size']}), {ev.get('validation_false_accepts')} / "
        f"{real.get('false_accepts_per_hour', float('nan')):.2f}"
    )
    return text, int(row["missed"]), int(row["clips"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the dataset the folds were cut from")
    ap.add_argument("folds", type=Path, nargs="+", help="folders holding ENGINE/ENGINE.tflite")
    ap.add_argument("--ways", type=int, default=streams.VALIDATION_COMPOSITIONS)
    args = ap.parse_args()
    ways = (1, args.ways)
    print(
        "| folds | held-out engine | "
        + " | ".join(
            f"validation x{k}: chosen FRR (cutoff, window), FA there / test FA/h" for k in ways
        )
        + " | FRR at 0.5 FA/h synthetic |"
    )
    print("| --- | --- | " + " | ".join("---" for _ in ways) + " | --- |")
    pooled = {k: [0, 0] for k in ways}
    for folds in args.folds:
        for engine in ENGINES:
            fold = folds / engine
            if not (fold / f"{engine}.tflite").is_file():
                continue
            cells = []
            curve = ""
            for k in ways:
                ev = _figures(fold, engine, args.data, k)
                text, missed, clips = _cell(ev)
                cells.append(text)
                pooled[k][0] += missed
                pooled[k][1] += clips
                at = (ev.get("frr_at_false_accepts_per_hour") or {}).get("0.5")
                curve = "not reached" if at is None else f"{at['false_reject_rate']:.1%}"
            print(f"| {folds} | {engine} | " + " | ".join(cells) + f" | {curve} |")
    print(
        "| pooled | | "
        + " | ".join(f"{m / max(1, c):.1%} ({m}/{c})" for m, c in pooled.values())
        + " | |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
