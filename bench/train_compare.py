"""`make bench-train`: our trained models against pymicro-wakeword's, on the same held-out
evaluation audio, written into BENCHMARKS.md (its own section; `make bench` keeps it).

For each pair (a model trained by `wakeward train` and the shipped model of the same wake
word, or only ours where none ships): `wakeward evaluate` over the dataset's held-out
positives and its 3 hours of held-out negative audio (training/wakeward_train/streams.py),
so both models hear exactly the same audio: FRR at equal FA/h, the operating point each
gets for 0.5 FA/h, the model's own manifest point, its size, and its cost per invocation on
the device interpreter (x86-64 instructions, callgrind, as `make bench` counts them).

The datasets are the ones the models were trained from (build/train/NAME/data); one that is
missing is built first with the arguments recorded in the model's NAME.wakeward.json (a few
minutes each), so the figures can be re-run from a fresh clone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import run as bench  # noqa: E402  (bench/run.py: callgrind helpers)
from wakeward import models, unixport  # noqa: E402

SECTION = "## Trained models vs pymicro-wakeword (issue 7)"
INVOCATIONS = 300
FA_PER_HOUR = (0.5, 1.0, 2.0)
# (our model folder, the phrase, its dataset, the shipped model to compare with or None)
PAIRS = (
    (REPO / "models" / "wakeward_alexa", "alexa", REPO / "build/train/alexa/data", "alexa"),
    (
        REPO / "models" / "hey_wakeward",
        "hey wakeward",
        REPO / "build/train/hey_wakeward/data",
        None,
    ),
)


def wakeward(*args: str) -> None:
    cmd = [sys.executable, "-m", "wakeward", *args]
    print("bench-train:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def ensure_dataset(folder: Path, phrase: str, data: Path) -> None:
    if (data / "dataset.json").is_file():
        return
    ours = json.loads((folder / f"{folder.name}.wakeward.json").read_text())
    counts = ours["data"].get("config") or {"positives": 0, "negatives": 0}
    if not counts["positives"]:  # recorded by older runs as clip counts only
        for split in ours["data"]["counts"].values():
            for kind, n in split.items():
                if kind.startswith(("positive/tts", "negative/")):
                    counts[kind.split("/")[0] + "s"] += n
    wakeward(
        "train-data",
        phrase,
        "--out",
        str(data),
        "--seed",
        str(ours["seed"]),
        "--positives",
        str(counts["positives"]),
        "--negatives",
        str(counts["negatives"]),
    )


# What a dataset's summary and a model's record must share for the figures to be the
# model's own: the same TTS voices, the same word list for confusables, the same audio.
SAME_DATA = ("voices", "word_source", "counts", "seconds")


def check_dataset(folder: Path, data: Path) -> None:
    """Stop when `data` is not the dataset `folder`'s model was trained from (e.g. built on
    a machine without flite, festival or wamerican: `make sysdeps-train` installs them)."""
    ours = json.loads((folder / f"{folder.name}.wakeward.json").read_text())["data"]
    built = json.loads((data / "dataset.json").read_text())["summary"]
    for key in SAME_DATA:
        if key in ours and built.get(key) != ours[key]:
            raise SystemExit(
                f"bench-train: {data}: its {key} differ from those {folder.name} was trained "
                f"on ({built.get(key)} vs {ours[key]}); install the trainer's Debian packages "
                f"(make sysdeps-train), move that folder away and run again to rebuild it"
            )


def evaluate(model: str, data: Path, tmp: Path) -> dict:
    out = tmp / f"{Path(model).name}-{len(list(tmp.iterdir()))}.json"
    wakeward("evaluate", model, "--data", str(data), "--json", str(out))
    return json.loads(out.read_text())


def instructions_per_invocation(path: Path, tmp: Path) -> float:
    """The device interpreter's x86-64 instructions per invocation (callgrind)."""
    import numpy as np

    rng = np.random.default_rng(3)
    inputs = rng.integers(-128, 128, (INVOCATIONS, 1, 3, 40)).astype(np.int8)
    (tmp / "inputs.raw").write_bytes(inputs.tobytes())
    script = tmp / "interp_bench.py"
    script.write_text(bench.INTERPRETER_SCRIPT)
    env = unixport.environment()
    env["PYTHONHASHSEED"] = "0"
    argv = [*bench.micropython_argv(script, heap="esp32s3-psram"), str(path)]
    counts = {k: bench.callgrind_instructions([*argv, str(k)], tmp, env) for k in (0, INVOCATIONS)}
    return (counts[INVOCATIONS] - counts[0]) / INVOCATIONS


