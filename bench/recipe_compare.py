"""Two recipes' leave-one-engine-out folds on the same held-out clips (issue 13).

A recipe change that rebuilds the dataset also changes the clips each fold is tested on
(festival taught the phrase's pronunciation, no early reflections): the folds of the old
recipe, each evaluated again on its held-out engine's clips of the NEW dataset, are the
comparison, not their old records. For each engine: the new fold's record (its chosen point
and the FRR at 0.5 FA/h on the synthetic streams), and the old fold as `wakeward evaluate
--heldout-engine ENGINE --data NEW/NAME/data` judges it at its own manifest point (saved to
NEW/NAME/recipe_compare/old-ENGINE.json once, then reused). Pooled: missed clips over all
engines' positives.

Run: .venv/bin/python bench/recipe_compare.py alexa --old build/train-OLD --new build/train
(NAME is the folder under each root: alexa or hey_wakeward; about a minute per old fold).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "training"), str(REPO / "host")]

from wakeward_train.voices import ENGINES  # noqa: E402


def _old_point(old_fold: Path, engine: str, data: Path, saved: Path) -> dict:
    if not saved.is_file():
        saved.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(REPO / ".venv/bin/wakeward"), "evaluate", "--model", str(old_fold),
             "--data", str(data), "--heldout-engine", engine, "--save", str(saved)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return json.loads(saved.read_text(encoding="utf-8"))


def _at_half(ev: dict) -> str:
    point = ev["frr_at_false_accepts_per_hour"].get("0.5")
    return f"{point['false_reject_rate']:.1%}" if point else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="the folder under each root: alexa, hey_wakeward")
    ap.add_argument("--old", type=Path, required=True, help="the old recipe's root")
    ap.add_argument("--new", type=Path, required=True, help="the new recipe's root")
    args = ap.parse_args()
    new, old = args.new / args.name, args.old / args.name
    print(f"{args.name}: folds of {old} and {new}, on {new / 'data'}'s clips of each engine")
    print()
    print(
        "| held-out engine (clips) | old recipe, its point | old at 0.5 FA/h "
        "| new recipe, its point | new at 0.5 FA/h |"
    )
    print("| --- | --- | --- | --- | --- |")
    totals = {"clips": 0, "old": 0, "new": 0}
    for engine in ENGINES:
        record = new / "folds" / engine / f"{engine}.wakeward.json"
        if not record.is_file() or not (old / "folds" / engine).is_dir():
            print(f"| {engine} | (no fold) | | | |")
            continue
        ev_new = json.loads(record.read_text(encoding="utf-8"))["evaluation"]
        saved = new / "recipe_compare" / f"old-{engine}.json"
        ev_old = _old_point(old / "folds" / engine, engine, new / "data", saved)
        mp = ev_old["manifest_point"]
        clips = ev_new["positives"]
        if ev_old["positives"] != clips:
            raise SystemExit(f"{engine}: {ev_old['positives']} clips against {clips}")
        totals["clips"] += clips
        totals["old"] += mp["missed"]
        totals["new"] += ev_new["missed"]
        print(
            f"| {engine} ({clips}) | {mp['false_reject_rate']:.1%} ({mp['missed']}) "
            f"| {_at_half(ev_old)} | {ev_new['false_reject_rate']:.1%} ({ev_new['missed']}) "
            f"| {_at_half(ev_new)} |"
        )
    n = totals["clips"]
    if n:
        print(
            f"| pooled ({n}) | {totals['old'] / n:.1%} ({totals['old']}) | "
            f"| {totals['new'] / n:.1%} ({totals['new']}) | |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
