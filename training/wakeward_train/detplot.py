"""The DET curve of an evaluation as a PNG: false-reject rate (y, %) against false accepts
per hour (x, log scale), one line per sliding window, the target FA/h as a dashed line and
the chosen point marked. A log axis has no 0: points with no false accept are drawn at half
the resolution (0.5 / hours) or at half the target when that is lower (a short run's
resolution is coarser than the target), which the axis label says. Needs matplotlib (the `plot`
extra, part of the `train` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wakeward.errors import WakewardError

from wakeward_train.evaluate import Evaluation

INSTALL_PLOT = (
    "the DET curve needs matplotlib (the `plot` extra): pip install -c constraints.txt -e '.[plot]'"
)
FIGURE_SIZE_IN = (7.0, 5.0)
DPI = 110
ZERO_AT_RESOLUTION = 0.5  # points with 0 false accepts drawn at this many false accepts,
ZERO_BELOW_TARGET = 0.5  # or at this fraction of the target FA/h when that is lower


def require() -> Any:
    """matplotlib's pyplot on the file-only backend, or a WakewardError saying how."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise WakewardError(INSTALL_PLOT) from None
    return plt


def save(ev: Evaluation, path: Path) -> Path:
    plt = require()
    curve = ev.curve
    zero = ZERO_AT_RESOLUTION / curve.hours
    if ev.point.target_fa_per_hour > 0:  # left of the target line, where 0 belongs
        zero = min(zero, ZERO_BELOW_TARGET * ev.point.target_fa_per_hour)
    fig, ax = plt.subplots(figsize=FIGURE_SIZE_IN)
    try:
        for w in sorted({p.window for p in curve.points}):
            pts = sorted((p for p in curve.points if p.window == w), key=lambda p: -p.cutoff_u8)
            xs = [max(zero, curve.fa_per_hour(p)) for p in pts]
            ys = [100 * curve.frr(p) for p in pts]
            ax.step(xs, ys, where="post", label=f"window {w}")
        chosen = ev.point
        ax.plot(
            [max(zero, chosen.false_accepts_per_hour)],
            [100 * chosen.false_reject_rate],
            marker="*",
            markersize=14,
            color="black",
            linestyle="none",
            label=f"chosen: cutoff {chosen.probability_cutoff}, window "
            f"{chosen.sliding_window_size}",
        )
        if chosen.target_fa_per_hour > 0:
            ax.axvline(
                chosen.target_fa_per_hour,
                color="grey",
                linestyle="--",
                label=f"target {chosen.target_fa_per_hour:g} FA/h"
                + ("" if chosen.target_met else " (not met)"),
            )
        ax.set_xscale("log")
        ax.set_xlabel(f"false accepts per hour (0 drawn at {zero:.3g})")
        ax.set_ylabel("false-reject rate (%)")
        ax.set_title(
            f"{ev.model}: {curve.hours:g} h of held-out negative audio, "
            f"{curve.positives} held-out positives"
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=DPI)
        except OSError as e:
            raise WakewardError(f"{path}: cannot write the DET curve ({e.strerror})") from None
    finally:
        plt.close(fig)
    return path