def frr_at(result: dict, rate: float) -> str:
    point = result["frr_at_false_accepts_per_hour"].get(f"{rate:g}")
    if not point:
        return "-"
    return (
        f"{point['false_reject_rate']:.1%} ({point['probability_cutoff']}, "
        f"w{point['sliding_window_size']})"
    )


def row(label: str, result: dict, path: Path, tmp: Path) -> str:
    chosen = (
        f"{result['false_reject_rate']:.1%} / {result['false_accepts_per_hour']:g} "
        f"(cutoff {result['probability_cutoff']}, window {result['sliding_window_size']})"
    )
    own = result.get("manifest_point") or {}
    own_text = (
        f"{own['false_reject_rate']:.1%} / {own['false_accepts_per_hour']:g}" if own else "-"
    )
    cost = instructions_per_invocation(path, tmp)
    return (
        f"| {label} | {' | '.join(frr_at(result, r) for r in FA_PER_HOUR)} | {chosen} "
        f"| {own_text} | {result['model_bytes']:,} | {cost:,.0f} |"
    )


def section(tmp: Path) -> str:
    lines = [
        SECTION,
        "",
        f"Written by `make bench-train` on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}. Each model runs on "
        "TFLite Micro (which the device interpreter equals bit for bit) over the held-out "
        "positives of the dataset its trained twin came from and over 3 h of held-out "
        "negative audio (held-out TTS voices, everyday scenes: `wakeward evaluate`), through "
        "the device's detection rule. FRR at a FA/h: the lowest FRR any cutoff and window "
        "(3, 5, 7, 10) gets with at most that many false accepts per hour (cutoff, window). "
        "Chosen: the point `wakeward train` writes to the manifest for 0.5 FA/h (cutoff at "
        "least 0.5). Own manifest: at the cutoff and window in the model's manifest. Cost: "
        "x86-64 instructions per invocation of the device interpreter (callgrind, "
        f"{INVOCATIONS} invocations on random inputs). The audio is synthetic: compare "
        "models with these figures, do not read them as field rates. The comparison "
        "favours ours: the held-out speakers are other voices of the TTS engines ours were "
        "trained on (espeak-ng, flite), which pymicro-wakeword's models never heard; on real "
        "voices the shipped model, trained on far more and more varied speech, may well do "
        "better. 'hey wakeward' has no shipped model to compare with.",
        "",
        "| model | FRR at 0.5 FA/h | at 1 FA/h | at 2 FA/h | chosen: FRR / FA/h | own "
        "manifest: FRR / FA/h | bytes | instr/invocation |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for folder, phrase, data, shipped in PAIRS:
        if not (folder / f"{folder.name}.tflite").is_file():
            print(f"bench-train: {folder} has no model: skipped", flush=True)
            continue
        ensure_dataset(folder, phrase, data)
        check_dataset(folder, data)
        mine = folder / f"{folder.name}.tflite"
        lines.append(row(f"{folder.name} (ours)", evaluate(str(folder), data, tmp), mine, tmp))
        if shipped:
            result = evaluate(shipped, data, tmp)
            path = models.resolve(shipped)
            lines.append(row(f"{shipped} (pymicro-wakeword)", result, path, tmp))
    return "\n".join(lines)


def replace_section(text: str, new: str) -> str:
    """`text` with its SECTION (up to the next `## `) replaced by `new`, or `new` added."""
    start = text.find(SECTION)
    if start < 0:
        return text.rstrip("\n") + "\n\n" + new + "\n"
    end = text.find("\n## ", start + len(SECTION))
    rest = text[end + 1 :] if end >= 0 else ""
    return text[:start] + new + "\n" + ("\n" + rest if rest else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wakeward-bench-train-") as tmp:
        new = section(Path(tmp))
    old = args.out.read_text() if args.out.is_file() else "# Benchmarks\n"
    args.out.write_text(replace_section(old, new))
    print(f"bench-train: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
