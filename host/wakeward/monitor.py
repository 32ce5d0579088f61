"""`wakeward monitor`: the wake-word models' outputs over time, as a terminal chart (live
while they arrive) and a PNG.

Its input is what `wakeward sim AUDIO.wav --model NAME --json` prints: one JSON line per
model invocation, `{"t": seconds, "model": name, "p": 0..255, "detected": bool}`, from a
pipe, a recorded file, or a sim it runs itself (`--sim AUDIO.wav`). A line that is not such
a record is reported with its line number and skipped; the command then exits 1.

A speaker sends its models' outputs only when its owner asks: `wakeward monitor --tcp
HOST:PORT | --serial PORT` (devicerequests.py) acts as its receiver and sends a monitor
request, a time-limited one the device honours only from its paired owner (TLS with its
secret, or USB; firmware/request.py), with its LED blinking meanwhile; the device's
`outputs` messages become the same records, t in seconds of the device's clock. Otherwise
the outputs, data derived from the audio, stay on the device, which sends nothing of the
audio before a detection.

Each model gets its own chart: the model's raw output (p / 255) per invocation, the
detection cutoff (the manifest's probability_cutoff, truncated to a uint8 as the device
compares it) and the detections. On the device a detection is the mean of the last
sliding_window_size outputs rising above the cutoff, so one output above it is not yet a
detection; the PNG draws that mean as well.

The terminal chart is drawn with plain text and ANSI escapes (block characters, colour when
the output is a terminal): one row per eighth of the height, so it needs no library and its
lines can be checked as text. The PNG needs matplotlib (the `plot` extra).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

from wakeward import models
from wakeward.errors import WakewardError

DEFAULT_CUTOFF = 0.9  # microWakeWord's defaults, as `wakeward sim` uses for a bare model
DEFAULT_WINDOW = 5
CHART_ROWS = 8
LIVE_SPAN_S = 10.0
REDRAW_S = 0.1
LOG_LINES = 4
PLOT_HINT = (
    "--save needs matplotlib, the `plot` extra: pip install 'wakeward[plot]' "
    "(in this checkout: .venv/bin/pip install -c constraints.txt -e '.[plot]')"
)

_BLOCKS = " ▁▂▃▄▅▆▇█"
_RED, _YELLOW, _DIM, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[0m"


class Invocation(NamedTuple):
    t: float
    model: str
    p: int
    detected: bool


class Rule(NamedTuple):
    """A model's detection rule: probability_cutoff (0..1) and sliding_window_size."""

    cutoff: float
    window: int
    known: bool = True  # False: no manifest found; microWakeWord's defaults assumed

    @property
    def cutoff_u8(self) -> int:
        return int(self.cutoff * 255)  # as firmware/wakeword.py compares it


def parse_line(line: str, lineno: int) -> Invocation | None:
    """One line of `wakeward sim --json` output (None for a blank line)."""
    text = line.strip()
    if not text:
        return None
    shown = text if len(text) <= 60 else text[:57] + "..."
    try:
        record = json.loads(text)
    except ValueError:
        raise WakewardError(
            f"line {lineno}: not JSON ({shown!r}); the input is `wakeward sim --json` output"
        ) from None
    if not isinstance(record, dict):
        raise WakewardError(f"line {lineno}: not a JSON object ({shown!r})")
    missing = [k for k in ("t", "model", "p", "detected") if k not in record]
    if missing:
        raise WakewardError(f"line {lineno}: no {', '.join(missing)} in {shown!r}")
    t, model, p, detected = record["t"], record["model"], record["p"], record["detected"]
    if isinstance(t, bool) or not isinstance(t, int | float) or not t >= 0 or math.isinf(t):
        raise WakewardError(f"line {lineno}: t {t!r} is not a time in seconds (0 or more)")
    if not isinstance(model, str) or not model:
        raise WakewardError(f"line {lineno}: model {model!r} is not a model name")
    if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 255:
        raise WakewardError(f"line {lineno}: p {p!r} is not a model output 0..255")
    if not isinstance(detected, bool):
        raise WakewardError(f"line {lineno}: detected {detected!r} is not true or false")
    return Invocation(float(t), model, p, detected)


