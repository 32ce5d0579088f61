"""`wakeward review`'s options (the command table's entry; the app is app.py, imported only
when the command runs: Starlette, Jinja2 and uvicorn load with it)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_review(args: argparse.Namespace) -> int:
    from wakeward.review import app

    app.serve(
        args.store,
        args.host,
        args.port,
        open_browser=not args.no_browser,
        pairing_dir=args.pairing,
        models_dir=args.models,
        runs_dir=args.runs,
        say=lambda line: print(line, flush=True),
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review",
        help="review the clips in the browser: look, listen, label, delete",
        description=(
            "Serve the review page over the clip store on this PC: every clip the speaker "
            "sent, newest first, with its waveform and spectrogram and a player; label, "
            "delete and purge; false wakes per day and the FA/h you live with; each "
            "device's last status; retrain a model from your labels (`wakeward train` with "
            "the clips labelled false wake, its progress on the page, the new figures beside "
            "the old, and the command to deploy it: nothing is deployed from the page). The "
            "first line printed is the "
            "page's URL, with a token made for this launch: only a browser that has it gets "
            "in. Ctrl-C stops."
        ),
    )
    p.add_argument("--store", type=Path, metavar="DIR", help="the clip store folder (as listen)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to serve on (default: %(default)s, this PC only; 0.0.0.0 puts the "
        "page on the network, over plain HTTP, with a warning)",
    )
    p.add_argument(
        "--port", type=int, default=0, metavar="N", help="the port (default: any free one)"
    )
    p.add_argument(
        "--no-browser", action="store_true", help="print the URL only; do not open a browser"
    )
    p.add_argument(
        "--pairing",
        type=Path,
        metavar="DIR",
        help="the pairing folder, for the devices page (default: as `wakeward pair`)",
    )
    p.add_argument(
        "--models",
        type=Path,
        metavar="DIR",
        help="the trained models to offer for retraining: DIR/NAME/NAME.wakeward.json, as "
        "`wakeward train --out DIR/NAME` writes (default: ./models)",
    )
    p.add_argument(
        "--runs",
        type=Path,
        metavar="DIR",
        help="where retraining writes each run (its log, dataset and new model; default: "
        "./build/review/retrain); the command run is `python -m wakeward train`, or "
        "$WAKEWARD_REVIEW_TRAIN_COMMAND's words (e.g. another environment's python -m "
        "wakeward train)",
    )
    p.set_defaults(func=_cmd_review)
