"""Real recorded speech (realspeech.py) and its streams (streams.ensure_real): on small
sources made here (a queen.1c with MP3 entries, Ogg and WAV files laid out as the Debian
packages install them), and once on the installed packages when they are there."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from wakeward.audio import RATE_HZ
from wakeward.errors import WakewardError
from wakeward_train import realspeech, scenes, streams
from wakeward_train.dataset import HELDOUT, TRAIN

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

_USER_CACHE = realspeech.cache_root()  # before conftest points the cache at a temp folder
SPEECH_S = 0.8
PAD_S = 0.3  # quiet around each utterance, trimmed away
QUEEN_RATE_HZ = 11025
QUEEN_SPEECH = ("020001P1.SB", "02SSSSJ1.SB", "JOE00011.SB", "C1A__051.SB", "030004P2.SB")
QUEEN_NOT_SPEECH = ("116BSSSS.SB", "ROOM1.PCX")
QUEEN_SILENT = "040001P1.SB"
QUEEN_SHORT = "050001P1.SB"


def _speech(rate_hz: int, seconds: float, seed: int, channels: int = 1) -> np.ndarray:
    """A voiced-like sound (a 150 Hz buzz with formant-ish partials, syllable envelope),
    with PAD_S of faint noise around it."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 450, 900, 2100), 1))
    x = 0.3 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2)
    pad = 0.0005 * rng.standard_normal(int(PAD_S * rate_hz))
    y = np.concatenate([pad, x, pad]).astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def _encoded(x: np.ndarray, rate_hz: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate_hz, format=fmt, subtype=subtype)
    return buf.getvalue()


def _write_queen(path: Path, entries: dict[str, bytes], magic: bytes = b"QTBL") -> None:
    header_len = 15 + 21 * len(entries)
    table, blobs, at = b"", b"", header_len
    for name, blob in entries.items():
        table += struct.pack(">12sBII", name.encode(), 1, at, len(blob))
        blobs += blob
        at += len(blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        struct.pack(">4s6s2sBH", magic, b"CEM10\0", b"\0\0", 1, len(entries)) + table + blobs
    )


def _mp3(seed: int, seconds: float = SPEECH_S) -> bytes:
    return _encoded(_speech(QUEEN_RATE_HZ, seconds, seed), QUEEN_RATE_HZ, "MP3")


def _ogg(path: Path, seed: int, rate_hz: int = 22050, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_encoded(_speech(rate_hz, SPEECH_S, seed, channels), rate_hz, "OGG", "VORBIS"))


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("sources")
    entries = {name: _mp3(i) for i, name in enumerate(QUEEN_SPEECH)}
    entries["116BSSSS.SB"] = _mp3(9)  # a sound effect: left out by its name
    entries["ROOM1.PCX"] = b"\0" * 64
    entries[QUEEN_SILENT] = _encoded(np.zeros(QUEEN_RATE_HZ, np.float32), QUEEN_RATE_HZ, "MP3")
    entries[QUEEN_SHORT] = _mp3(10, seconds=0.2)
    _write_queen(tmp / "queen" / "queen.1c", entries)
    fillets = tmp / "fillets"
    for i, who in enumerate(("m", "v", "m", "v", "x")):
        _ogg(fillets / "level1" / "cs" / f"level1-{who}-word{i}.ogg", 20 + i, channels=2)
    _ogg(fillets / "share" / "jokes" / "cs" / "joke-m-0.ogg", 30)
    _ogg(fillets / "level1" / "nl" / "level1-m-word0.ogg", 31)  # another package's language
    kajongg = tmp / "kajongg"
    _ogg(kajongg / "male1" / "b1.ogg", 40, rate_hz=44100)
    _ogg(kajongg / "de" / "female1" / "b1.ogg", 41, rate_hz=44100)
    tux = tmp / "ktuberling"
    tux.joinpath("en").mkdir(parents=True)
    sf.write(tux / "en" / "hat.wav", _speech(8000, SPEECH_S, 50), 8000)
    _ogg(tux / "sr" / "hat.ogg", 51)
    _ogg(tux / "sr@latin" / "hat.ogg", 52)
    return {
        "flight-of-the-amazon-queen": tmp / "queen",
        "fillets-ng-data-cs": fillets,
        "kajongg": kajongg,
        "ktuberling-data": tux,
    }


