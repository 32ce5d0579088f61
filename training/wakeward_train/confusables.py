"""Negative texts generated from the wake phrase: what a detector could mistake for it.

Kinds (each ranked by phonetic distance, `phonemes.distances`, on espeak-ng phonemes):

- "neighbour": a single word that sounds like the whole phrase ("alexa" -> "alexis").
- "substitution": the phrase with one word swapped for a word that sounds like it
  ("hey jarvis" -> "hey service", "hey mavis").
- "subword": part of the phrase: each word alone, the leading or trailing words, and
  words that sound like a stretch of it ("jarvis", "hey", "jar").
- "superstring": a longer word with the phrase's (or one of its words') sounds inside
  ("alexa" -> "alexander"; "jarvis" -> "harvest").
- "context": those in an ordinary carrier sentence ("I think hey service is right here").

Never generated: the phrase itself; anything within `MIN_DISTANCE` of it, i.e. one cheap
edit ("hay jarvis" sounds the same; "hi jarvis", "eh jarvis" are too close to call
negatives: a user saying them means the wake word); a text with the phrase's exact sounds
inside it, except a "superstring" word, which is longer and so a different word; a carrier
sentence with a near copy of the phrase inside. A sentence that says the phrase would be a
positive, not a negative. Deterministic: the same phrase, word list and seed give the same
list.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from wakeward.errors import WakewardError

from wakeward_train import phonemes
from wakeward_train.phonemes import Lexicon, Phonemes

KINDS = ("neighbour", "substitution", "subword", "superstring", "context")
# Share of each kind in `select` (when a kind has too few candidates the rest is shared out).
DEFAULT_SHARES = {
    "neighbour": 0.3,
    "substitution": 0.25,
    "subword": 0.2,
    "superstring": 0.1,
    "context": 0.15,
}
CARRIERS = (
    "I think {x} is right here.",
    "Did you say {x}?",
    "Please write down {x} for me.",
    "We talked about {x} all evening.",
    "{x}, that's what it said on the box.",
    "Not {x}, the other one.",
    "They call it {x} around here.",
    "Was it {x} or something else?",
)
CANDIDATES_PER_SLOT = 3  # `select` samples among the closest 3x as many as it needs
# Texts whose phonemes hold the phrase's to within this distance are not negatives: 0.5 is
# one vowel swapped, one near consonant, or one weak sound (h, ə) dropped or added.
MIN_DISTANCE = 0.75
SWAPS_PER_WORD = 6  # closest neighbours of each word combined into all-words-swapped phrases
# A text found as several kinds is kept as the first of these.
_PRIORITY = ("subword", "substitution", "neighbour", "superstring", "context")


@dataclass(frozen=True)
class Confusable:
    text: str
    kind: str
    distance: float  # weighted phoneme edit distance (to the phrase, or the part it mimics)
    note: str = ""  # what it was made from, e.g. "jarvis -> service"


def _limit(length: int, fraction: float, floor: float) -> float:
    return max(floor, fraction * length)


def _near(
    target: Phonemes, lex: Lexicon, mode: str, max_distance: float, length_ok: np.ndarray
) -> list[tuple[float, int]]:
    idx = np.flatnonzero(length_ok)
    if len(idx) == 0:
        return []
    d = phonemes.distances(target, [lex.phonemes[i] for i in idx], mode)
    keep = np.flatnonzero(d <= max_distance)
    return sorted((float(d[k]), int(idx[k])) for k in keep)


def candidates(
    phrase: str,
    lexicon: Lexicon,
    *,
    accent: str = phonemes.DEFAULT_ACCENT,
    min_distance: float = MIN_DISTANCE,
) -> list[Confusable]:
    """Every confusable found for `phrase`, ranked within each kind (closest first)."""
    words = phonemes.clean_text(phrase.lower()).split()
    if not words:
        raise WakewardError(f"wake phrase {phrase!r} has no words")
    said = phonemes.phonemize([" ".join(words), *words], accent)
    target, word_ph = said[0], said[1:]
    if len(target) < 2:
        raise WakewardError(f"wake phrase {phrase!r}: espeak-ng finds no phonemes to say")
    lens = np.where(lexicon.spoken, [len(p) for p in lexicon.phonemes], -1000)
    found: list[Confusable] = []

    # whole-phrase neighbours: one word sounding like the phrase
    whole_limit = _limit(len(target), 0.35, 1.0)
    ok = np.abs(lens - len(target)) <= 2 * whole_limit
    for d, i in _near(target, lexicon, "whole", whole_limit, ok):
        found.append(Confusable(lexicon.words[i], "neighbour", d))

    # substitutions: one word of a several-word phrase swapped for a neighbour of it;
    # neighbours of the whole: every word swapped, while the sum stays close
    if len(words) > 1:
        closest: list[list[tuple[float, str]]] = []
        for k, wp in enumerate(word_ph):
            limit = _limit(len(wp), 0.4, 0.5)
            ok = np.abs(lens - len(wp)) <= 2 * limit
            near = [(d, lexicon.words[i]) for d, i in _near(wp, lexicon, "whole", limit, ok)]
            near = [(d, w) for d, w in near if w != words[k]]
            closest.append(near[:SWAPS_PER_WORD])
            for d, w in near:
                swapped = [*words[:k], w, *words[k + 1 :]]
                found.append(Confusable(" ".join(swapped), "substitution", d, f"{words[k]} -> {w}"))
        for combo in itertools.product(*closest):
            d = sum(c[0] for c in combo)
            if d <= whole_limit:
                text = " ".join(c[1] for c in combo)
                found.append(Confusable(text, "neighbour", d, "every word swapped"))

    # sub-words: parts of the phrase, and short words that sound like a stretch of it
    for n in range(len(words) - 1, 0, -1):
        for start in range(len(words) - n + 1):
            part = " ".join(words[start : start + n])
            found.append(Confusable(part, "subword", 0.0, "part of the phrase"))
    ok = (lens >= 2) & (lens <= len(target) - 2)
    for d, i in _near(target, lexicon, "candidate_inside", 0.5, ok):
        found.append(Confusable(lexicon.words[i], "subword", d, "sounds like part of it"))

    # superstrings: longer words with the sounds of the phrase, or of one of its words, inside
    for part, ph in [(" ".join(words), target), *zip(words, word_ph, strict=True)]:
        if len(ph) < 3 or (part != " ".join(words) and len(words) == 1):
            continue
        limit = _limit(len(ph), 0.45, 0.5)
        for d, i in _near(ph, lexicon, "target_inside", limit, lens >= len(ph) + 2):
            found.append(Confusable(lexicon.words[i], "superstring", d, f"contains {part!r}"))

    kept = _exclude_the_phrase(phrase, target, found, accent, min_distance)

    # context: the closest of the others inside carrier sentences
    seeds = [c for c in kept if c.kind in ("neighbour", "substitution", "subword")]
    seeds.sort(key=lambda c: (c.distance, c.text))
    context = []
    for n, c in enumerate(seeds[: 4 * len(CARRIERS)]):
        text = CARRIERS[n % len(CARRIERS)].format(x=c.text)
        context.append(Confusable(text[0].upper() + text[1:], "context", c.distance, c.text))
    kept += _exclude_the_phrase(phrase, target, context, accent, min_distance)
    order = {k: n for n, k in enumerate(KINDS)}
    kept.sort(key=lambda c: (order[c.kind], c.distance, c.text))
    return kept


def _exclude_the_phrase(
    phrase: str,
    target: Phonemes,
    found: Sequence[Confusable],
    accent: str,
    min_distance: float,
) -> list[Confusable]:
    unique: dict[str, Confusable] = {}
    for c in sorted(found, key=lambda c: (_PRIORITY.index(c.kind), c.distance)):
        unique.setdefault(c.text.lower(), c)
    items = list(unique.values())
    said = phonemes.phonemize([c.text for c in items], accent)
    whole = phonemes.distances(target, said, "whole")
    inside = phonemes.distances(target, said, "target_inside")
    keep = []
    for c, ph, dw, di in zip(items, said, whole, inside, strict=True):
        if not ph or c.text.lower().strip(" .?!,") == phrase.lower().strip(" .?!,"):
            continue
        too_close = dw < min_distance  # sounds like the phrase, or one cheap edit from it
        says_it = di == 0 and c.kind != "superstring"  # has its exact sounds inside
        near_in_sentence = c.kind == "context" and di < min_distance
        if too_close or says_it or near_in_sentence:
            continue  # that is a positive, not a negative
        keep.append(c)
    return keep


def select(
    found: Sequence[Confusable],
    count: int,
    seed: int,
    shares: dict[str, float] | None = None,
) -> list[Confusable]:
    """`count` confusables in the given shares of kinds, favouring the closest (ties in a
    seeded order). A kind with fewer candidates than its share passes the rest to the
    others; only when all are used up do picks repeat. Deterministic given the seed."""
    if count < 0:
        raise WakewardError(f"confusable count must be >= 0, got {count}")
    shares = dict(DEFAULT_SHARES if shares is None else shares)
    unknown = set(shares) - set(KINDS)
    if unknown:
        raise WakewardError(f"unknown confusable kinds {sorted(unknown)}; known: {list(KINDS)}")
    rng = np.random.default_rng([seed, 0xC0F])
    by_kind: dict[str, list[Confusable]] = {}
    for kind in KINDS:
        pool = [c for c in found if c.kind == kind]
        ties = rng.random(len(pool))
        order = sorted(range(len(pool)), key=lambda i: (pool[i].distance, ties[i]))
        by_kind[kind] = [pool[i] for i in order]
    live = {k: s for k, s in shares.items() if s > 0 and by_kind[k]}
    if count == 0 or not live:
        return []
    quotas = _quotas(count, live, {k: len(v) for k, v in by_kind.items()})
    out: list[Confusable] = []
    for kind in KINDS:
        need = quotas.get(kind, 0)
        if need == 0:
            continue
        pool = by_kind[kind][: need * CANDIDATES_PER_SLOT]
        picks = [pool[i] for i in sorted(rng.permutation(len(pool))[: min(need, len(pool))])]
        out += [picks[i % len(picks)] for i in range(need)]
    return out


def _quotas(count: int, shares: dict[str, float], available: dict[str, int]) -> dict[str, int]:
    """Split `count` by `shares`, no kind above what it has while others have room."""
    quotas = dict.fromkeys(shares, 0)
    left = count
    open_kinds = set(shares)
    while left > 0 and open_kinds:
        total = sum(shares[k] for k in open_kinds)
        order = sorted(open_kinds, key=lambda k: (-shares[k], k))
        give = {k: int(left * shares[k] / total) for k in order}
        for k in order[: left - sum(give.values())]:
            give[k] += 1
        for k in order:
            room = available[k] - quotas[k]
            take = min(give[k], room)
            quotas[k] += take
            left -= take
            if quotas[k] >= available[k]:
                open_kinds.discard(k)
    if left > 0:  # every candidate is used: repeat, in the shares
        total = sum(shares.values())
        exact = {k: left * shares[k] / total for k in shares}
        extra = {k: int(x) for k, x in exact.items()}
        ranked = sorted(shares, key=lambda k: (-(exact[k] - extra[k]), k))
        for k in ranked[: left - sum(extra.values())]:
            extra[k] += 1
        for k in shares:
            quotas[k] += extra[k]
    return quotas
