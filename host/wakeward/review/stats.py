"""The false-wakes page's figures: false wakes per day per model (the chart), and the false
accepts per hour the owner is living with, from the clip store and the devices' status files.

What the FA/h rests on. A device's status message (protocol STATUS, firmware/link.py) says
how long it has listened (not muted) since it booted (protocol version 6 on), and the store
adds that up across statuses and reboots, per device and per model the device ran
(`ClipStore.add_listened`, `ClipStore.listened`), from a boot on (`since`). The figure for a
model on a device is the clips from it labelled false-wake and received since its count
started, over the hours it listened since then; the page says over how many listening hours
and since when. The hours can only read a little short (listening after a device's last
status before a reboot is never reported: at most a status interval per reboot), and clips
not labelled yet may be false wakes too.

A device whose statuses never carried the time listened (firmware before protocol version 6;
its last status file is all there is) keeps the old floor: its status carries `uptime_ms`, the
time since it booted (muted time included, counted modulo 2**32 ms, so it wraps after 49.7
days), and whether it is muted *now*. The one stretch of time the store can vouch for is then
the device's current boot: from ``received - uptime_ms / 1000`` to ``received`` (the last
status's arrival); the false wakes from the device received in that stretch over its hours,
muted time included: a floor, never an overstatement, and the page says so beside it. A
deploy reboots the device, so one boot runs one set of models.

Days are this PC's local days; a false wake counts on the day the store received it, its
audio deleted or not (the label stays on the record).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wakeward.store import Clip, ClipStore, Listened

FALSE_WAKE = "false-wake"
HOUR_S = 3600.0
MS = 1000.0
# the chart's size and palette (SVG user units; one colour per model, in model order)
CHART_WIDTH = 900
CHART_HEIGHT = 260
CHART_LEFT = 40  # room for the y axis' numbers
CHART_BOTTOM = 40  # room for the dates
CHART_TOP = 10
PALETTE = ("#c0392b", "#2471a3", "#229954", "#b9770e", "#7d3c98", "#17a589", "#566573")
MIN_DAYS, MAX_DAYS, DEFAULT_DAYS = 7, 366, 30
Y_TICKS = 4


def local_day(t: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(t).date()


@dataclass(frozen=True)
class Bar:
    """One model's part of one day's bar (SVG coordinates, and what it stands for)."""

    day: str
    model: str
    count: int
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class Chart:
    """False wakes per day per model over `days` (oldest first) and its drawing."""

    days: list[datetime.date]
    models: list[str]
    counts: dict[str, list[int]]  # model -> false wakes on each day
    bars: list[Bar]
    y_ticks: list[tuple[int, float]]  # (count, y)
    x_labels: list[tuple[str, float]]  # (date text, x)
    colours: dict[str, str]
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = CHART_LEFT
    baseline: float = CHART_HEIGHT - CHART_BOTTOM

    @property
    def total(self) -> int:
        return sum(sum(c) for c in self.counts.values())

    def day_totals(self) -> list[int]:
        return [sum(self.counts[m][i] for m in self.models) for i in range(len(self.days))]


def false_wakes_per_day(clips: Iterable[Clip], last_day: datetime.date, days: int) -> Chart:
    """The chart of the clips labelled false-wake received on the `days` days up to and
    including `last_day`."""
    first = last_day - datetime.timedelta(days=days - 1)
    span = [first + datetime.timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(span)}
    counts: dict[str, list[int]] = {}
    for clip in clips:
        if clip.label != FALSE_WAKE:
            continue
        i = index.get(local_day(clip.received_at))
        if i is not None:
            counts.setdefault(clip.model, [0] * days)[i] += 1
    models = sorted(counts)
    colours = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    return _draw(span, models, counts, colours)


def _draw(
    span: list[datetime.date],
    models: list[str],
    counts: dict[str, list[int]],
    colours: dict[str, str],
) -> Chart:
    baseline = CHART_HEIGHT - CHART_BOTTOM
    plot_h = baseline - CHART_TOP
    slot = (CHART_WIDTH - CHART_LEFT) / len(span)
    totals = [sum(counts[m][i] for m in models) for i in range(len(span))]
    top = _nice_top(max(totals, default=0))
    scale = plot_h / top
    bars = []
    for i, day in enumerate(span):
        y = float(baseline)
        for model in models:
            n = counts[model][i]
            if n == 0:
                continue
            h = n * scale
            y -= h
            bars.append(
                Bar(
                    day=day.isoformat(),
                    model=model,
                    count=n,
                    x=round(CHART_LEFT + i * slot + slot * 0.15, 2),
                    y=round(y, 2),
                    width=round(slot * 0.7, 2),
                    height=round(h, 2),
                    colour=colours[model],
                )
            )
    step = top // Y_TICKS
    y_ticks = [(n, round(baseline - n * scale, 2)) for n in range(0, top + 1, step)]
    every = max(1, math.ceil(len(span) / 10))  # at most about ten dates under the axis
    x_labels = [
        (day.strftime("%m-%d"), round(CHART_LEFT + (i + 0.5) * slot, 2))
        for i, day in enumerate(span)
        if (len(span) - 1 - i) % every == 0
    ]
    return Chart(span, models, counts, bars, y_ticks, x_labels, colours)


def _nice_top(biggest: int) -> int:
    """The y axis' top: a multiple of Y_TICKS at or above the biggest day (4 at least)."""
    return max(Y_TICKS, math.ceil(biggest / Y_TICKS) * Y_TICKS)


