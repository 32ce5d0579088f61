"""Phonemes from espeak-ng, a phonetic edit distance, and a phonemised word list.

`phonemize` runs `espeak-ng -q --ipa --sep=_` (the phonemes espeak-ng itself would speak,
in IPA, one token per phoneme) and drops stress marks: "hey jarvis" -> h eɪ dʒ ɑːɹ v ɪ s.

`distances` is a weighted Levenshtein distance between phoneme strings, vectorised over many
candidates at once: substituting a vowel for a vowel, or a consonant for its voiced/voiceless
or place neighbour (t/d, s/z, m/n, l/ɹ, ...), costs 0.5; other substitutions, insertions and
deletions cost 1, except weak sounds (h, ə, ɐ, ᵻ, ʔ) which cost 0.5 to insert or delete.
Three alignments: whole against whole, the target somewhere inside each candidate ("alexa"
inside "alexander"), and each candidate somewhere inside the target ("jar" inside "jarvis").

The word list (where words come from offline): Debian's `wamerican` dictionary,
/usr/share/dict/words (SCOWL, ~100,000 words with names, which make good confusables:
"Alexis", "Travis"), when it is installed; otherwise the words of the package's own
sentence list (data/sentences.txt, ~800 words: far fewer neighbours). espeak-ng's own
dictionary is compiled (en_dict) and lists no words, so it cannot serve as a word list.
Phonemising 64,000 words takes about a minute, so the result is cached per word list,
espeak-ng version and accent in the user's cache folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
from wakeward.errors import WakewardError

Phonemes = tuple[str, ...]
SYSTEM_WORDS = Path("/usr/share/dict/words")
SENTENCES = Path(__file__).with_name("data") / "sentences.txt"
DEFAULT_ACCENT = "en-us"
_STRESS = str.maketrans("", "", "ˈˌ")
_VOWELS = set("aeiouæɑɒɔəɚɛɜɪʊʌɐᵻɘɵøœɤɯyʏɝ")
_WEAK = {"h", "ə", "ɐ", "ᵻ", "ʔ"}
_NEAR = [
    ("p", "b"), ("t", "d"), ("k", "ɡ"), ("k", "g"), ("f", "v"), ("θ", "ð"), ("s", "z"),
    ("ʃ", "ʒ"), ("tʃ", "dʒ"), ("t", "ɾ"), ("d", "ɾ"), ("t", "ʔ"), ("m", "n"), ("n", "ŋ"),
    ("m", "ŋ"), ("n", "n̩"), ("l", "l̩"), ("l", "ɹ"), ("ɹ", "r"), ("w", "ʍ"), ("ʃ", "tʃ"),
    ("ʒ", "dʒ"), ("s", "ʃ"), ("z", "ʒ"), ("θ", "f"), ("ð", "v"), ("θ", "s"), ("ð", "z"),
]  # fmt: skip
_NEAR_SET = {frozenset(p) for p in _NEAR}
_CHUNK = 4000  # words per espeak-ng call
_WORD_RE = re.compile(r"^[A-Za-z]{2,20}$")


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise WakewardError(
            "espeak-ng is not installed: run `sudo apt-get install espeak-ng` (it gives the "
            "phonemes for confusable words)"
        )
    return path


def espeak_version() -> str:
    done = subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"text-to-speech: ([\w.-]+)", done.stdout)
    return m.group(1) if m else "unknown"


def clean_text(text: str) -> str:
    """Letters, digits, apostrophes and single spaces: one espeak-ng clause per text."""
    return " ".join(re.sub(r"[^\w' ]+", " ", text).split())


def _tokens(line: str) -> Phonemes:
    return tuple(
        t for word in line.split() for t in (p.translate(_STRESS) for p in word.split("_")) if t
    )


def run_espeak(lines: Sequence[str], accent: str) -> list[str]:
    """espeak-ng's IPA for each line (one output line per clause), stress marks kept."""
    text = "".join(f"{line}.\n" for line in lines)
    done = subprocess.run(
        [_espeak(), "-q", "--ipa", "--sep=_", "-v", accent],
        input=text,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise WakewardError(f"espeak-ng could not phonemise ({accent}): {done.stderr.strip()}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def phonemize(
    texts: Sequence[str],
    accent: str = DEFAULT_ACCENT,
    progress: Callable[[int, int], None] | None = None,
) -> list[Phonemes]:
    """Each text's phonemes as espeak-ng would speak them in `accent`."""
    cleaned = [clean_text(t) for t in texts]
    out: list[Phonemes] = [()] * len(texts)
    todo = [i for i, t in enumerate(cleaned) if t]
    for at in range(0, len(todo), _CHUNK):
        idxs = todo[at : at + _CHUNK]
        lines = run_espeak([cleaned[i] for i in idxs], accent)
        if len(lines) != len(idxs):  # a text became several clauses: one call per text
            lines = [" ".join(run_espeak([cleaned[i]], accent)) for i in idxs]
        for i, line in zip(idxs, lines, strict=True):
            out[i] = _tokens(line)
        if progress is not None:
            progress(min(at + _CHUNK, len(todo)), len(todo))
    return out


# -- distance ----------------------------------------------------------------------------


def is_vowel(token: str) -> bool:
    return token[0] in _VOWELS


def _vowel_base(token: str) -> str:
    return token.replace("ː", "").rstrip("ɹ") or token


def substitution_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if is_vowel(a) and is_vowel(b):
        return 0.25 if _vowel_base(a) == _vowel_base(b) else 0.5
    if is_vowel(a) or is_vowel(b):
        return 1.0
    return 0.5 if frozenset((a, b)) in _NEAR_SET else 1.0


def indel_cost(token: str) -> float:
    return 0.5 if token in _WEAK else 1.0


def distances(target: Phonemes, candidates: Sequence[Phonemes], mode: str = "whole") -> np.ndarray:
    """Weighted edit distance from `target` to each candidate (float64 array).

    mode "whole": whole against whole; "target_inside": the target against the best
    stretch of each candidate; "candidate_inside": each candidate against the best stretch
    of the target.
    """
    if mode not in ("whole", "target_inside", "candidate_inside"):
        raise WakewardError(f"unknown alignment mode {mode!r}")
    n = len(candidates)
    if n == 0:
        return np.zeros(0)
    vocab = sorted({t for c in candidates for t in c} | set(target))
    index = {t: i for i, t in enumerate(vocab)}
    pad = len(vocab)
    sub = np.ones((pad + 1, pad + 1))
    for a in vocab:
        for b in vocab:
            sub[index[a], index[b]] = substitution_cost(a, b)
    indel = np.array([indel_cost(t) for t in vocab] + [0.0])
    width = max((len(c) for c in candidates), default=0)
    cand = np.full((n, width), pad, dtype=np.int64)
    for i, c in enumerate(candidates):
        cand[i, : len(c)] = [index[t] for t in c]
    lens = np.array([len(c) for c in candidates])
    rows = np.arange(n)
    ins = indel[cand]  # (n, width): cost of inserting each candidate phoneme
    prev = np.zeros((n, width + 1))
    if mode != "target_inside":
        prev[:, 1:] = np.cumsum(ins, axis=1)
    inside = mode == "candidate_inside"
    best = prev[rows, lens].copy()  # candidate_inside: the best end row so far
    for t in target:
        ti = index[t]
        cur = np.empty_like(prev)
        cur[:, 0] = 0.0 if inside else prev[:, 0] + indel[ti]
        step = np.minimum(prev[:, :-1] + sub[ti][cand], prev[:, 1:] + indel[ti])
        for j in range(1, width + 1):
            cur[:, j] = np.minimum(step[:, j - 1], cur[:, j - 1] + ins[:, j - 1])
        prev = cur
        if inside:
            best = np.minimum(best, prev[rows, lens])
    if inside:
        return best
    if mode == "target_inside":
        mask = np.arange(width + 1)[None, :] <= lens[:, None]
        return np.where(mask, prev, np.inf).min(axis=1)
    return prev[rows, lens]


# -- word list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Lexicon:
    """Words and their phonemes, sorted by word; `source` says where the words came from."""

    words: tuple[str, ...]
    phonemes: tuple[Phonemes, ...]
    source: str

    def __len__(self) -> int:
        return len(self.words)

    @functools.cached_property
    def spoken(self) -> np.ndarray:
        """Mask of the entries that are spoken as words (`plausible_word`)."""
        pairs = zip(self.words, self.phonemes, strict=True)
        return np.array([plausible_word(w, p) for w, p in pairs], dtype=bool)


# Two-letter entries of a dictionary are mostly abbreviations ("ec", "av"): keep only these.
# fmt: off
TWO_LETTER_WORDS = frozenset((
    "ah", "am", "an", "as", "at", "aw", "ax", "be", "by", "do", "eh", "ex", "go", "ha", "he",
    "hi", "ho", "if", "in", "is", "it", "ma", "me", "my", "no", "of", "oh", "ok", "on", "or",
    "ow", "ox", "pa", "so", "to", "uh", "um", "up", "us", "we", "ye", "yo",
))
# fmt: on
_ROMAN = re.compile(r"^m{0,4}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})$")


def plausible_word(word: str, said: Phonemes) -> bool:
    """False for dictionary entries that are not spoken as words: two-letter abbreviations,
    Roman numerals ("clxi") and anything espeak-ng spells out letter by letter ("adj")."""
    if len(word) < 2 or (len(word) == 2 and word not in TWO_LETTER_WORDS):
        return False
    if len(word) > 2 and _ROMAN.match(word) and word not in ("mix", "dix"):
        return False
    return 0 < len(said) <= 1.5 * len(word)


def normalise_words(lines: Iterable[str]) -> list[str]:
    """Plain alphabetic words of 2..20 letters, lower case, sorted, without duplicates."""
    return sorted({w.lower() for line in lines for w in line.split() if _WORD_RE.match(w)})


def sentence_lines(path: Path = SENTENCES) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise WakewardError(f"{path}: cannot read ({e.strerror})") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def default_word_source() -> Path | None:
    """/usr/share/dict/words when installed (Debian wamerican), else None (built-in words)."""
    return SYSTEM_WORDS if SYSTEM_WORDS.is_file() else None


def _read_words(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise WakewardError(f"{path}: no such word list") from None
    except OSError as e:
        raise WakewardError(f"{path}: cannot read the word list ({e.strerror})") from None
    words = normalise_words(text.splitlines())
    if not words:
        raise WakewardError(f"{path}: no usable words (plain letters, 2 to 20 a line)")
    return words


def _cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("wakeward")) / "lexicon"


def load_lexicon(
    words_path: Path | None = None,
    *,
    words: Sequence[str] | None = None,
    accent: str = DEFAULT_ACCENT,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Lexicon:
    """Phonemise a word list (a file, explicit words, or the default source), with a cache."""
    if words is not None:
        items, source = normalise_words(words), f"{len(words)} given words"
    elif words_path is not None:
        items, source = _read_words(words_path), str(words_path)
    elif (system := default_word_source()) is not None:
        items, source = _read_words(system), f"{system} (Debian wamerican)"
    else:
        items = normalise_words(sentence_lines())
        source = f"built-in sentence words ({SENTENCES.name}; install wamerican for more)"
    key = hashlib.sha256("\n".join([espeak_version(), accent, *items]).encode("utf-8")).hexdigest()[
        :20
    ]
    cache = (cache_dir or _cache_dir()) / f"{key}.tsv"
    cached = _read_cache(cache, items)
    if cached is not None:
        return Lexicon(tuple(items), cached, source)
    phon = phonemize(items, accent, progress)
    _write_cache(cache, items, phon)
    return Lexicon(tuple(items), tuple(phon), source)


def _read_cache(cache: Path, items: Sequence[str]) -> tuple[Phonemes, ...] | None:
    try:
        lines = cache.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    rows = [ln.split("\t") for ln in lines]
    if len(rows) != len(items) or any(
        len(r) != 2 or r[0] != w for r, w in zip(rows, items, strict=True)
    ):
        return None
    return tuple(tuple(r[1].split()) for r in rows)


def _write_cache(cache: Path, items: Sequence[str], phon: Sequence[Phonemes]) -> None:
    """Best effort: a cache we cannot write only costs time on the next run."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".lexicon.", suffix=".part", dir=cache.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(f"{w}\t{' '.join(p)}\n" for w, p in zip(items, phon, strict=True))
        os.replace(tmp, cache)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
