"""Speaker augmentation part by part (issue 13, item 3): each of its five parts left out in
turn, judged on the engine the model never heard.

Every variant is alexa's MBROLA fold (`wakeward train alexa --holdout-engine mbrola`,
seed 0) trained on a dataset of the default recipe (4,000 positives, 6,000 negatives, all
five engines, seed 0) built with one speaker-augmentation part off (`--speaker-augment`
with the other four). A part's coin and draws come from the clip's own generator in a fixed
order (augment.draw_speaker), so turning one part off leaves every other part of every clip
as it was. The two ends come from the folds already there: every part on is `make
bench-train`'s fold (build/train/alexa/folds/mbrola, on build/train/alexa/data), no part on
is the fold trained on the dataset without speaker augmentation (JUDGE_DATA; trained here
when missing).

Every model is judged the same way (`wakeward evaluate MODEL --data JUDGE_DATA
--heldout-engine mbrola`): all MBROLA positives of the dataset built without speaker
augmentation (so no variant is judged on clips its own recipe made harder), the same 3 h of
synthetic held-out audio and the same held-out recorded speech, the point chosen for
<= 0.5 FA/h on the synthetic streams and on the recorded speech's validation part, the
recorded FA/h reported on its test part.

The streams a fold trains and is evaluated on do not depend on the speaker augmentation
(streams.py speaks them with the dataset's speakers, never augmented); they are the base
dataset's, linked into each variant's dataset with their dataset hash rewritten, when the
two datasets have the same speakers, so each variant does not spend 6 minutes building
them again.

Run: .venv/bin/python bench/speaker_ablation.py [--variants no-tempo no-pitch ...]
(about 25 minutes per variant on 2 cores: the dataset, then the fold); two processes with
different --variants can run side by side. --judge-only prints the table from what is there.
Seeds: --train-seeds 1 2 --variants no-pitch no-room trains (when missing) and judges those
variants' and every part's folds with training seeds 1 and 2 on the same datasets (about 15
minutes a fold), and adds a mean row per variant.
Writes OUT/speaker_ablation.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from wakeward_train import augment, command, dataset, evalcmd, pipeline, streams  # noqa: E402

PHRASE = "alexa"
ENGINE = "mbrola"
POSITIVES = 4000
NEGATIVES = 6000
BASE_DATA = REPO / "build/train/alexa/data"  # every part on (the default recipe)
BASE_FOLD = REPO / "build/train/alexa/folds/mbrola"
JUDGE_DATA = REPO / "build/exp/alexa/data"  # no speaker augmentation
OUT = REPO / "build/exp/ablation"
# the no-part fold trained earlier the same way (wakeward train alexa --data JUDGE_DATA
# --holdout-engine mbrola --speaker-augment none --out build/exp/A/alexa_A), used when there
EARLIER_NO_PART = REPO / "build/exp/A/alexa_A"
VARIANTS = tuple(f"no-{p}" for p in augment.SPEAKER_PARTS)
JUDGED = "judged.json"


def _speakers(path: Path) -> object:
    info = json.loads((path / dataset.SUMMARY).read_text())
    return (info.get("summary") or {}).get("speakers")


def link_streams(base: Path, data: Path) -> None:
    """The base dataset's training, evaluation and recorded-speech streams in `data`, when
    both datasets have the same speakers; the synthetic streams' dataset hash rewritten
    to `data`'s (their description is written anew, never into the base's file)."""
    if _speakers(base) != _speakers(data):
        print(f"{data}: other speakers than {base}: its streams are built anew", flush=True)
        return
    sha = streams._dataset_sha256(dataset.open_dataset(data))
    folders = [
        (streams.TRAIN_FOLDER, f"seed0-2h-without-{ENGINE}"),
        (streams.FOLDER, "seed0-3h"),
        *((streams.REAL_FOLDER, p.name) for p in (base / streams.REAL_FOLDER).glob("seed0-all*")),
    ]
    for top, name in folders:
        src, dst = base / top / name, data / top / name
        if dst.exists() or not (src / streams.DESCRIPTION).is_file():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst, copy_function=os.link)
        info = json.loads((src / streams.DESCRIPTION).read_text())
        if "dataset_sha256" in info:
            info["dataset_sha256"] = sha
        (dst / streams.DESCRIPTION).unlink()
        (dst / streams.DESCRIPTION).write_text(json.dumps(info, indent=1) + "\n")
        print(f"{dst}: linked from {src}", flush=True)


def parts_of(variant: str) -> str:
    """--speaker-augment for variant no-PART: every other part."""
    part = variant.removeprefix("no-")
    return ",".join(p for p in augment.SPEAKER_PARTS if p != part)


def train_variant(variant: str, seed: int) -> Path:
    """The variant's fold, its dataset built first when missing."""
    spec = parts_of(variant)
    data = OUT / variant / "data"
    fold = OUT / variant / f"fold-{ENGINE}"
    if (fold / f"{fold.name}.tflite").is_file():
        return fold
    t = time.monotonic()
    if not (data / dataset.SUMMARY).is_file():
        config = dataset.DataConfig(
            phrase=PHRASE,
            positives=POSITIVES,
            negatives=NEGATIVES,
            seed=seed,
            engines=dataset.voices.ENGINES,
            speaker=augment.SpeakerAugment.parse(spec),
        )
        dataset.build(config, data, command.ProgressLines())
        print(f"{variant}: dataset in {time.monotonic() - t:.0f} s", flush=True)
    link_streams(BASE_DATA, data)
    pipeline.run(
        pipeline.Options(
            PHRASE, fold, seed=seed, data=data, holdout_engine=ENGINE, speaker_augment=spec
        )
    )
    print(f"{variant}: dataset and fold in {time.monotonic() - t:.0f} s", flush=True)
    return fold