@pytest.fixture(scope="module")
def corpus(roots, tmp_path_factory) -> realspeech.Corpus:
    got = realspeech.ensure_corpus(
        realspeech.detect(roots), cache_dir=tmp_path_factory.mktemp("cache")
    )
    assert got is not None
    return got


def test_queen_table_and_speakers(roots):
    table = realspeech.read_queen_table(roots["flight-of-the-amazon-queen"] / "queen.1c")
    assert (table.version, table.compression) == ("CEM10", "mp3")
    names = [e.name for e in table.entries]
    assert names[: len(QUEEN_SPEECH)] == list(QUEEN_SPEECH)
    groups = [realspeech.queen_group(n) for n in (*QUEEN_SPEECH, *QUEEN_NOT_SPEECH)]
    assert groups == ["person-02", "joe", "joe", "cutscene-1", "person-03", None, None]


def test_queen_table_refusals(tmp_path):
    bad = tmp_path / "queen.1c"
    _write_queen(bad, {"020001P1.SB": b"x" * 10}, magic=b"XXXX")
    with pytest.raises(WakewardError, match=r"queen\.1c: not a rebuilt"):
        realspeech.read_queen_table(bad)
    _write_queen(bad, {"020001P1.SB": b"x" * 10})
    bad.write_bytes(bad.read_bytes()[:-5])  # the entry runs past the end
    with pytest.raises(WakewardError, match=r"queen\.1c: entry 020001P1\.SB .* past the end"):
        realspeech.read_queen_table(bad)


def test_corpus_decodes_trims_groups_and_drops(corpus):
    by_name = {(r["source"], r["name"]): r for r in corpus.records}
    queen = {n for s, n in by_name if s == "flight-of-the-amazon-queen"}
    assert queen == set(QUEEN_SPEECH)  # no sound effect, no silent or too short entry
    assert corpus.info["dropped"] == {"flight-of-the-amazon-queen": 2}
    fillets = {n for s, n in by_name if s == "fillets-ng-data-cs"}
    assert "share/jokes/cs/joke-m-0.ogg" in fillets and not any("/nl/" in n for n in fillets)
    groups = {r["group"] for r in corpus.records}
    assert {
        "fillets-ng-data-cs:small-fish",
        "fillets-ng-data-cs:big-fish",
        "fillets-ng-data-cs:level-level1",
        "kajongg:male1",
        "kajongg:de/female1",
        "ktuberling-data:sr",  # sr@latin is the same speaker
        "ktuberling-data:en",
    } <= groups
    assert "ktuberling-data:sr@latin" not in groups
    languages = {r["group"]: r["language"] for r in corpus.records}
    assert languages["kajongg:de/female1"] == "de" and languages["kajongg:male1"] == "en"
    for u in corpus.utterances():
        assert u.samples.dtype == np.int16
        # trimmed to the sound (MP3 and Vorbis smear its edges by a few ms)
        assert SPEECH_S - 0.05 <= u.seconds <= SPEECH_S + 0.1, u.record
    wav = next(u for u in corpus.utterances() if u.record["name"] == "en/hat.wav")
    spectrum = np.abs(np.fft.rfft(wav.samples.astype(np.float64)))
    peak_hz = np.argmax(spectrum) * RATE_HZ / len(wav.samples)
    assert abs(peak_hz - 150) < 5  # resampled 8 kHz -> 16 kHz at the right pitch


