"""Train the non-streaming model on windows of a built dataset (`dataset.open_dataset`).

- Windows (`windows.cut`) of the model's receptive field from the train split: positives
  end just after the wake phrase, negatives everywhere else (see windows.py). Their ends
  are drawn anew every epoch, and SpecAugment masks a stretch of frames and a band of
  channels in half of them, after a channel warp (a vocal tract longer or shorter) of some.
- With the dataset's long training streams (streams.py, split TRAIN: hours of everyday
  sound and speech by the training speakers), `stream_windows` more negatives a epoch,
  drawn anew from the first STREAM_FIT_PART of each stream; validation gets fixed windows
  from the rest. Short clips alone taught the model too little of ordinary sound: the
  first "hey wakeward" model false-accepted 1.67 times an hour on the held-out streams at
  its cutoff.
- Then hard negatives (`hard_negatives`): the model scores the fitting part of the streams
  every `hard_stride` frames; the highest-scoring windows join every epoch of a second,
  shorter fit (the false alarms it was about to raise, as microWakeWord's mined negatives).
- Early stopping on a validation set split off the train split by speaker
  (`windows.validation_split`), so the dataset's held-out split stays unseen until the
  final measurements (`heldout_metrics`, and later the evaluation stage).
- Class weighting: each class weighs as much as the other in total, then negatives are
  multiplied by `negative_weight` (false wakes cost more than a repeated wake word).
- Seeded and reproducible: `keras.utils.set_random_seed(seed)`, deterministic TensorFlow
  ops, and a batch order drawn from (seed, epoch). The same dataset and config give the
  same weights on the same machine and TensorFlow build.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from wakeward.errors import WakewardError
from wakeward.wording import plural

from wakeward_train import windows
from wakeward_train.backend import require, seed_everything
from wakeward_train.dataset import HELDOUT, TRAIN, ClipRecord, Dataset
from wakeward_train.model import ModelConfig, Net, numpy_of, to_float

STREAM_FIT_PART = 0.9  # of each training stream for fitting; the rest for validation
HARD = "hard"  # the kind of a hard-negative window
_STREAM_SALT = 0x73746D
_VALIDATION = 1 << 20  # the validation draw's "epoch" in the stream windows' seed

Say = Callable[[str], None]


@dataclass(frozen=True)
class SpecAugment:
    """Masks on training windows (SpecAugment): with `probability`, one stretch of up to
    `max_frames` frames and one band of up to `max_channels` channels set to feature 0.
    Before the masks, with `warp_probability`, a channel warp: the window's channels read
    at c * a (linear interpolation, edges held), a drawn from 1 +- `max_warp`, like a
    longer or shorter vocal tract, so a few TTS voices stand for more speakers."""

    probability: float = 0.5
    max_frames: int = 10
    max_channels: int = 5
    warp_probability: float = 0.5
    max_warp: float = 0.25

    def warp(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, _, channels = x.shape
        chosen = np.flatnonzero(rng.random(n) < self.warp_probability)
        if not len(chosen) or self.max_warp <= 0:
            return x
        factors = 1.0 + rng.uniform(-self.max_warp, self.max_warp, len(chosen))
        at = np.clip(np.arange(channels)[None, :] * factors[:, None], 0, channels - 1)
        lo = np.minimum(at.astype(np.int64), channels - 2)
        frac = (at - lo).astype(x.dtype)[:, None, :]
        rows = chosen[:, None]
        x[chosen] = (
            x[rows, :, lo].transpose(0, 2, 1) * (1 - frac)
            + x[rows, :, lo + 1].transpose(0, 2, 1) * frac
        )
        return x

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.warp_probability > 0:
            x = self.warp(x, rng)
        if self.probability <= 0:
            return x
        n, frames, channels = x.shape
        for i in np.flatnonzero(rng.random(n) < self.probability):
            w = int(rng.integers(0, self.max_frames + 1))
            t = int(rng.integers(0, frames - w + 1))
            x[i, t : t + w, :] = 0.0
            w = int(rng.integers(0, self.max_channels + 1))
            c = int(rng.integers(0, channels - w + 1))
            x[i, :, c : c + w] = 0.0
        return x


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 2e-3
    patience: int = 6  # epochs without a better validation loss before stopping
    lr_patience: int = 2  # ... before the learning rate is halved
    validation_fraction: float = 0.15  # of the train speakers
    negative_weight: float = 2.0  # on top of class balancing
    # the owner's takes (windows.OWNER) weigh at least this share of the positive windows'
    # total weight when there are any: ten takes among thousands of TTS clips would
    # otherwise weigh almost nothing
    owner_share: float = 0.2
    seed: int = 0
    resample_windows: bool = True  # new window ends every epoch
    # negative windows drawn anew every epoch from the long training streams (when given):
    # the first STREAM_FIT_PART of each stream for fitting, the rest for validation
    stream_windows: int = 40_000
    validation_stream_windows: int = 5_000
    # then hard negatives: the fitting part of the streams scored every `hard_stride`
    # frames, the `hard_negatives` highest-scoring windows (above `hard_min_p`) added to
    # every epoch of a second fit of at most `hard_epochs` epochs
    hard_negatives: int = 4_000
    hard_stride: int = 3
    hard_min_p: float = 0.05
    hard_epochs: int = 10
    hard_repeats: int = 2  # each hard negative this many times an epoch
    spec_augment: SpecAugment = field(default_factory=SpecAugment)
    model: ModelConfig = field(default_factory=ModelConfig)
    windows: windows.WindowConfig = field(default_factory=windows.WindowConfig)

    def check(self) -> None:
        if min(self.epochs, self.batch_size, self.patience, self.lr_patience) < 1:
            raise WakewardError("epochs, batch_size, patience and lr_patience must be >= 1")
        if not self.learning_rate > 0 or not self.negative_weight > 0:
            raise WakewardError("learning_rate and negative_weight must be > 0")
        if not 0.0 <= self.owner_share < 1.0:
            raise WakewardError(f"owner_share {self.owner_share} is not in [0, 1)")
        self.model.check()
        self.windows.check()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_json()
        return d


QUICK = TrainConfig(
    epochs=3,
    batch_size=64,
    patience=2,
    model=ModelConfig(first_filters=8, blocks=((5, 12), (9, 12)), head_steps=3),
    windows=windows.WindowConfig(positives_per_clip=3, negatives_per_clip=4),
    stream_windows=2_000,
    validation_stream_windows=300,
    hard_negatives=200,
    hard_epochs=1,
)


@dataclass
class TrainResult:
    net: Net
    model: Any  # the non-streaming keras.Model, best weights restored
    config: TrainConfig
    history: dict[str, list[float]]
    best_epoch: int  # 1-based
    epochs_run: int
    windows: dict[str, dict[str, int]]  # fit/validation/heldout -> kind -> windows
    heldout: dict[str, Any]  # window-level metrics on the held-out split
    hard_negatives: dict[str, Any]  # the second fit's hard stream windows (none: {})
    params: int
    elapsed_s: float


def _weights(
    y: np.ndarray,
    negative_weight: float,
    owner: np.ndarray | None = None,
    owner_share: float = 0.0,
) -> np.ndarray:
    """Per-window weights: classes balanced, negatives times negative_weight; the `owner`
    windows (positives) then weigh at least `owner_share` of the positives' total, the
    other positives the rest, so the positive class weighs what it did."""
    n = len(y)
    is_pos = y > 0.5
    pos = float(np.sum(is_pos))
    neg = n - pos
    w = np.ones(n, np.float32)
    if pos:
        w[is_pos] = n / (2.0 * pos)
    if neg:
        w[~is_pos] = n / (2.0 * neg) * negative_weight
    if owner is None or not pos:
        return w
    mine = owner & is_pos
    k = float(np.sum(mine))
    if 0 < k < pos and k / pos < owner_share:
        total = n / 2.0
        w[mine] = total * owner_share / k
        w[is_pos & ~mine] = total * (1.0 - owner_share) / (pos - k)
    return w


def _batches_class() -> type:
    _, keras = require()

    class Batches(keras.utils.PyDataset):  # type: ignore[name-defined]
        """Float batches of int8 windows. For training: windows drawn anew and a seeded new
        order every epoch, SpecAugment masks; for validation: fixed, in order."""

        def __init__(
            self,
            draw: Callable[[int], windows.Windows],
            size: int,
            config: TrainConfig,
            train: bool,
        ) -> None:
            super().__init__(workers=1, use_multiprocessing=False, max_queue_size=4)
            self.draw, self.size, self.config, self.train = draw, size, config, train
            self.epoch = 0
            self._load()

        def _load(self) -> None:
            self.w = self.draw(self.epoch if self.config.resample_windows else 0)
            self.weights = _weights(
                self.w.y,
                self.config.negative_weight,
                self.w.kind == windows.OWNER,
                self.config.owner_share,
            )
            rng = np.random.default_rng([self.config.seed, 0x657063, self.epoch])
            self.order = rng.permutation(len(self.w)) if self.train else np.arange(len(self.w))

        def __len__(self) -> int:
            return math.ceil(len(self.w) / self.size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            idx = np.sort(self.order[i * self.size : (i + 1) * self.size])
            x = to_float(self.w.x[idx])
            if self.train:
                rng = np.random.default_rng([self.config.seed, 0x737061, self.epoch, i])
                x = self.config.spec_augment.apply(x, rng)
            return x, self.w.y[idx, None], self.weights[idx]

        def on_epoch_end(self) -> None:
            if self.train:
                self.epoch += 1
                self._load()

    return Batches


def _progress_callback(say: Say, epochs: int) -> Any:
    _, keras = require()

    class Progress(keras.callbacks.Callback):  # type: ignore[name-defined]
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.t0 = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            fpr = _rate(logs.get("val_fp", 0.0), logs.get("val_tn", 0.0))
            say(
                f"train: epoch {epoch + 1}/{epochs}: loss {logs.get('loss', 0):.4f}, "
                f"validation loss {logs.get('val_loss', 0):.4f}, recall "
                f"{logs.get('val_recall', 0):.3f}, false-positive rate {fpr:.4f} "
                f"({time.monotonic() - self.t0:.0f} s)"
            )

    return Progress()


def _rate(a: float, b: float) -> float:
    return a / (a + b) if a + b else 0.0


def split_records(
    data: Dataset, config: TrainConfig
) -> tuple[list[ClipRecord], list[ClipRecord], list[ClipRecord]]:
    """(fit, validation, held-out) clips: validation split off train by speaker."""
    train = [r for r in data.records if r.split == TRAIN]
    fit, val = windows.validation_split(train, config.validation_fraction, config.seed)
    return fit, val, [r for r in data.records if r.split == HELDOUT]


def drawer(
    data: Dataset,
    records: list[ClipRecord],
    config: TrainConfig,
    streams: Sequence[np.ndarray] = (),
) -> Callable[[int], windows.Windows]:
    """epoch -> that epoch's windows of `records`, and config.stream_windows from the
    fitting part of `streams` (long negative audio)."""

    @functools.lru_cache(maxsize=1)
    def draw(epoch: int) -> windows.Windows:
        length = config.model.receptive_frames
        cut = windows.cut(data, records, length, config.windows, config.seed, epoch)
        if not streams:
            return cut
        rng = np.random.default_rng([config.seed, _STREAM_SALT, epoch])
        extra = windows.stream_windows(
            streams, length, config.stream_windows, rng, (0.0, STREAM_FIT_PART)
        )
        return windows.concat(cut, extra)

    return draw


def hard_negatives(
    model: Any, streams: Sequence[np.ndarray], config: TrainConfig, batch: int = 2048
) -> tuple[windows.Windows, dict[str, Any]]:
    """The windows of the streams' fitting part the model scores highest (false alarms
    waiting to happen), every `hard_stride` frames, at most `hard_negatives` of them."""
    length = config.model.receptive_frames
    found_p: list[np.ndarray] = []
    found_at: list[tuple[int, np.ndarray]] = []
    scored = 0
    for i, chunk in enumerate(streams):
        fit_end = int(len(chunk) * STREAM_FIT_PART)
        if fit_end < length:
            continue
        view = np.lib.stride_tricks.sliding_window_view(chunk[:fit_end], length, axis=0)
        starts = np.arange(0, len(view), config.hard_stride)
        for a in range(0, len(starts), batch):
            idx = starts[a : a + batch]
            x = np.ascontiguousarray(view[idx].transpose(0, 2, 1))
            p = numpy_of(model(to_float(x), training=False))[:, -1]
            keep = p > config.hard_min_p
            found_p.append(p[keep])
            found_at.append((i, idx[keep]))
            scored += len(idx)
    p_all = np.concatenate(found_p) if found_p else np.zeros(0, np.float32)
    order = np.argsort(-p_all, kind="stable")[: config.hard_negatives]
    where = [(i, int(s)) for i, starts_kept in found_at for s in starts_kept]
    x = np.empty((len(order), length, windows.NUM_FEATURES), np.int8)
    for k, j in enumerate(order):
        i, start = where[j]
        x[k] = streams[i][start : start + length]
    n = len(order)
    chosen = windows.Windows(x, np.zeros(n, np.float32), np.full(n, HARD), np.full(n, -1, np.int64))
    info = {
        "scored_windows": scored,
        "above_min_p": int(len(p_all)),
        "kept": n,
        "lowest_kept_p": round(float(p_all[order[-1]]), 4) if n else None,
    }
    return chosen, info


def validation_streams(streams: Sequence[np.ndarray], config: TrainConfig) -> windows.Windows:
    """Fixed validation windows from the part of the streams that fitting never sees."""
    rng = np.random.default_rng([config.seed, _STREAM_SALT, _VALIDATION])
    length = config.model.receptive_frames
    count = config.validation_stream_windows
    return windows.stream_windows(streams, length, count, rng, (STREAM_FIT_PART, 1.0))


def window_metrics(model: Any, w: windows.Windows, batch: int = 512) -> dict[str, Any]:
    """Window-level figures at probability 0.5: recall on positives, false-positive rate on
    negatives overall and per kind of window."""
    p = predict(model, w, batch)
    pos = w.y > 0.5
    out: dict[str, Any] = {
        "windows": int(len(w)),
        "positives": int(pos.sum()),
        "accuracy": round(float(np.mean((p > 0.5) == pos)), 4) if len(w) else 0.0,
        "recall": round(float(np.mean(p[pos] > 0.5)), 4) if pos.any() else None,
        "false_positive_rate": round(float(np.mean(p[~pos] > 0.5)), 4) if (~pos).any() else None,
        "false_positive_rate_by_kind": {},
    }
    for kind in sorted(set(w.kind[~pos].tolist())):
        sel = (w.kind == kind) & ~pos
        out["false_positive_rate_by_kind"][kind] = round(float(np.mean(p[sel] > 0.5)), 4)
    return out


def predict(model: Any, w: windows.Windows, batch: int = 512) -> np.ndarray:
    """The float model's probability for each window."""
    out = [
        numpy_of(model(to_float(w.x[i : i + batch]), training=False))[:, -1]
        for i in range(0, len(w), batch)
    ]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def train(
    data: Dataset,
    config: TrainConfig,
    say: Say = print,
    streams: Sequence[np.ndarray] = (),
) -> TrainResult:
    """Train on `data`'s train split, and on windows of `streams` (the training speakers'
    long negative audio, streams.py) when given; returns the model with its best
    validation weights."""
    config.check()
    tf, keras = require()
    t0 = time.monotonic()
    seed_everything(config.seed)
    fit_clips, val_clips, held_clips = split_records(data, config)
    fit = drawer(data, fit_clips, config, streams)(0)
    val = drawer(data, val_clips, config)(0)
    if streams:
        val = windows.concat(val, validation_streams(streams, config))
    held = drawer(data, held_clips, config)(0)
    for name, w in (("fit", fit), ("validation", val)):
        if not (w.y > 0.5).any() or not (w.y <= 0.5).any():
            raise WakewardError(
                f"{data.path}: the {name} windows need positives and negatives "
                f"(got {w.counts()}); build a bigger dataset (--positives/--negatives)"
            )
    say(
        f"train: {len(fit)} training windows ({int(fit.y.sum())} positive), {len(val)} "
        f"validation, {len(held)} held-out; {config.model.receptive_frames} frames each"
    )
    net = Net(config.model)
    model = net.nonstreaming()
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[
            keras.metrics.Recall(name="recall"),
            keras.metrics.FalsePositives(name="fp"),
            keras.metrics.TrueNegatives(name="tn"),
        ],
    )
    params = int(model.count_params())
    say(f"train: model of {params:,} parameters, up to {plural(config.epochs, 'epoch')}")
    batches = _batches_class()
    fit_data = batches(drawer(data, fit_clips, config, streams), config.batch_size, config, True)
    val_data = batches(lambda epoch: val, 512, config, False)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    slower = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=config.lr_patience, min_lr=1e-5
    )
    history = model.fit(
        fit_data,
        validation_data=val_data,
        epochs=config.epochs,
        callbacks=[slower, stop, _progress_callback(say, config.epochs)],
        verbose=0,
    )
    losses = history.history.get("val_loss", [])
    best = int(np.argmin(losses)) + 1 if losses else 0
    if len(losses) < config.epochs or best != len(losses):
        say(f"train: best validation loss at epoch {best}; its weights are kept")
    logs = {k: list(v) for k, v in history.history.items()}
    hard_info: dict[str, Any] = {}
    if streams and config.hard_negatives > 0 and config.hard_epochs > 0:
        hard, hard_info = hard_negatives(model, streams, config)
        say(
            f"train: {plural(hard_info['kept'], 'hard negative')} from "
            f"{hard_info['scored_windows']:,} "
            f"stream windows ({hard_info['above_min_p']:,} above p {config.hard_min_p}, the "
            f"lowest kept at p {hard_info['lowest_kept_p']})"
        )
        if len(hard):
            base = drawer(data, fit_clips, config, streams)
            repeated = hard.take(np.tile(np.arange(len(hard)), config.hard_repeats))

            def with_hard(epoch: int) -> windows.Windows:
                return windows.concat(base(config.epochs + epoch), repeated)

            again = model.fit(
                batches(with_hard, config.batch_size, config, True),
                validation_data=val_data,
                epochs=config.hard_epochs,
                callbacks=[
                    keras.callbacks.EarlyStopping(
                        monitor="val_loss", patience=config.patience, restore_best_weights=True
                    ),
                    _progress_callback(say, config.hard_epochs),
                ],
                verbose=0,
            )
            for k, v in again.history.items():
                logs.setdefault(k, []).extend(v)
            hard_info["epochs_run"] = len(again.history.get("val_loss", []))
    heldout = window_metrics(model, held) if len(held) else {}
    if heldout:
        say(
            f"train: held-out windows: recall {heldout['recall']}, false-positive rate "
            f"{heldout['false_positive_rate']} at p > 0.5 ({heldout['windows']} windows)"
        )
    del tf
    return TrainResult(
        net=net,
        model=model,
        config=config,
        history={k: [round(float(v), 5) for v in vs] for k, vs in logs.items()},
        best_epoch=best,
        epochs_run=len(losses),
        windows={"fit": fit.counts(), "validation": val.counts(), "heldout": held.counts()},
        hard_negatives=hard_info,
        heldout=heldout,
        params=params,
        elapsed_s=round(time.monotonic() - t0, 1),
    )


def with_epochs(config: TrainConfig, epochs: int | None) -> TrainConfig:
    return config if epochs is None else replace(config, epochs=epochs)
