"""The wake phrase said one way by every engine: espeak-ng's pronunciation, taught to the
festival voices whose own lexicon says a word of the phrase otherwise.

festival looks words up in its own lexicons (CMU for its US voices, OALD for its British
ones), and for some phrases they disagree with every other engine: its British voices say
"alexa" as /a l i g z @/ (a-LIG-za), its US voices "wakeward" as /w ae k w er d/ (WACK-werd).
flite (CMU letter-to-sound), Piper (espeak-ng's phonemes) and MBROLA (through espeak-ng)
agree with espeak-ng. A positive clip that says another word teaches the model that word,
and a fold held out on festival then measures festival's lexicon, not the model.

`reference(phrase)` is espeak-ng's en-us pronunciation of each word, stress kept;
`festival_phones(word, phoneset)` maps one word onto a festival phone set ("radio": the US
voices; "mrpa": the British voices, non-rhotic: an r after a vowel is dropped or makes the
centring diphthong) with festival's stress digits on the vowels, ready for
`lex.syllabify.phstress`. A word with a sound the tables lack maps to None: festival keeps
its own pronunciation of it, and the dataset summary says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wakeward_train import phonemes

Tokens = tuple[str, ...]  # espeak-ng IPA tokens of one word, stress marks kept
Reference = tuple[tuple[str, Tokens], ...]  # (word, tokens) in the phrase's order

_STRESS_MARKS = "ˈˌ"
_LONG = "ː"
_R = "ɹ"

_CONSONANTS = {
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "ɡ": "g", "g": "g", "f": "f", "v": "v",
    "θ": "th", "ð": "dh", "s": "s", "z": "z", "ʃ": "sh", "ʒ": "zh", "tʃ": "ch", "dʒ": "jh",
    "m": "m", "n": "n", "ŋ": "ng", "l": "l", "ɹ": "r", "r": "r", "w": "w", "ʍ": "w",
    "j": "y", "ɾ": "t", "ʔ": "t", "x": "k",
}  # fmt: skip

# festival's "radio" phone set (US voices: kal, ked, slt, us1-3 MBROLA)
_RADIO = {
    **_CONSONANTS, "h": "hh",
    "ɐ": "ax", "ə": "ax", "ɚ": "er", "ɝ": "er", "ɜ": "er", "ɛ": "eh", "e": "ey", "æ": "ae",
    "a": "ae", "ɑ": "aa", "ɒ": "aa", "ɔ": "ao", "o": "ow", "oʊ": "ow", "əʊ": "ow", "u": "uw",
    "ʊ": "uh", "ɪ": "ih", "ᵻ": "ih", "i": "iy", "eɪ": "ey", "aɪ": "ay", "aʊ": "aw",
    "ɔɪ": "oy", "ʌ": "ah", "eə": "eh r", "ɪə": "ih r", "ʊə": "uh r",
    "oːɹ": "ao r", "l̩": "ax l", "n̩": "ax n", "m̩": "ax m",
}  # fmt: skip
_RADIO_VOWELS = frozenset(
    [
        "aa",
        "ae",
        "ah",
        "ao",
        "aw",
        "ax",
        "axr",
        "ay",
        "eh",
        "er",
        "ey",
        "ih",
        "iy",
        "ow",
        "oy",
        "uh",
        "uw",
        "el",
        "em",
        "en",
    ]
)

# festival's "mrpa" phone set (British voices: rab, don, en1 MBROLA), non-rhotic
_MRPA = {
    **_CONSONANTS, "h": "h",
    "ɐ": "@", "ə": "@", "ɚ": "@", "ɝ": "@@", "ɜ": "@@", "ɛ": "e", "e": "e", "æ": "a",
    "a": "a", "ɑ": "aa", "ɒ": "o", "ɔ": "oo", "o": "ou", "oʊ": "ou", "əʊ": "ou", "u": "uu",
    "ʊ": "u", "ɪ": "i", "ᵻ": "i", "i": "ii", "eɪ": "ei", "aɪ": "ai", "aʊ": "au", "ɔɪ": "oi",
    "ʌ": "uh", "eə": "e@", "ɪə": "i@", "ʊə": "u@",
    "ɛɹ": "e@", "ɪɹ": "i@", "ʊɹ": "u@", "ɑːɹ": "aa", "ɔːɹ": "oo", "oːɹ": "oo", "ɜːɹ": "@@",
    "l̩": "@ l", "n̩": "@ n", "m̩": "@ m",
}  # fmt: skip
_MRPA_VOWELS = frozenset(
    [
        "uh",
        "e",
        "a",
        "o",
        "i",
        "u",
        "ii",
        "uu",
        "oo",
        "aa",
        "@@",
        "ai",
        "ei",
        "oi",
        "au",
        "ou",
        "e@",
        "i@",
        "u@",
        "@",
    ]
)

PHONESETS: Mapping[str, tuple[Mapping[str, str], frozenset[str], bool]] = {
    "radio": (_RADIO, _RADIO_VOWELS, True),  # table, vowels, rhotic
    "mrpa": (_MRPA, _MRPA_VOWELS, False),
}


def _tokens_of(word: str) -> Tokens:
    return tuple(t for t in word.split("_") if t)


def reference(phrase: str, accent: str = phonemes.DEFAULT_ACCENT) -> Reference:
    """espeak-ng's pronunciation of each word of `phrase` (lower case), stress kept. Words with
    anything but letters and apostrophes (numbers) are left out: festival expands them."""
    words = [w.lower() for w in phonemes.clean_text(phrase).split()]
    words = [w for w in words if w.replace("'", "").isalpha()]
    if not words:
        return ()
    said = " ".join(phonemes.run_espeak([" ".join(words)], accent)).split()
    if len(said) != len(words):  # espeak-ng joined or split words: one word at a time
        said = [" ".join(phonemes.run_espeak([w], accent)) for w in words]
    return tuple((w, _tokens_of(s.replace(" ", "_"))) for w, s in zip(words, said, strict=True))


def _phones(token: str, table: Mapping[str, str], rhotic: bool) -> list[str] | None:
    for key in (token, token.replace(_LONG, "")):
        if key in table:
            return table[key].split()
    if token.endswith(_R) and len(token) > 1:  # an r-coloured vowel: ɑːɹ, ɔːɹ, ɛɹ
        vowel = _phones(token[:-1], table, rhotic)
        if vowel is None:
            return None
        return [*vowel, "r"] if rhotic else vowel
    if token.endswith("ɚ") and len(token) > 1:  # aɪɚ, aʊɚ
        vowel = _phones(token[:-1], table, rhotic)
        return None if vowel is None else [*vowel, *table["ɚ"].split()]
    return None


def festival_phones(tokens: Tokens, phoneset: str) -> Tokens | None:
    """`tokens` in festival's `phoneset`, each vowel with a stress digit (1 where espeak-ng
    stresses the syllable, primary or secondary; else 0); None where the phone set or a
    sound is not in the tables."""
    if phoneset not in PHONESETS:
        return None
    table, vowels, rhotic = PHONESETS[phoneset]
    out: list[str] = []
    for token in tokens:
        stressed = token[0] in _STRESS_MARKS
        phones = _phones(token.lstrip(_STRESS_MARKS), table, rhotic)
        if phones is None:
            return None
        out += [p + ("1" if stressed else "0") if p in vowels else p for p in phones]
    return tuple(out)


def without_stress(phones: Sequence[str]) -> Tokens:
    """festival phones with the stress digits dropped (as `lex.lookup` lists them)."""
    return tuple(p.rstrip("012") for p in phones)