@dataclass(frozen=True)
class Exposure:
    """One model on one device: its false wakes over the hours it listened (`measured`: as
    the device reported them, added up since `since`), or over the hours since the device's
    last boot (not `measured`: the floor, for a device whose statuses do not say)."""

    device: str
    model: str  # "" when no clip came from the device in that time
    false_wakes: int
    unlabelled: int
    clips: int
    since: float  # Unix time the hours start: a boot
    status_at: float  # the last status's arrival
    hours: float  # this model's
    device_hours: float  # the device's, whatever it ran (counted once in `overall`)
    measured: bool
    muted_now: bool

    @property
    def fa_per_hour(self) -> float | None:
        return self.false_wakes / self.hours if self.hours > 0 else None

    @classmethod
    def of(cls, device: str, model: str, clips: Sequence[Clip], **hours: Any) -> Exposure:
        """The row of `clips` (this model's, in the time counted): its false wakes,
        unlabelled clips and clips; `hours` holds the other fields."""
        return cls(
            device=device,
            model=model,
            false_wakes=sum(c.label == FALSE_WAKE for c in clips),
            unlabelled=sum(c.label is None for c in clips),
            clips=len(clips),
            **hours,
        )


@dataclass(frozen=True)
class NoFigure:
    """A device the store knows with no FA/h to show, and why."""

    device: str
    why: str


def read_status(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A device's last status as the receiver wrote it; (None, why) when there is none."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, "no status received yet"
    except (OSError, ValueError) as e:
        return None, f"its status file is unreadable ({e})"
    if not isinstance(data, dict):
        return None, "its status file holds no status"
    return data, None


def number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def exposures(
    store: ClipStore, devices: Sequence[str], clips: Sequence[Clip]
) -> tuple[list[Exposure], list[NoFigure]]:
    """Each device's models' false wakes over the hours they listened, or over the device's
    current boot where its statuses do not say (see the module's text)."""
    counted: dict[str, dict[str, Listened]] = {}
    for entry in store.listened():
        counted.setdefault(entry.device, {})[entry.model] = entry
    rows: list[Exposure] = []
    missing: list[NoFigure] = []
    for device in sorted(set(devices) | counted.keys()):
        status, why = read_status(store.status_path(device))
        muted = bool(status.get("muted")) if status is not None else False
        mine = [c for c in clips if c.device == device]
        if device in counted:
            rows.extend(_measured(device, counted[device], mine, muted))
            continue
        if status is None:
            missing.append(NoFigure(device, why or "no status"))
            continue
        floor = _floor(device, status, mine, muted)
        if floor is None:
            missing.append(NoFigure(device, "its status has no uptime or arrival time"))
        rows.extend(floor or [])
    return rows, missing


def _measured(
    device: str, counted: dict[str, Listened], clips: Sequence[Clip], muted: bool
) -> list[Exposure]:
    """A device whose statuses carry its time listened: each model's false wakes since its
    count started, over its hours."""
    whole = counted[""]
    since_start = [c for c in clips if c.received_at >= whole.since]
    models = sorted((counted.keys() - {""}) | {c.model for c in since_start}) or [""]
    rows = []
    for model in models:
        entry = counted.get(model)  # None: a model no hello announced (hours 0)
        since = entry.since if entry is not None else whole.since
        these = [c for c in since_start if c.model == model and c.received_at >= since]
        rows.append(
            Exposure.of(
                device,
                model,
                these,
                since=since,
                status_at=whole.updated,
                hours=entry.listened_ms / MS / HOUR_S if entry is not None else 0.0,
                device_hours=whole.listened_ms / MS / HOUR_S,
                measured=True,
                muted_now=muted,
            )
        )
    return rows


def _floor(
    device: str, status: dict[str, Any], clips: Sequence[Clip], muted: bool
) -> list[Exposure] | None:
    """A device whose last status does not carry its time listened: its false wakes over
    the hours since it last booted (a floor); None when the status cannot say that either."""
    uptime_ms, received = number(status.get("uptime_ms")), number(status.get("received"))
    if uptime_ms is None or received is None or uptime_ms <= 0:
        return None
    booted = received - uptime_ms / MS
    hours = (received - booted) / HOUR_S
    mine = [c for c in clips if booted <= c.received_at <= received]
    models = sorted({c.model for c in mine}) or [""]
    rows = []
    for model in models:
        these = [c for c in mine if c.model == model] if model else []
        rows.append(
            Exposure.of(
                device,
                model,
                these,
                since=booted,
                status_at=received,
                hours=hours,
                device_hours=hours,
                measured=False,
                muted_now=muted,
            )
        )
    return rows


@dataclass(frozen=True)
class Overall:
    """All devices together: false wakes, device-hours (each device's counted once, however
    many models it runs), their ratio, and since when."""

    false_wakes: int
    hours: float
    fa_per_hour: float | None
    since: float | None  # the earliest start of a count
    floors: bool  # some devices' hours are the floor (since boot, muted time included)


def overall(rows: Sequence[Exposure]) -> Overall:
    hours = {r.device: r.device_hours for r in rows}
    total_h = sum(hours.values())
    wakes = sum(r.false_wakes for r in rows)
    return Overall(
        false_wakes=wakes,
        hours=total_h,
        fa_per_hour=wakes / total_h if total_h > 0 else None,
        since=min((r.since for r in rows), default=None),
        floors=any(not r.measured for r in rows),
    )
