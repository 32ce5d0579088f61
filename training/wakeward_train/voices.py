"""Offline text-to-speech: which engines and voices this machine has, and speech from them.

Engines (each used only where installed; `detect()` says what it found and what is missing):

- espeak-ng: every English accent it ships (en-us, en-gb, en-gb-scotland, en-029, ...)
  combined with its voice variants (`en-us+f3`, `en-gb+m7`, `+klatt`, ...);
  rate `-s` (words per minute), pitch `-p` (0..99).
- MBROLA voices through espeak-ng (`-v mb-us1`): needs the `mbrola` program and the voice
  databases (Debian contrib/non-free: mbrola, mbrola-us1, mbrola-us2, mbrola-us3, mbrola-en1).
- flite: its compiled-in voices (kal, kal16, awb, rms, slt); rate via duration_stretch,
  pitch via int_f0_target_mean where the voice honours it (not rms).
- festival: the voices its (voice.list) reports (kal_diphone, ked_diphone, cmu_us_slt_arctic_hts
  with festvox-* installed); rate via Duration_Stretch, no pitch control. Requests for one
  festival voice are batched into one festival process (it takes ~0.3 s to start).

Every engine is deterministic: the same voice, text and prosody give the same samples.
Output is always 16 kHz mono int16 (resampled in numpy where the engine speaks at another
rate).

A voice's `speaker` says who it sounds like, across engines: flite's kal and kal16 and
festival's kal_diphone are one speaker, as are flite's slt and festival's slt HTS voice, and
espeak-ng's variant `f3` is one speaker in every accent. The held-out split is made over
speakers, so no speaker is heard in both splits.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError

from wakeward_train.resample import resample

ESPEAK = "espeak-ng"
MBROLA = "mbrola"
FLITE = "flite"
FESTIVAL = "festival"
ENGINES = (ESPEAK, MBROLA, FLITE, FESTIVAL)

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


def _speaker_key(name: str) -> str:
    """flite 'kal16' and festival 'kal_diphone' -> 'kal'; 'cmu_us_slt_arctic_hts' -> 'slt'."""
    key = name.lower().removeprefix("cmu_us_").split("_")[0]
    return re.sub(r"\d+$", "", key) or key


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
    voices = []
    for name in sorted(listed):
        db = name.split("-")[1]  # mb-us1 -> us1, mb-de1-en -> de1
        if _mbrola_installed(db):
            voices.append(Voice(MBROLA, name, f"mbrola:{db}"))
    if not voices:
        return [], "mbrola is installed but no English voice databases (e.g. mbrola-us1)"
    return voices, f"{len(voices)} voices: {', '.join(v.name for v in voices)}"


def _detect_flite() -> tuple[list[Voice], str]:
    if shutil.which(FLITE) is None:
        return [], "not installed (Debian package flite)"
    out = _run([FLITE, "-lv"], what="listing flite voices")
    names = [n for n in out.split(":", 1)[-1].split() if n not in FLITE_SKIPPED]
    voices = [
        Voice(FLITE, n, f"speaker:{_speaker_key(n)}", pitch_control=n in FLITE_F0_HZ) for n in names
    ]
    version = _run([FLITE, "--version"], what="flite --version", check=False)  # exits 1
    m = re.search(r"flite-([\w.]+)", version)
    return voices, (
        f"{m.group(1) if m else '?'}: {len(voices)} voices: {', '.join(names)}"
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
    voices = [Voice(FESTIVAL, n, f"speaker:{_speaker_key(n)}", pitch_control=False) for n in names]
    if not voices:
        return [], "installed but has no voices (Debian festvox-kallpc16k, ...)"
    return voices, (
        f"{m.group(1) if m else '?'}: {len(voices)} voices: {', '.join(names)} (no pitch control)"
    )


def detect(*, espeak_variants: bool = True, engines: Sequence[str] = ENGINES) -> Inventory:
    """The offline voices installed here, for the engines asked for."""
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise WakewardError(f"unknown TTS engine(s) {sorted(unknown)}; known: {list(ENGINES)}")
    inv = Inventory(voices=[])
    finders = {
        ESPEAK: lambda: _detect_espeak(espeak_variants),
        MBROLA: _detect_mbrola,
        FLITE: _detect_flite,
        FESTIVAL: _detect_festival,
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


def _festival_script(voice: Voice, jobs: Sequence[tuple[str, Prosody, Path]]) -> str:
    lines = [f"({'voice_' + voice.name})"]
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


def _speak_one(req: SpeechRequest, out: Path) -> np.ndarray:
    what = f"{req.voice.id} saying {req.text!r}"
    text = _check(req)
    if req.voice.engine == FESTIVAL:
        _run([FESTIVAL, "-b", str(_write_script(req.voice, [(text, req.prosody, out)], out))],
             what=what)  # fmt: skip
    elif req.voice.engine == FLITE:
        _run(_flite_cmd(req.voice, text, req.prosody, out), what=what)
    else:  # espeak-ng and its MBROLA voices; text on stdin ("-x" is not an option)
        _run(_espeak_cmd(req.voice, req.prosody, out), what=what, stdin=text)
    return _to_int16(read_any_wav(out, what=what), what=what)


def _write_script(voice: Voice, jobs: Sequence[tuple[str, Prosody, Path]], near: Path) -> Path:
    script = near.with_suffix(".scm")
    script.write_text(_festival_script(voice, jobs))
    return script


def default_jobs() -> int:
    """TTS processes run at once: one per CPU (each is a single-threaded program), at most
    MAX_JOBS."""
    return max(1, min(os.cpu_count() or 1, MAX_JOBS))


def speak_all(
    requests: Sequence[SpeechRequest], jobs: int | None = None
) -> list[np.ndarray | WakewardError]:
    """Each request's int16 16 kHz speech, in order, or the error that request got (so one
    voice that cannot say one text does not stop a batch). Up to `jobs` (default: one per
    CPU) TTS processes run at once; each result depends on its request alone, so the
    output is the same for any `jobs`. Festival requests share one process per voice; if
    that batch fails, its requests are retried one by one."""
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
                return _speak_one(requests[i], Path(tmp) / name)
            except WakewardError as e:
                return e

        def batch(voice: Voice, idxs: list[int]) -> None:
            lines = [
                (_clean_text(requests[i].text), requests[i].prosody, Path(tmp) / f"{i}.wav")
                for i in idxs
            ]
            try:
                script = _write_script(voice, lines, Path(tmp) / f"batch-{idxs[0]}.wav")
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
