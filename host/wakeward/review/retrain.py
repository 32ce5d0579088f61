"""The review page's "retrain from my labels": `wakeward train` for one of the owner's trained
models, again, with the clips the owner labelled false wake in the clip store as hard
negatives (`--false-wakes-from-store --store`) and the owner's takes of the phrase
(`--owner DIR`, `wakeward record`'s folder) when given; its output followed live on the page;
at the end the new model's figures beside the old one's and the command that deploys it.

Nothing is deployed and no model is replaced: the new model is written to a folder of its
own, ``RUNS/<name>-<time>/<name>/`` (its dataset in ``RUNS/<name>-<time>/data``, the run's
output in ``log.txt`` beside them); the owner deploys it with the command shown, when the
figures say so.

The command run is ``python -m wakeward train``; WAKEWARD_REVIEW_TRAIN_COMMAND (a shell-style
command line, split with shlex, never run through a shell) replaces those words, e.g. to run
the trainer from another virtual environment (`make venv-train`'s). The tests put a fake
trainer there, which exercises this plumbing, not training.

One run at a time. Which models: the folders under --models (default ./models) that hold a
``NAME/NAME.wakeward.json`` written by `wakeward train` (it names the phrase and the seed).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wakeward.errors import WakewardError
from wakeward.store import ClipStore

TRAIN_COMMAND_ENV = "WAKEWARD_REVIEW_TRAIN_COMMAND"
LOG_NAME = "log.txt"
JOB_NAME = "job.json"
MAX_LOG_CHUNK = 64 * 1024  # bytes of log one poll returns
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*-\d{8}-\d{6}(?:-\d+)?$")
_FIGURES = (
    ("false_reject_rate", "false reject rate (held-out positives)"),
    ("false_accepts_per_hour", "false accepts per hour (held-out negative audio)"),
    ("false_accepts", "false accepts"),
    ("negative_hours", "hours of negative audio"),
    ("positives", "held-out positives"),
    ("probability_cutoff", "cutoff"),
    ("sliding_window_size", "sliding window"),
)


def train_command() -> list[str]:
    text = os.environ.get(TRAIN_COMMAND_ENV, "").strip()
    if text:
        return shlex.split(text)
    return [sys.executable, "-m", "wakeward", "train"]


@dataclass(frozen=True)
class Model:
    """A model folder written by `wakeward train`."""

    name: str
    folder: Path
    info: dict[str, Any]

    @property
    def phrase(self) -> str:
        return str(self.info.get("phrase", ""))

    @property
    def tflite(self) -> Path:
        return self.folder / f"{self.name}.tflite"

    def figures(self) -> list[tuple[str, Any]]:
        return figures_of(self.info)


HELDOUT_ENGINES_FIGURE = "false reject rate on TTS engines it never heard (leave-one-engine-out)"


def figures_of(info: dict[str, Any]) -> list[tuple[str, Any]]:
    """A record's figures, always the same rows so that two models' line up: first the
    honest one (`wakeward train --engine-folds`' pooled figure, '-' for a model trained
    without it), then its evaluation on held-out voices of the engines it trained on."""
    evaluation = info.get("evaluation")
    if not isinstance(evaluation, dict):
        return []
    engines = info.get("heldout_engines")
    pooled = engines.get("false_reject_rate") if isinstance(engines, dict) else None
    return [(HELDOUT_ENGINES_FIGURE, pooled)] + [
        (text, evaluation.get(key)) for key, text in _FIGURES
    ]


def read_info(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def find_models(models_dir: Path | None) -> dict[str, Model]:
    """The trained models under `models_dir`, by name."""
    found: dict[str, Model] = {}
    if models_dir is None or not models_dir.is_dir():
        return found
    for folder in sorted(models_dir.iterdir()):
        info = read_info(folder / f"{folder.name}.wakeward.json")
        if info is not None and isinstance(info.get("phrase"), str) and info["phrase"]:
            found[folder.name] = Model(folder.name, folder, info)
    return found


@dataclass
class Job:
    """One retrain run: its folder, its process while it runs, how it ended."""

    id: str
    folder: Path
    model: str
    phrase: str
    old_folder: Path
    command: list[str]
    started_at: float
    state: str = "running"  # running, done, failed, cancelled
    returncode: int | None = None
    ended_at: float | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    cancelling: bool = False

    @property
    def log(self) -> Path:
        return self.folder / LOG_NAME

    @property
    def out(self) -> Path:
        return self.folder / self.model

    @property
    def new_info(self) -> dict[str, Any] | None:
        return read_info(self.out / f"{self.model}.wakeward.json")

    @property
    def new_tflite(self) -> Path:
        return self.out / f"{self.model}.tflite"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "phrase": self.phrase,
            "old_folder": str(self.old_folder),
            "command": self.command,
            "started_at": self.started_at,
            "state": self.state,
            "returncode": self.returncode,
            "ended_at": self.ended_at,
        }

    @classmethod
    def load(cls, folder: Path) -> Job | None:
        info = read_info(folder / JOB_NAME)
        if info is None:
            return None
        try:
            job = cls(
                id=str(info["id"]),
                folder=folder,
                model=str(info["model"]),
                phrase=str(info["phrase"]),
                old_folder=Path(info["old_folder"]),
                command=[str(a) for a in info["command"]],
                started_at=float(info["started_at"]),
                state=str(info["state"]),
                returncode=info.get("returncode"),
                ended_at=info.get("ended_at"),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if job.state == "running":  # a run whose review page stopped: its end is unknown
            job.state = "unknown"
        return job

    def save(self) -> None:
        temp = self.folder / f".{JOB_NAME}.part"
        temp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        temp.replace(self.folder / JOB_NAME)


class Retrainer:
    """Starts and follows the retrain runs of one review launch."""

    def __init__(self, store: ClipStore, models_dir: Path | None, runs_dir: Path) -> None:
        self.store = store
        self.models_dir = models_dir
        self.runs_dir = runs_dir
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def models(self) -> dict[str, Model]:
        return find_models(self.models_dir)

    def false_wakes(self) -> tuple[int, int]:
        """The clips labelled false wake that training takes (their audio kept), and those
        whose audio was deleted (training cannot take them)."""
        clips = self.store.clips(label="false-wake")
        kept = sum(not c.deleted for c in clips)
        return kept, len(clips) - kept

    def running(self) -> Job | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.state == "running"), None)

    def jobs(self) -> list[Job]:
        """This launch's runs and the earlier ones in the runs folder, newest first."""
        with self._lock:
            found = dict(self._jobs)
        if self.runs_dir.is_dir():
            for folder in self.runs_dir.iterdir():
                if folder.name not in found and _JOB_ID.match(folder.name):
                    job = Job.load(folder)
                    if job is not None:
                        found[job.id] = job
        return sorted(found.values(), key=lambda j: j.started_at, reverse=True)

    def job(self, job_id: str) -> Job:
        if not _JOB_ID.match(job_id):
            raise WakewardError(f"retrain {job_id!r}: no such run")
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            job = Job.load(self.runs_dir / job_id)
        if job is None:
            raise WakewardError(f"retrain {job_id!r}: no such run in {self.runs_dir}")
        return job

    def start(self, model_name: str, takes: str) -> Job:
        """Start `wakeward train` for the model named, with the store's false wakes and
        the takes folder (if any)."""
        model = self.models().get(model_name)
        if model is None:
            raise WakewardError(
                f"model {model_name!r}: not a model `wakeward train` wrote under "
                f"{self.models_dir} (choose one listed)"
            )
        owner = _takes_folder(takes)
        kept, _ = self.false_wakes()
        if kept == 0:
            raise WakewardError(
                "no clip labelled false wake with its audio in the clip store: label the "
                "false wakes first (nothing to retrain from)"
            )
        with self._lock:
            if any(j.state == "running" for j in self._jobs.values()):
                raise WakewardError("a retrain is running: wait for it, or cancel it")
            job_id = self._new_id(model.name)
            folder = self.runs_dir / job_id
            try:
                folder.mkdir(parents=True, mode=0o700)
            except OSError as e:
                raise WakewardError(f"{folder}: cannot make the run's folder ({e})") from None
            command = [
                *train_command(),
                model.phrase,
                "--out",
                str(folder / model.name),
                "--data",
                str(folder / "data"),
                "--seed",
                str(model.info.get("seed", 0)),
                "--false-wakes-from-store",
                "--store",
                str(self.store.folder),
            ]
            if model.info.get("quick"):
                command.append("--quick")
            if owner is not None:
                command += ["--owner", str(owner)]
            job = Job(
                id=job_id,
                folder=folder,
                model=model.name,
                phrase=model.phrase,
                old_folder=model.folder,
                command=command,
                started_at=time.time(),
            )
            with job.log.open("wb") as log:
                log.write(f"$ {shlex.join(command)}\n".encode())
                log.flush()
                try:
                    job.process = subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    )
                except OSError as e:
                    raise WakewardError(f"cannot start {command[0]}: {e.strerror or e}") from None
            job.save()
            self._jobs[job.id] = job
        threading.Thread(target=self._follow, args=(job,), daemon=True).start()
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.job(job_id)
        if job.state != "running" or job.process is None:
            raise WakewardError(f"retrain {job.id}: not running")
        job.cancelling = True
        job.process.send_signal(signal.SIGINT)  # the trainer stops as on Ctrl-C
        return job

    def log_after(self, job: Job, offset: int) -> tuple[str, int]:
        """The run's output from byte `offset` (at most MAX_LOG_CHUNK bytes, ending at a
        line's end when it can) and the offset to ask from next."""
        try:
            with job.log.open("rb") as f:
                f.seek(max(0, offset))
                data = f.read(MAX_LOG_CHUNK)
        except FileNotFoundError:
            return "", offset
        if len(data) == MAX_LOG_CHUNK and b"\n" in data:
            data = data[: data.rindex(b"\n") + 1]
        return data.decode("utf-8", errors="replace"), max(0, offset) + len(data)

    def close(self) -> None:
        """Stop a run still going (the review page is stopping)."""
        job = self.running()
        if job is not None and job.process is not None:
            job.process.send_signal(signal.SIGINT)
            try:
                job.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                job.process.kill()

    def _follow(self, job: Job) -> None:
        assert job.process is not None
        code = job.process.wait()
        with self._lock:
            job.returncode = code
            job.ended_at = time.time()
            if job.cancelling:
                job.state = "cancelled"
            else:
                job.state = "done" if code == 0 and job.new_info is not None else "failed"
            job.save()

    def _new_id(self, name: str) -> str:
        base = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        job_id, n = base, 1
        while (self.runs_dir / job_id).exists() or job_id in self._jobs:
            n += 1
            job_id = f"{base}-{n}"
        return job_id


def _takes_folder(text: str) -> Path | None:
    """The takes folder from the form ('' for none): `wakeward record`'s, with takes.json."""
    text = text.strip()
    if not text:
        return None
    folder = Path(text).expanduser()
    if not (folder / "takes.json").is_file():
        raise WakewardError(
            f"takes {text!r}: not a folder of `wakeward record` takes (no takes.json there)"
        )
    return folder.resolve()


def deploy_command(job: Job) -> str:
    """What the owner runs to put the new model on the speaker (nothing here runs it)."""
    return shlex.join(
        ["wakeward", "deploy", "--port", "PORT", "--model", str(job.new_tflite.resolve())]
    )


def compare_command(job: Job) -> str:
    """The like-for-like check: the old model on the new run's held-out data (absolute
    paths, as the deploy command's: the owner may run it from anywhere)."""
    old = (job.old_folder / f"{job.model}.tflite").resolve()
    return shlex.join(
        ["wakeward", "evaluate", str(old), "--data", str((job.folder / "data").resolve())]
    )