def test_corpus_cache_reused_and_rebuilt_when_broken(roots, tmp_path):
    inv = realspeech.detect(roots)
    said: list[str] = []
    first = realspeech.ensure_corpus(inv, cache_dir=tmp_path, progress=said.append)
    assert first is not None and any("decoding" in s for s in said)
    said.clear()
    again = realspeech.ensure_corpus(inv, cache_dir=tmp_path, progress=said.append)
    assert again is not None and said == [] and again.records == first.records
    index = first.path / realspeech.INDEX_FILE
    index.write_text("".join(index.read_text().splitlines(keepends=True)[:-1]))
    assert realspeech.open_corpus(first.path, inv.key()) is None
    rebuilt = realspeech.ensure_corpus(inv, cache_dir=tmp_path)
    assert rebuilt is not None and len(rebuilt.records) == len(first.records)
    assert not list(first.path.glob(".*.part"))


def test_splits_by_group_with_both_sides(corpus):
    sides = {}
    for r in corpus.records:
        assert sides.setdefault(r["group"], r["split"]) == r["split"]
        assert corpus.split_of(r["group"]) == r["split"]
    for source in {r["source"] for r in corpus.records}:
        groups = {r["group"] for r in corpus.records if r["source"] == source}
        if len(groups) >= 2:
            assert {sides[g] for g in groups} == {TRAIN, HELDOUT}, source
    assert len(realspeech.load(TRAIN, corpus)) + len(realspeech.load(HELDOUT, corpus)) == len(
        corpus.records
    )
    with pytest.raises(WakewardError, match="no real-speech group"):
        corpus.split_of("nobody")


def test_assign_splits_holds_out_about_a_third():
    groups = {f"speaker{i}": 1.0 + (i % 3) for i in range(60)}
    splits = realspeech.assign_splits(groups)
    held = sum(s for g, s in groups.items() if splits[g] == HELDOUT) / sum(groups.values())
    assert abs(held - realspeech.HELDOUT_SHARE) < 0.03
    assert realspeech.assign_splits(dict(reversed(groups.items()))) == splits
    assert sorted(realspeech.assign_splits({"a": 100.0, "b": 1.0}).values()) == [HELDOUT, TRAIN]
    assert realspeech.assign_splits({"alone": 5.0}) in ({"alone": TRAIN}, {"alone": HELDOUT})


def test_held_out_groups_are_parted_into_validation_and_test(corpus):
    held = {r["group"] for r in corpus.records if r["split"] == HELDOUT}
    assert set(corpus.parts) == held
    parts = {corpus.part_of(g) for g in held}
    assert parts == set(realspeech.HELDOUT_PARTS)
    both = corpus.utterances(HELDOUT, realspeech.VALIDATION) + corpus.utterances(
        HELDOUT, realspeech.TEST
    )
    assert sorted(u.record["offset"] for u in both) == sorted(
        u.record["offset"] for u in corpus.utterances(HELDOUT)
    )
    assert corpus.summary()["heldout_parts"][realspeech.VALIDATION] > 0
    with pytest.raises(WakewardError, match="only the heldout split has parts"):
        corpus.utterances(TRAIN, realspeech.TEST)
    with pytest.raises(WakewardError, match="no held-out real-speech group"):
        corpus.part_of(next(r["group"] for r in corpus.records if r["split"] == TRAIN))


def test_assign_parts_halves_the_held_out_groups_by_their_own_hash():
    groups = {f"speaker{i}": 1.0 + (i % 3) for i in range(60)}
    parts = realspeech.assign_parts(groups)
    valid = sum(s for g, s in groups.items() if parts[g] == realspeech.VALIDATION)
    assert abs(valid / sum(groups.values()) - realspeech.VALIDATION_SHARE) < 0.05
    # another salt than the split's: not simply the first half of the split's order
    splits = realspeech.assign_splits(groups, share=realspeech.VALIDATION_SHARE)
    assert [parts[g] == realspeech.VALIDATION for g in groups] != [
        splits[g] == HELDOUT for g in groups
    ]