def rule_for(name: str, given: Sequence[str] = ()) -> Rule:
    """The detection rule of a model named in the stream: from the manifest of the --model
    with that name (its file's stem, as the firmware names it), or of the shipped model of
    that name (the project's or pymicro-wakeword's); otherwise microWakeWord's defaults,
    marked as assumed. A name from the stream is never taken for a path."""
    for spec in given:
        path = models.resolve(spec)
        if path.stem == name:
            return _manifest_rule(path)
    if name in models.names():
        return _manifest_rule(models.resolve(name))
    return Rule(DEFAULT_CUTOFF, DEFAULT_WINDOW, known=False)


def _manifest_rule(path: Path) -> Rule:
    micro = (models.manifest(path) or {}).get("micro", {})
    return Rule(
        float(micro.get("probability_cutoff", DEFAULT_CUTOFF)),
        int(micro.get("sliding_window_size", DEFAULT_WINDOW)),
    )


@dataclass
class Trace:
    """One model's invocations, with the device's sliding-window mean beside them."""

    name: str
    rule: Rule
    t: list[float] = field(default_factory=list)
    p: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)  # of the last `window` outputs, 0..255
    detections: list[float] = field(default_factory=list)
    _recent: deque[int] = field(init=False)

    def __post_init__(self) -> None:
        self._recent = deque([0] * self.rule.window, maxlen=self.rule.window)

    def add(self, inv: Invocation) -> None:
        self._recent.append(inv.p)
        self.t.append(inv.t)
        self.p.append(inv.p)
        self.mean.append(sum(self._recent) / self.rule.window)
        if inv.detected:
            self.detections.append(inv.t)
            self._recent.extend([0] * self.rule.window)  # the device resets its window

    def peak(self) -> tuple[int, float]:
        if not self.p:
            return 0, 0.0
        i = max(range(len(self.p)), key=self.p.__getitem__)
        return self.p[i], self.t[i]


class Monitor:
    """Collects invocation records line by line; bad lines are kept as messages."""

    def __init__(self, model_specs: Sequence[str] = ()) -> None:
        self.model_specs = list(model_specs)
        for spec in self.model_specs:
            models.resolve(spec)  # a wrong --model fails now, not in the middle of the input
        self.traces: dict[str, Trace] = {}
        self.bad: list[str] = []
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.lines = 0

    def feed(self, line: str) -> Invocation | None:
        """One input line; returns its record (None: blank, or bad and noted in `bad`)."""
        self.lines += 1
        try:
            inv = parse_line(line, self.lines)
        except WakewardError as e:
            self.bad.append(str(e))
            return None
        if inv is not None:
            self.add(inv)
        return inv

    def add(self, inv: Invocation) -> None:
        trace = self.traces.get(inv.model)
        if trace is None:
            trace = self.traces[inv.model] = Trace(inv.model, rule_for(inv.model, self.model_specs))
        trace.add(inv)

    def end_t(self) -> float:
        return max((tr.t[-1] for tr in self.traces.values() if tr.t), default=0.0)

    def start_t(self) -> float:
        """Where the whole chart starts: the first record's second (0 for a sim run; a
        device's clock counts from its boot)."""
        return float(math.floor(min((tr.t[0] for tr in self.traces.values() if tr.t), default=0)))

    def check(self) -> None:
        """Raise what went wrong with the input as a whole (after the output is made)."""
        if self.bad:
            n = len(self.bad)
            raise WakewardError(
                f"{n} bad input line{'s' if n != 1 else ''} skipped (first: {self.bad[0]})"
            )
        if not self.traces:
            raise WakewardError(
                "no model invocations in the input: run `wakeward sim AUDIO.wav --model NAME "
                "--json` (the records are on its stdout)"
            )


# -- the terminal chart ---------------------------------------------------------------------


def _columns(
    trace: Trace, start: float, end: float, cols: int
) -> tuple[list[int | None], list[bool]]:
    """Each column's highest output (None: no invocation in it) and whether a detection
    fell in it, for the time range [start, end] split into `cols` equal columns."""
    top: list[int | None] = [None] * cols
    hit = [False] * cols
    width = (end - start) / cols if end > start else 1.0
    detections = set(trace.detections)
    for t, p in zip(trace.t, trace.p, strict=True):
        if t < start or t > end:
            continue
        c = min(cols - 1, int((t - start) / width))
        old = top[c]
        top[c] = p if old is None else max(old, p)
        if t in detections:
            hit[c] = True
    return top, hit