def seeded_fold(variant: str, seed: int, judge_only: bool) -> Path | None:
    """`variant`'s fold trained with training seed `seed` on the variant's dataset (the
    dataset, its streams and everything else as seed 0's), trained here when missing."""
    folder = "all" if variant == "all parts" else variant
    fold = OUT / folder / f"seed{seed}" / f"fold-{ENGINE}"
    if (fold / f"{fold.name}.tflite").is_file() or judge_only:
        return fold
    data = BASE_DATA if variant == "all parts" else OUT / variant / "data"
    if not (data / dataset.SUMMARY).is_file():
        print(f"{variant} (seed {seed}): no dataset in {data} (train seed 0 first)", flush=True)
        return None
    pipeline.run(
        pipeline.Options(
            PHRASE,
            fold,
            seed=seed,
            data=data,
            holdout_engine=ENGINE,
            speaker_augment="all" if variant == "all parts" else parts_of(variant),
        )
    )
    return fold


def mean_rows(rows: list[dict], variants: list[str]) -> list[dict]:
    """Per variant with more than one seed: the mean of each FRR over its seeds."""
    means = []
    for variant in variants:
        mine = [r for r in rows if r["variant"].split(" (seed ")[0] == variant]
        if len(mine) < 2:
            continue

        def mean(values: list) -> float | None:
            return None if any(v is None for v in values) else sum(values) / len(values)

        at = mine[0]["frr_at_synthetic_fa_per_hour"]
        validation = sum(r["validation_false_accepts"] or 0 for r in mine)
        means.append(
            {
                "variant": f"{variant}, mean of {len(mine)} seeds",
                "cutoff": "-",
                "window": "-",
                "frr": mean([r["frr"] for r in mine]),
                "validation_false_accepts": f"{validation} in all",
                "test_recorded_fa_per_hour": round(
                    sum(r["test_recorded_fa_per_hour"] or 0 for r in mine) / len(mine), 2
                ),
                "frr_at_synthetic_fa_per_hour": {
                    k: mean([r["frr_at_synthetic_fa_per_hour"][k] for r in mine]) for k in at
                },
                "frr_at_both_targets": mean([r["frr_at_both_targets"] for r in mine]),
            }
        )
    return means


def judged(fold: Path) -> dict:
    out = fold / JUDGED
    if not out.is_file():
        evalcmd.evaluate_cmd(str(fold), JUDGE_DATA, heldout_engine=ENGINE, save=out, say=print)
    return json.loads(out.read_text())


