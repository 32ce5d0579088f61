"""Offline TTS: detection says what is there, and each engine speaks 16 kHz int16, the same
bytes every time, faster and higher when asked."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest
from wakeward.errors import WakewardError
from wakeward_train import voices
from wakeward_train.voices import Prosody, SpeechRequest, Voice

from tests.conftest import require_tools


def f0_hz(x: np.ndarray, rate: int = 16000) -> float:
    """Median autocorrelation pitch of the voiced 40 ms frames."""
    x = x.astype(float)
    size, hop = int(0.04 * rate), int(0.01 * rate)
    found = []
    for s in range(0, len(x) - size, hop):
        seg = x[s : s + size] - x[s : s + size].mean()
        if np.sqrt(np.mean(seg**2)) < 500:
            continue
        ac = np.correlate(seg, seg, "full")[size - 1 :]
        lo, hi = rate // 400, rate // 60
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.4 * ac[0]:
            found.append(rate / k)
    return float(np.median(found))


@pytest.fixture(scope="module")
def inventory() -> voices.Inventory:
    require_tools("espeak-ng")
    return voices.detect()


def test_detect_lists_espeak_accents_and_variants(inventory):
    es = inventory.by_engine("espeak-ng")
    names = {v.name for v in es}
    assert {"en-us", "en-gb", "en-us+f3", "en-gb+m7"} <= names
    assert "en-us+whisper" not in names  # not a normal speaking voice
    assert len({v.id for v in inventory.voices}) == len(inventory.voices)
    # one speaker per variant, across all accents
    assert {v.speaker for v in es if v.name.endswith("+f3")} == {"espeak:f3"}
    lines = inventory.describe()
    assert lines[0].startswith("espeak-ng: ") and "English accents" in lines[0]
    assert [ln.split(":")[0] for ln in lines] == list(voices.ENGINES)


def test_one_person_is_one_speaker_across_engines(inventory):
    if not (inventory.by_engine("flite") and inventory.by_engine("festival")):
        pytest.skip("needs flite and festival (Debian flite festival festvox-kallpc16k)")
    speakers = {v.id: v.speaker for v in inventory.voices}
    assert speakers["flite:kal"] == speakers["flite:kal16"] == speakers["festival:kal_diphone"]
    assert speakers["flite:slt"] == speakers["festival:cmu_us_slt_arctic_hts"]
    assert speakers["flite:awb"] != speakers["flite:slt"]


def test_missing_mbrola_is_explained(inventory):
    if shutil.which("mbrola"):
        pytest.skip("mbrola is installed here")
    assert not inventory.by_engine("mbrola")
    assert "mbrola-us1" in inventory.engines["mbrola"]


def test_espeak_speaks_16k_int16_the_same_every_time(inventory):
    v = Voice("espeak-ng", "en-us+f3", "espeak:f3")
    a = voices.synthesize(v, "hey jarvis")
    b = voices.synthesize(v, "hey jarvis")
    assert a.dtype == np.int16 and a.ndim == 1
    assert 0.5 < len(a) / 16000 < 2.5
    assert np.array_equal(a, b)


def test_rate_and_pitch_change_the_speech(inventory):
    v = Voice("espeak-ng", "en-us", "espeak:default")
    slow = voices.synthesize(v, "hey jarvis", Prosody(speed=0.75))
    fast = voices.synthesize(v, "hey jarvis", Prosody(speed=1.5))
    assert len(fast) < 0.75 * len(slow)
    low = voices.synthesize(v, "hello there", Prosody(pitch=0.7))
    high = voices.synthesize(v, "hello there", Prosody(pitch=1.4))
    assert f0_hz(high) > 1.2 * f0_hz(low)


@pytest.mark.parametrize("engine", ["flite", "festival"])
def test_other_engines_speak_when_installed(inventory, engine):
    vs = inventory.by_engine(engine)
    if not vs:
        pytest.skip(f"{engine} is not installed ({inventory.engines[engine]})")
    reqs = [SpeechRequest(v, "hey jarvis", Prosody(speed=1.1, pitch=1.2)) for v in vs]
    batch = voices.synthesize_many(reqs)  # festival: one process for all of a voice's lines
    for v, a in zip(vs, batch, strict=True):
        assert a.dtype == np.int16 and 0.4 < len(a) / 16000 < 3, v.id
        one = voices.synthesize(v, "hey jarvis", Prosody(speed=1.1, pitch=1.2))
        assert np.array_equal(a, one), v.id  # batched or not, the same bytes


def test_flite_pitch_is_honoured_where_the_voice_allows(inventory):
    if not inventory.by_engine("flite"):
        pytest.skip("flite is not installed")
    v = next(v for v in inventory.by_engine("flite") if v.name == "slt")
    assert v.pitch_control
    low = voices.synthesize(v, "hello there", Prosody(pitch=0.7))
    high = voices.synthesize(v, "hello there", Prosody(pitch=1.3))
    assert f0_hz(high) > 1.3 * f0_hz(low)


def test_nothing_to_say_is_refused_by_name(inventory):
    v = Voice("espeak-ng", "en-us", "espeak:default")
    with pytest.raises(WakewardError, match=r"nothing to say in '\?!'"):
        voices.synthesize(v, "?!")
    results = voices.speak_all([SpeechRequest(v, "..."), SpeechRequest(v, "hello")])
    assert isinstance(results[0], WakewardError) and isinstance(results[1], np.ndarray)


def test_parallel_speech_is_the_same_speech_in_the_same_order(inventory):
    """jobs only changes how many TTS processes run at once: every slot holds the speech of
    its own request (or its error), whatever finishes first."""
    pool = inventory.by_engine("espeak-ng")[:3] + inventory.by_engine("festival")[:1]
    texts = ["hello", "hey jarvis, lights on", "?!", "the kitchen at noon", "yes"]
    reqs = [SpeechRequest(v, t) for v in pool for t in texts]
    one_by_one = voices.speak_all(reqs, jobs=1)
    at_once = voices.speak_all(reqs, jobs=4)
    for req, a, b in zip(reqs, one_by_one, at_once, strict=True):
        if req.text == "?!":
            assert isinstance(a, WakewardError) and isinstance(b, WakewardError)
            assert str(a) == str(b) and "nothing to say" in str(a)
        else:
            assert isinstance(a, np.ndarray) and np.array_equal(a, b), req
    lengths = [len(a) for a in at_once if isinstance(a, np.ndarray)]
    assert len(set(lengths)) > len(pool)  # the texts differ, so the order is checked


def test_speak_all_runs_up_to_jobs_processes_at_once(monkeypatch):
    running, most = [0], [0]
    lock = threading.Lock()

    def slow(req, out):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return np.zeros(10, np.int16)

    monkeypatch.setattr(voices, "_speak_one", slow)
    reqs = [SpeechRequest(Voice("espeak-ng", "en-us", "espeak:x"), "hi")] * 8
    for jobs, expected in [(1, 1), (3, 3)]:
        most[0] = 0
        assert len(voices.speak_all(reqs, jobs=jobs)) == 8
        assert most[0] == expected


def test_an_unknown_voice_names_itself(inventory):
    v = Voice("espeak-ng", "xx-nosuch", "espeak:x")
    with pytest.raises(WakewardError, match="espeak-ng:xx-nosuch saying 'hello'"):
        voices.synthesize(v, "hello")


def test_detect_refuses_an_unknown_engine():
    with pytest.raises(WakewardError, match="unknown TTS engine"):
        voices.detect(engines=["sam"])