def render(
    monitor: Monitor,
    *,
    width: int = 80,
    rows: int = CHART_ROWS,
    span_s: float | None = None,
    color: bool = False,
    ascii_only: bool = False,
) -> list[str]:
    """The chart of every model as text lines, at most `width` characters wide (not
    counting colour escapes). `span_s`: only the last that many seconds (the live view);
    None: the whole input."""
    end = monitor.end_t()
    start = monitor.start_t() if span_s is None else max(0.0, end - span_s)
    if span_s is not None:
        end = max(end, start + span_s)
    gutter = 6
    cols = max(10, width - gutter)
    blocks = " .:-=+*##" if ascii_only else _BLOCKS  # 0..8 eighths of a cell
    cut_char, mark_char, bar = ("-", "v", "|") if ascii_only else ("┄", "▼", "│")

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    out: list[str] = []
    for trace in monitor.traces.values():
        rule = trace.rule
        last = trace.p[-1] if trace.p else 0
        peak, peak_t = trace.peak()
        assumed = "" if rule.known else ", assumed: no manifest (--model PATH)"
        n = len(trace.detections)
        header = (
            f"{trace.name}: p {last / 255:.2f}, peak {peak / 255:.2f} at {peak_t:.2f} s, "
            f"{n} detection{'s' if n != 1 else ''}; cutoff {rule.cutoff_u8 / 255:.2f} "
            f"(mean of {rule.window}{assumed})"
        )
        out.append(header[: gutter + cols])
        top, hit = _columns(trace, start, end, cols)
        out.append(" " * gutter + "".join(paint(mark_char, _RED) if h else " " for h in hit))
        cut_row = min(rows - 1, int(rule.cutoff_u8 / 255 * rows))
        for r in range(rows - 1, -1, -1):
            label = {rows - 1: "1.0", cut_row: f"{rule.cutoff_u8 / 255:.2f}", 0: "0"}.get(r, "")
            cells = []
            for value in top:
                level = 0 if value is None else round(value / 255 * rows * 8)
                fill = min(8, max(0, level - 8 * r))
                if fill:
                    ch = blocks[fill]
                    above = value is not None and value > rule.cutoff_u8
                    cells.append(paint(ch, _YELLOW) if above else ch)
                elif r == cut_row:
                    cells.append(paint(cut_char, _DIM))
                else:
                    cells.append(" ")
            out.append(f"{label:>{gutter - 1}}{bar}" + "".join(cells))
        left, right = f"{start:.1f} s", f"{end:.1f} s"
        out.append(" " * gutter + left + right.rjust(cols - len(left)))
    return out


