"""One leave-one-engine-out fold trained with another share of recorded speech in its
training streams (streams.REAL_SPEECH_SHARE, 0.3 by default), for issue 13: the folds'
chosen points are held up by false accepts on recorded speech, so does hearing more of it
in training help?

The dataset is seen through a folder of links to DATA's files with training streams of its
own, since their cache does not name the share (DATA's files are not changed; evaluation
streams DATA lacks are built into its folders through the links, as any fold would). The fold is
`wakeward train PHRASE --data VIEW --holdout-engine ENGINE --out OUT` with the share
patched, so its record and figures read as any fold's (compare with bench/recipe_compare.py
or bench/validation_compose.py).

Run: .venv/bin/python bench/real_share.py 0.6 --data build/train/alexa/data
         --engine espeak-ng --out build/exp/share60
(one training, about 20 minutes alone on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "training"), str(REPO / "host")]

from wakeward import cli  # noqa: E402
from wakeward_train import streams  # noqa: E402

OWN = {streams.TRAIN_FOLDER}  # built again for the view, with the share patched


def _view(data: Path, view: Path) -> None:
    view.mkdir(parents=True, exist_ok=True)
    for item in data.iterdir():
        link = view / item.name
        if item.name in OWN or link.exists():
            continue
        link.symlink_to(item.resolve())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("share", type=float, help="share of the training streams' time, 0..1")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--engine", required=True, help="the held-out engine of the fold")
    ap.add_argument("--out", type=Path, required=True, help="OUT/data (links) and OUT/ENGINE")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 0.0 <= args.share <= 1.0:
        ap.error(f"share {args.share}: must be in 0..1")
    summary = json.loads((args.data / "dataset.json").read_text(encoding="utf-8"))
    phrase = summary["summary"]["phrase"]
    view = args.out / "data"
    _view(args.data, view)
    streams.REAL_SPEECH_SHARE = args.share
    return cli.main(
        ["train", phrase, "--data", str(view), "--holdout-engine", args.engine,
         "--out", str(args.out / args.engine), "--seed", str(args.seed)]
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