def test_missing_sources_are_described(monkeypatch, tmp_path):
    none = realspeech.detect({})
    assert not none.usable and realspeech.ensure_corpus(none, cache_dir=tmp_path) is None
    text = " ".join(none.describe())
    assert "sudo apt-get install flight-of-the-amazon-queen fillets-ng-data-cs" in text
    monkeypatch.setenv(realspeech.DISABLE_ENV, "0")
    assert realspeech.detect().describe() == [f"real speech: left out ({realspeech.DISABLE_ENV}=0)"]
    assert realspeech.ensure_corpus(cache_dir=tmp_path) is None


def test_real_streams_use_every_held_out_test_utterance_once(corpus, tmp_path):
    data = SimpleNamespace(path=tmp_path, info={"summary": {"seed": 5}})
    said: list[str] = []
    got = streams.ensure_real(data, corpus=corpus, say=said.append)  # type: ignore[arg-type]
    assert got is not None and got.path.parent.name == streams.REAL_FOLDER
    held = [u.record for u in corpus.utterances(HELDOUT, realspeech.TEST)]
    assert 0 < len(held) < len([r for r in corpus.records if r["split"] == HELDOUT])
    assert got.info["utterances"] == len(held) == got.info["composition"]["utterances"]
    assert set(got.info["speakers"]) == {r["group"] for r in held}
    assert got.info["speakers"] and not set(got.info["speakers"]) & {
        r["group"] for r in corpus.records if r["split"] == TRAIN
    }
    (chunk,) = got.chunks
    seconds = got.info["chunks"][0]["seconds"]
    assert chunk.dtype == np.int8 and len(chunk) == int(seconds * RATE_HZ) // 160 - 2
    assert got.hours == pytest.approx(seconds / 3600, abs=1e-6)
    speech_s = sum(r["samples"] for r in held) / RATE_HZ
    assert speech_s < seconds < 3 * speech_s  # pauses between, not hours of filler
    assert got.lead_ins.shape[0] == streams.LEAD_INS
    assert json.loads((got.path / streams.DESCRIPTION).read_text())["phrase_check"]
    said.clear()
    again = streams.ensure_real(data, corpus=corpus, say=said.append)  # type: ignore[arg-type]
    assert again is not None and "reusing" in said[0]
    assert np.array_equal(np.asarray(again.chunks[0]), np.asarray(chunk))
    other = streams.build_real(corpus, None, 6, tmp_path / "other")
    assert not np.array_equal(np.asarray(other.chunks[0][:1000]), np.asarray(chunk[:1000]))


def test_validation_and_test_streams_have_no_speaker_in_common(corpus, tmp_path):
    data = SimpleNamespace(path=tmp_path, info={"summary": {"seed": 5}})
    test = streams.ensure_real(data, corpus=corpus)  # type: ignore[arg-type]
    valid = streams.ensure_real(data, corpus=corpus, part=realspeech.VALIDATION)  # type: ignore[arg-type]
    assert test is not None and valid is not None and test.path != valid.path
    assert (test.info["part"], valid.info["part"]) == (realspeech.TEST, realspeech.VALIDATION)
    assert set(test.info["speakers"]) == {
        g for g, part in corpus.parts.items() if part == realspeech.TEST
    }
    assert set(valid.info["speakers"]) and not set(valid.info["speakers"]) & set(
        test.info["speakers"]
    )
    with pytest.raises(WakewardError, match="real speech part 'train'"):
        streams.ensure_real(data, corpus=corpus, part="train")  # type: ignore[arg-type]