class LiveView:
    """Redraws the chart in place on a terminal (at most every REDRAW_S seconds)."""

    def __init__(self, monitor: Monitor, stream: IO[str], *, span_s: float = LIVE_SPAN_S):
        self.monitor = monitor
        self.stream = stream
        self.span_s = span_s
        self._drawn = 0
        self._last = 0.0
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            _BLOCKS.encode(encoding)
            self.ascii_only = False
        except (UnicodeEncodeError, LookupError):
            self.ascii_only = True

    def draw(self, *, force: bool = False, span_s: float | None = -1.0) -> None:
        now = time.monotonic()
        if not force and now - self._last < REDRAW_S:
            return
        self._last = now
        size = shutil.get_terminal_size()
        lines = render(
            self.monitor,
            width=size.columns - 1,
            span_s=self.span_s if span_s == -1.0 else span_s,
            color=True,
            ascii_only=self.ascii_only,
        )
        lines += [line[: size.columns - 1] for line in self.monitor.log]
        lines += [f"{_RED}{line[: size.columns - 1]}{_RESET}" for line in self.monitor.bad[-2:]]
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self.stream.write(up + "\x1b[J" + "\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)


def wants_color(stream: IO[str]) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


# -- the PNG --------------------------------------------------------------------------------


def check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise WakewardError(PLOT_HINT) from None


def image_format(path: Path) -> str:
    """The image format `--save` writes, from the file's extension (matplotlib's formats:
    PNG, JPEG, SVG, PDF, ...); refuses an extension it cannot write, listing those it can."""
    check_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    formats = FigureCanvasAgg.get_supported_filetypes()
    ext = path.suffix.lower().removeprefix(".")
    if ext in formats:
        return ext
    listed = ", ".join(f".{name}" for name in sorted(formats))
    what = f"a .{ext} file" if ext else "a file without an extension"
    raise WakewardError(f"--save {path.name}: cannot write {what}; give a name ending in {listed}")


def default_size(n_models: int) -> tuple[int, int]:
    return 1000, 120 + 240 * max(1, n_models)


def parse_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if (
        not sep
        or not w.isdecimal()
        or not h.isdecimal()
        or not (100 <= int(w) <= 10000)
        or not (100 <= int(h) <= 10000)
    ):
        raise WakewardError(f"--size {text!r}: WIDTHxHEIGHT in pixels, 100 to 10000 each")
    return int(w), int(h)


def save_png(
    monitor: Monitor, path: Path, *, size: tuple[int, int] | None = None, title: str = ""
) -> Path:
    """One panel per model: output, sliding-window mean, cutoff, detections; `size` in
    pixels. Drawn with matplotlib's Agg canvas (no display needed)."""
    image = image_format(path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    traces = list(monitor.traces.values())
    if not traces:
        raise WakewardError("no model invocations to plot")
    width, height = size or default_size(len(traces))
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(traces), 1, sharex=True, squeeze=False)[:, 0]
    for ax, trace in zip(axes, traces, strict=True):
        rule = trace.rule
        cutoff = rule.cutoff_u8 / 255
        ax.plot(trace.t, [p / 255 for p in trace.p], lw=0.8, color="tab:blue", label="output")
        ax.plot(
            trace.t,
            [m / 255 for m in trace.mean],
            lw=1.4,
            color="tab:orange",
            label=f"mean of last {rule.window}",
        )
        assumed = " (assumed)" if not rule.known else ""
        ax.axhline(cutoff, color="tab:red", ls="--", lw=1, label=f"cutoff {cutoff:.2f}{assumed}")
        for i, t in enumerate(trace.detections):
            ax.axvline(t, color="tab:red", lw=1, alpha=0.6, label="detection" if i == 0 else None)
        if trace.detections:
            ax.plot(trace.detections, [1.04] * len(trace.detections), "v", color="tab:red")
        ax.set_ylim(0, 1.08)
        ax.set_ylabel(f"{trace.name}\np")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    axes[-1].set_xlabel("audio time (s)")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, format=image, dpi=dpi)
    except OSError as e:
        raise WakewardError(f"{path}: cannot write the plot ({e.strerror})") from None
    return path


# -- the command ----------------------------------------------------------------------------


def run(
    lines: Iterable[str] | None,
    *,
    model_specs: Sequence[str] = (),
    run_sim: Callable[[Callable[[str], None]], object] | None = None,
    save: Path | None = None,
    size: tuple[int, int] | None = None,
    title: str = "",
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    live: bool | None = None,
) -> Monitor:
    """Read records from `lines`, or from the sim `run_sim(say)` runs, showing them live on
    a terminal (or the whole chart once at the end elsewhere), then save the PNG. Raises
    WakewardError at the end for bad lines or no records."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if save is not None:
        image_format(save)  # before a long run, not after it
    monitor = Monitor(model_specs)
    live = out.isatty() if live is None else live
    view = LiveView(monitor, out) if live else None

    def line_in(line: str, *, from_sim: bool = False) -> None:
        line = line.rstrip("\n")
        if from_sim and not line.startswith("{"):
            monitor.lines += 1  # the firmware's own log: shown, not parsed
            if view is not None:
                monitor.log.append(line)
            else:
                err.write(line + "\n")
            return
        bad = len(monitor.bad)
        monitor.feed(line)
        if view is None and len(monitor.bad) > bad:
            err.write(f"wakeward monitor: {monitor.bad[-1]}\n")
        if view is not None:
            view.draw()

    try:
        if run_sim is not None:
            run_sim(lambda line: line_in(line, from_sim=True))
        else:
            for line in lines or ():
                line_in(line)
    except KeyboardInterrupt:  # Ctrl-C ends a live view: show and save what came
        err.write("wakeward monitor: interrupted; showing the records that came before\n")
    finally:
        if view is not None and monitor.traces:
            view.draw(force=True, span_s=None)  # the whole input, to keep on screen
    if view is None and monitor.traces:
        color = wants_color(out)
        out.write("\n".join(render(monitor, width=_width(out), color=color)) + "\n")
    if save is not None and monitor.traces:
        save_png(monitor, save, size=size, title=title)
        err.write(f"wakeward monitor: plot saved to {save}\n")
    monitor.check()
    return monitor


def _width(stream: IO[str]) -> int:
    if stream.isatty():
        return shutil.get_terminal_size().columns - 1
    return 100