def row(name: str, ev: dict) -> dict[str, object]:
    real = ev.get("real_speech") or {}
    both = real.get("at_targets") or {}
    at = ev["frr_at_false_accepts_per_hour"]
    return {
        "variant": name,
        "cutoff": ev["probability_cutoff"],
        "window": ev["sliding_window_size"],
        "frr": ev["false_reject_rate"],
        "missed": ev["missed"],
        "positives": ev["positives"],
        "synthetic_false_accepts": ev["false_accepts"],
        "validation_false_accepts": ev.get("validation_false_accepts"),
        "test_recorded_false_accepts": real.get("false_accepts"),
        "test_recorded_fa_per_hour": real.get("false_accepts_per_hour"),
        "test_recorded_hours": real.get("hours"),
        "frr_at_synthetic_fa_per_hour": {
            k: (v or {}).get("false_reject_rate") for k, v in at.items()
        },
        "frr_at_both_targets": both.get("false_reject_rate"),
    }


def _pct(v: object) -> str:
    return "not reached" if v is None else f"{float(v):.1%}"  # type: ignore[arg-type]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--judge-only", action="store_true", help="train nothing missing")
    ap.add_argument(
        "--train-seeds",
        nargs="*",
        type=int,
        default=[],
        metavar="S",
        help="also each variant's fold trained with these training seeds on the same dataset "
        "(OUT/VARIANT/seedS/), 'all parts' as OUT/all/seedS/; the table adds a mean row",
    )
    args = ap.parse_args()
    no_part = OUT / "none" / f"fold-{ENGINE}"
    if (EARLIER_NO_PART / f"{EARLIER_NO_PART.name}.tflite").is_file():
        no_part = EARLIER_NO_PART
    folds = {"all parts": BASE_FOLD, "no part": no_part}
    for name, fold in folds.items():
        if not (fold / f"{fold.name}.tflite").is_file() and not args.judge_only:
            data = BASE_DATA if name == "all parts" else JUDGE_DATA
            spec = "all" if name == "all parts" else "none"
            pipeline.run(
                pipeline.Options(
                    PHRASE,
                    fold,
                    seed=args.seed,
                    data=data,
                    holdout_engine=ENGINE,
                    speaker_augment=spec,
                )
            )
    for variant in args.variants:
        fold = OUT / variant / f"fold-{ENGINE}"
        folds[variant] = fold if args.judge_only else train_variant(variant, args.seed)
    for seed in args.train_seeds:
        for variant in ["all parts", *args.variants]:
            fold = seeded_fold(variant, seed, args.judge_only)
            if fold is not None:
                folds[f"{variant} (seed {seed})"] = fold
    rows = []
    for name, fold in folds.items():
        if (fold / f"{fold.name}.tflite").is_file():
            rows.append(row(name, judged(fold)))
    if args.train_seeds:
        rows += mean_rows(rows, ["all parts", *args.variants])
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {
        "what": "alexa's MBROLA fold with each speaker-augmentation part left out, judged on "
        f"every MBROLA positive of {JUDGE_DATA} (no speaker augmentation), its 3 h synthetic "
        "held-out audio and held-out recorded speech (point chosen with the validation part, "
        "FA/h on the test part)",
        "rows": rows,
    }
    (OUT / "speaker_ablation.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(
        "| speaker augmentation | chosen point: FRR (cutoff, window) | test recorded FA/h "
        "(validation false accepts) | FRR at 0.5 / 1 / 2 FA/h synthetic | FRR at both targets |"
    )
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        at = " / ".join(_pct(v) for v in r["frr_at_synthetic_fa_per_hour"].values())
        print(
            f"| {r['variant']} | {r['frr']:.1%}"
            + ("" if r["cutoff"] == "-" else f" ({r['cutoff']}, w{r['window']})")
            + " | "
            f"{r['test_recorded_fa_per_hour']} ({r['validation_false_accepts']}) | {at} | "
            f"{_pct(r['frr_at_both_targets'])} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