def test_validation_streams_are_the_recordings_composed_several_ways(corpus, tmp_path):
    data = SimpleNamespace(path=tmp_path, info={"summary": {"seed": 5}})
    once = streams.ensure_real(data, corpus=corpus, part=realspeech.VALIDATION, compositions=1)  # type: ignore[arg-type]
    said: list[str] = []
    valid = streams.ensure_real(data, corpus=corpus, part=realspeech.VALIDATION, say=said.append)  # type: ignore[arg-type]
    ways = streams.VALIDATION_COMPOSITIONS
    assert once is not None and valid is not None and once.path != valid.path
    assert valid.path.name.endswith(f"-validation-x{ways}")
    assert f"composed {ways} ways" in said[0] and f"composed {ways} ways" in said[-1]
    assert valid.info["compositions"] == ways and len(valid.chunks) == ways
    # the same recordings each pass: every utterance counted once, composed `ways` times
    assert valid.info["utterances"] == once.info["utterances"]
    assert valid.info["speakers"] == once.info["speakers"]
    assert valid.info["composition"]["utterances"] == ways * once.info["utterances"]
    assert valid.hours == pytest.approx(
        sum(c["seconds"] for c in valid.info["chunks"]) / 3600, abs=1e-6
    )
    assert ways * 0.8 * once.hours < valid.hours < ways * 1.2 * once.hours
    # pass 0 is the single composition; the others are composed anew
    assert np.array_equal(np.asarray(valid.chunks[0]), np.asarray(once.chunks[0]))
    firsts = {np.asarray(c[:2000]).tobytes() for c in valid.chunks}
    assert len(firsts) == ways
    said.clear()
    again = streams.ensure_real(data, corpus=corpus, part=realspeech.VALIDATION, say=said.append)  # type: ignore[arg-type]
    assert again is not None and "reusing" in said[0] and again.path == valid.path
    assert streams.default_compositions(realspeech.TEST) == 1
    for bad in (0, -1, True, 1.5):
        with pytest.raises(WakewardError, match="real-speech compositions"):
            streams.ensure_real(data, corpus=corpus, compositions=bad)  # type: ignore[arg-type]


def test_real_streams_none_without_sources(monkeypatch, tmp_path):
    nothing = realspeech.detect({})
    monkeypatch.setattr(streams.realspeech, "detect", lambda: nothing)
    said: list[str] = []
    data = SimpleNamespace(path=tmp_path, info={"summary": {"seed": 0}})
    assert streams.ensure_real(data, say=said.append) is None  # type: ignore[arg-type]
    assert "no real-speech FA/h" in said[0] and "apt-get install" in said[0]


def test_training_chunks_mix_in_real_speech(corpus, monkeypatch):
    monkeypatch.setattr(streams, "REAL_BLOCK_S", 10.0)
    tts = [scenes.Utterance(u.samples, "tts:a") for u in corpus.utterances(HELDOUT)]
    real = streams.RealPool(
        [scenes.Utterance(u.samples, f"real:{u.group}") for u in corpus.utterances(TRAIN)],
        [u.record for u in corpus.utterances(TRAIN)],
        corpus.key,
    )
    comp = scenes.Composition()
    seconds = 8 * streams.REAL_BLOCK_S
    audio = list(
        streams._chunk_scenes(
            seconds, np.random.default_rng(1), tts, comp, real, np.random.default_rng(2)
        )
    )
    assert sum(len(a) for a in audio) == int(seconds * RATE_HZ)
    real_s = sum(real.composition.seconds.values())
    assert 0 < real_s < seconds and real_s + sum(comp.seconds.values()) == pytest.approx(seconds)
    described = real.to_json()
    assert described["corpus"] == corpus.key and described["share"] == streams.REAL_SPEECH_SHARE


@pytest.mark.slow
def test_installed_packages(tmp_path):
    inv = realspeech.detect()
    if not inv.usable:
        pytest.skip("; ".join(inv.describe()))
    got = realspeech.open_corpus(_USER_CACHE / inv.key(), inv.key())
    got = got or realspeech.ensure_corpus(inv, cache_dir=tmp_path)
    assert got is not None
    packages = {s.package for s in inv.sources}
    minimum_h = 3.0 if realspeech.QUEEN in packages else 0.3
    assert got.hours() > minimum_h
    train = {r["group"] for r in got.records if r["split"] == TRAIN}
    held = {r["group"] for r in got.records if r["split"] == HELDOUT}
    assert train and held and not train & held
    share = got.hours(HELDOUT) / got.hours()
    assert 0.2 < share < 0.5
    assert {r["source"] for r in got.records} == packages
