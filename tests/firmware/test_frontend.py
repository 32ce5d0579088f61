"""firmware/frontend.py (viper) against pymicro-features 2.0.2, value for value.

- Checked 32-bit mode (tests/int32check.py): every stage kernel on extreme synthetic
  inputs against the numpy blueprint `IntegerFrontend` (tests/host/test_frontend_tables.py),
  and the whole frontend on varied audio against pymicro-features, with every viper
  intermediate checked to fit the ESP32-S3's int32.
- The unix port under the ESP32-S3 heap (128,000 bytes): 60 s and 10 min of varied audio
  (espeak-ng speech, silence, DC, clipping, noise, tones, chirps, very quiet input) fed in
  chunks of random sizes, 1 sample to 3 s; every uint16 feature and every int8 model input
  of every frame must equal pymicro-features' (and ESPHome's int8 conversion of it).
- No allocation per frame: frames under micropython.heap_lock().
"""

from __future__ import annotations

import numpy as np
import pytest
from wakeward import tts

from tests import int32check
from tests.conftest import FIRMWARE, require_tools
from tests.host.test_frontend_tables import (
    _LAYOUT,
    IntegerFrontend,
    esphome_int8,
    load_module,
    reference_features,
    sqrt64,
)

RATE = 16000
M64 = (1 << 64) - 1
MAX_CHUNK = 3 * RATE  # samples: the unix-port reader's buffer is 96,000 bytes


# ------------------------------------------------------------------ fixtures ----
@pytest.fixture(scope="module")
def fe():
    return int32check.load(FIRMWARE / "frontend.py")


@pytest.fixture(scope="module")
def blueprint() -> IntegerFrontend:
    mod = load_module()
    tables = {n: np.frombuffer(mod[n], fmt).astype(np.int64) for n, fmt in _LAYOUT.items()}
    return IntegerFrontend(mod, tables)


PHRASES = [
    ("okay nabu, turn on the kitchen lights", "en-us", 150),
    ("hey jarvis what is the weather like tomorrow morning", "en-gb", 190),
    ("alexa, play some music in the living room", "en-us", 120),
    ("seven, eight, nine. stop the timer please", "en-gb-scotland", 220),
    ("the quick brown fox jumps over the lazy dog", "en-029", 170),
    ("wake word detection on a tiny microcontroller", "en-gb-x-rp", 140),
]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list[np.ndarray]:
    require_tools("espeak-ng", "sox")
    out = tmp_path_factory.mktemp("speech")
    return [
        tts.espeak(text, out / f"p{i}.wav", voice=voice, rate_wpm=rate).astype(np.float64)
        for i, (text, voice, rate) in enumerate(PHRASES)
    ]


# ---------------------------------------------------------------- the audio ----
def _int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.normal(0, 1, n))
    f = np.arange(len(spec))
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return x / (np.abs(x).max() + 1e-12)


def _segment(kind: str, rng: np.random.Generator, speech: list[np.ndarray]) -> np.ndarray:
    n = int(rng.uniform(0.3, 2.5) * RATE)
    t = np.arange(n) / RATE
    level = 10 ** rng.uniform(0, 4.4)
    if kind.startswith("speech"):
        s = speech[int(rng.integers(len(speech)))]
        s = s * rng.uniform(0.3, 3.0)
        if kind == "speech_dc":
            s = s + rng.choice([-1, 1]) * rng.uniform(500, 20000)
        elif kind == "speech_clipped":
            s = s * rng.uniform(10, 100)
        elif kind == "speech_quiet":
            s = s * rng.uniform(0.0002, 0.005)
        elif kind == "speech_noise":
            s = s + rng.normal(0, 10 ** rng.uniform(1, 3.5), len(s))
        return _int16(s)
    if kind == "silence":
        return np.zeros(n, np.int16)
    if kind == "white":
        return _int16(rng.normal(0, level, n))
    if kind == "pink":
        return _int16(_pink(rng, n) * min(level * 4, 32767))
    if kind == "tone":
        f0 = rng.uniform(40, 7990)
        return _int16(min(level * 2, 32767) * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6)))
    if kind == "chirp":  # full scale, up or down over the whole band
        f0, f1 = rng.permutation([rng.uniform(20, 300), rng.uniform(6000, 8000)])
        k = (f1 - f0) / (2 * t[-1])
        return _int16(32767.4 * np.sin(2 * np.pi * (f0 * t + k * t * t)))
    if kind == "square":  # full-scale random square wave
        return rng.choice(np.array([-32768, 32767], np.int16), n)
    if kind == "nyquist":
        x = np.full(n, 32767, np.int16)
        x[1::2] = -32768
        return x
    if kind == "dc":  # constant, full scale or tiny
        return np.full(n, rng.choice([-32768, 32767, -1, 1, 3000]), np.int16)
    if kind == "clicks":
        x = np.zeros(n, np.int16)
        x[rng.integers(0, n, 12)] = rng.choice(np.array([-32768, 32767], np.int16), 12)
        return x
    if kind == "lsb":  # very quiet: -1, 0, 1
        return rng.integers(-1, 2, n).astype(np.int16)
    raise AssertionError(kind)


SYNTHETIC = ["silence", "white", "pink", "tone", "chirp", "square", "nyquist", "dc"]
SYNTHETIC += ["clicks", "lsb"]
SPEECH = ["speech", "speech_dc", "speech_clipped", "speech_quiet", "speech_noise"]


def varied_audio(seconds: float, seed: int, speech: list[np.ndarray] | None) -> np.ndarray:
    """Segments of every kind, in random order and at random levels, `seconds` long."""
    rng = np.random.default_rng(seed)
    kinds = SYNTHETIC + (SPEECH * 2 if speech else [])
    parts: list[np.ndarray] = []
    total = int(seconds * RATE)
    while sum(len(p) for p in parts) < total:
        for kind in rng.permutation(kinds):
            parts.append(_segment(str(kind), rng, speech or []))
    return np.concatenate(parts)[:total]


def chunk_sizes(n: int, seed: int) -> np.ndarray:
    """Chunk lengths summing to n: log-uniform from 1 sample to 3 s, plus exact steps."""
    rng = np.random.default_rng(seed)
    sizes = []
    left = n
    while left > 0:
        pick = rng.random()
        if pick < 0.1:
            k = int(rng.choice([1, 2, 159, 160, 161, 320, 479, 480, 481]))
        else:
            k = int(np.exp(rng.uniform(0, np.log(MAX_CHUNK)))) + 1
        k = min(k, left, MAX_CHUNK)
        sizes.append(k)
        left -= k
    return np.array(sizes, dtype=np.int64)


def feed_checked(front, audio: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drive a (checked-mode) Frontend chunk by chunk; frames as uint16 and int8 rows."""
    data = audio.astype("<i2").tobytes()
    rows, rows8 = [], []
    at = 0
    for k in sizes:
        end = at + int(k)
        while at < end:
            at += front.feed(data, at, end - at)
            if front.ready:
                rows.append(list(front.frame))
                rows8.append(list(front.frame_int8))
    return np.array(rows, np.int64).reshape(-1, 40), np.array(rows8, np.int64).reshape(-1, 40)


def assert_frames_equal(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: {got.shape} frames, reference {want.shape}"
    bad = np.argwhere(got != want)
    assert len(bad) == 0, (
        f"{what}: {len(bad)} values differ, first (frame, channel) {bad[:5].tolist()}: "
        f"got {got[tuple(bad[0])]} want {want[tuple(bad[0])]}"
    )


# ------------------------------------------------ checked 32-bit: the stages ----
def _unbias(buf: bytearray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The FFT buffer's first n complex values (stored as int16 + 0x8000)."""
    v = np.frombuffer(bytes(buf), "<u2")[: 2 * n].astype(np.int64) - 0x8000
    return v[0::2], v[1::2]


def _fft_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(21)
    frames = [
        rng.integers(-32768, 32768, 480),
        np.full(480, -32768),
        np.full(480, 32767),
        np.tile([32767, -32768], 240),
        np.tile([-32768, -32768, 32767, 32767], 120),
        rng.choice([-32768, 32767], 480),
        rng.integers(-3, 4, 480),
        np.zeros(480, np.int64),
        (20000 * np.sin(np.arange(480) * 0.7)).astype(np.int64),
    ]
    return frames + [rng.integers(-(1 << b), 1 << b, 480) for b in range(0, 15, 2)]


def test_checked_fft_equals_the_blueprint(fe, blueprint):
    """Input shift (wrapping), 4 radix-4 stages and the real split on extreme inputs."""
    xin = bytearray(1024)
    buf = bytearray(4 * 257)
    for i, frame in enumerate(_fft_inputs()):
        w = np.asarray(frame, np.int64)
        xin[:960] = w.astype("<i2").tobytes()
        for shift in (0, 1, 3, 8, 15) if i < 9 else (0, 15 - i // 2):
            fe._fft_first(xin, buf, shift)
            fe._fft_stage(buf, fe.FFT_TWIDDLES, 4, 16)
            fe._fft_stage(buf, fe.FFT_TWIDDLES, 16, 4)
            fe._fft_stage(buf, fe.FFT_TWIDDLES, 64, 1)
            fe._fft_split(buf, fe.FFT_SUPER_TWIDDLES)
            want_r, want_i = blueprint.fft(w[None, :], np.array([shift]))
            got_r, got_i = _unbias(buf, 257)
            np.testing.assert_array_equal(got_r, want_r[0])
            np.testing.assert_array_equal(got_i, want_i[0])


def test_checked_window_equals_the_blueprint(fe, blueprint):
    rng = np.random.default_rng(22)
    frames = [np.full(480, -32768), np.full(480, 32767), np.zeros(480, np.int64)]
    frames += [np.where(np.arange(480) == 240, -32768, 0)]  # only a -32768 output
    frames += [np.where(np.arange(480) == 239, -32768, rng.integers(-30000, 90, 480))]
    frames += [rng.integers(-(1 << b), 1 << b, 480) for b in range(16)]
    for frame in frames:
        pcm = bytearray(964)
        pcm[4:] = np.asarray(frame).astype("<i2").tobytes()
        pcm[0:2] = (480).to_bytes(2, "little")
        xin = bytearray(1024)
        shift = fe._window(pcm, fe.WINDOW, xin, pcm)
        w, want_shift = blueprint.window(np.asarray(frame, np.int64)[None, :])
        assert shift == want_shift[0]
        assert np.frombuffer(bytes(xin[:960]), "<i2").tolist() == w[0].tolist()
        # the last 320 samples move down for the next window
        assert bytes(pcm[4:644]) == np.asarray(frame[160:]).astype("<i2").tobytes()
        assert pcm[0] | pcm[1] << 8 == 320


def _pack_spectrum(re: np.ndarray, im: np.ndarray) -> bytearray:
    v = np.empty(514, np.int64)
    v[0::2], v[1::2] = re, im
    return bytearray(((v + 0x8000) & 0xFFFF).astype("<u2").tobytes())


def _unpack_sums(acc: bytearray) -> list[int]:
    """The kernel's band sums (lo, then the int32 above it in two halves) as uint64."""
    h = np.frombuffer(bytes(acc), "<u2").astype(np.int64).reshape(40, 3)
    top = np.where(h[:, 2] >= 0x8000, h[:, 2] - 0x10000, h[:, 2])
    return [((int(top[c]) << 32) + (int(h[c, 1]) << 16) + int(h[c, 0])) & M64 for c in range(40)]


def test_checked_filterbank_equals_the_blueprint(fe, blueprint):
    """Energies up to 2^31 (wrapping to -2^31 and sign-extended) into uint64 band sums."""
    rng = np.random.default_rng(23)
    cases = [
        (np.full(257, -32768), np.full(257, -32768)),  # every energy wraps
        (np.full(257, -32768), np.full(257, 32767)),  # the largest energy that does not
        (np.full(257, 32767), np.full(257, -32768)),
        (np.zeros(257, np.int64), np.zeros(257, np.int64)),
    ]
    for trial in range(40):
        bits = 1 + trial % 16
        spec = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (257, 2))
        if trial % 3 == 0:
            spec[rng.integers(0, 257, 30)] = -32768
        cases.append((spec[:, 0], spec[:, 1]))
    acc = bytearray(240)
    for re, im in cases:
        fe._filterbank(_pack_spectrum(re, im), fe.FB_WEIGHTS, acc)
        want = blueprint.filterbank(np.asarray(re)[None, :], np.asarray(im)[None, :])[0]
        assert _unpack_sums(acc) == [int(v) for v in want]


def _pack_sums(values: list[int]) -> bytearray:
    """uint64 sums as the kernel stores them (signed A with A mod 2^64 = value)."""
    out = bytearray()
    for v in values:
        a = v - (1 << 64) if v >= 1 << 63 else v
        hi = a >> 16
        out += (a & 0xFFFF).to_bytes(2, "little") + (hi & 0xFFFFFFFF).to_bytes(4, "little")
    return out


def test_checked_sqrt_equals_sqrt64(fe):
    """Sqrt64 >> shift over everything a band sum can be, wrapped sums included."""
    rng = np.random.default_rng(24)
    most = 56900 << 31  # the largest |sum|: band weights sum to <= 56900, |energy| <= 2^31
    edge = [0, 1, 2, 3, 4, 0xFFFE0001, 0xFFFE0000, 0xFFFF0000, 2**32 - 1, 2**32, 2**32 + 1]
    edge += [most, (1 << 64) - most, (1 << 64) - 1, (1 << 64) - 2, (1 << 64) - 2**31]
    edge += [(1 << 64) - (2**33 - 1), (1 << 64) - 2**33, (1 << 64) - (2**33 + 1)]
    edge += [(1 << 64) - ((2**32 - t) ** 2) for t in range(1, 5)]
    edge += [(1 << 64) - ((2**32 - t) ** 2) - 2**32 + t for t in (1, 2, 3)]
    edge += [(2**32 - t) ** 2 + d for t in (2, 3) for d in (-1, 0, 1)]
    values = list(edge)
    values += [int(v) for v in rng.integers(1, most, 300, dtype=np.int64)]
    values += [
        int(v) >> int(s)
        for v, s in zip(rng.integers(1, most, 400), rng.integers(0, 47, 400), strict=True)
    ]
    values += [(1 << 64) - int(v) for v in rng.integers(1, most, 300, dtype=np.int64)]
    values += [
        (1 << 64) - (int(v) >> int(s))
        for v, s in zip(rng.integers(1, most, 200), rng.integers(0, 47, 200), strict=True)
    ]
    values += [
        (int(r) ** 2 + int(d)) & M64
        for r, d in zip(rng.integers(0, 11_000_000, 200), rng.integers(-2, 3, 200), strict=True)
    ]
    values += [0] * (-len(values) % 40)
    sig = bytearray(160)
    for at in range(0, len(values), 40):
        chunk = values[at : at + 40]
        acc = _pack_sums(chunk)
        for shift in (0, 1, 5, 15):
            fe._sqrt(acc, sig, shift)
            got = np.frombuffer(bytes(sig), "<u4").tolist()
            assert got == [sqrt64(v) >> shift for v in chunk], (at, shift)


def test_checked_noise_reduction_pcan_log_equal_the_blueprint(fe, blueprint):
    """Noise reduction, PCAN and log from random uint32 states and signals, then int8."""
    rng = np.random.default_rng(25)
    est = bytearray(160)
    sig = bytearray(160)
    frame = bytearray(80)
    frame8 = bytearray(40)
    for trial in range(300):
        bits_e, bits_s = trial % 33, (trial * 7) % 33
        estimate = rng.integers(0, 2**32, 40, dtype=np.uint64) >> np.uint64(32 - bits_e)
        signal = rng.integers(0, 2**32, 40, dtype=np.uint64) >> np.uint64(32 - bits_s)
        if trial % 11 == 0:
            signal[::3] = 2**32 - 1
            estimate[1::3] = 2**32 - 1
        est[:] = estimate.astype("<u4").tobytes()
        sig[:] = signal.astype("<u4").tobytes()
        fe._finish(sig, est, frame, frame8)
        blueprint.estimate = estimate.astype(np.int64)
        s = blueprint.pcan(blueprint.noise_reduction(signal.astype(np.int64)))
        want = blueprint.log_scale(s)
        assert np.frombuffer(bytes(est), "<u4").tolist() == blueprint.estimate.tolist()
        assert np.frombuffer(bytes(frame), "<u2").tolist() == want.tolist()
        assert np.frombuffer(bytes(frame8), "i1").tolist() == esphome_int8(want).tolist()


def test_int8_input_without_a_divide_equals_esphomes(fe):
    """_finish's multiply-and-shift for ESPHome's (y * 256 + 333) // 666, every y it takes."""
    for y in range(fe._I8_TOP):
        got = (y * fe._I8_MUL + fe._I8_ROUND) >> fe._I8_SHIFT
        assert got == (y * 256 + 333) // 666, y
    assert (fe._I8_TOP * 256 + 333) // 666 - 128 == 128  # from there on: clamped to 127


# ------------------------------------------- checked 32-bit: whole frontend ----
def test_checked_frontend_matches_pymicro_features(fe):
    """The whole frontend in checked 32-bit mode on extreme and varied audio."""
    audio = varied_audio(2.5, seed=31, speech=None)
    want = reference_features(audio)
    got, got8 = feed_checked(fe.Frontend(), audio, chunk_sizes(len(audio), seed=32))
    assert_frames_equal(got, want, "uint16 features")
    assert_frames_equal(got8, esphome_int8(want), "int8 features")
    assert want.max() > 600 and want.min() == 0


def test_checked_frontend_state_carries_and_resets(fe):
    audio = varied_audio(0.4, seed=33, speech=None)
    want = reference_features(audio)
    front = fe.Frontend()
    got, _ = feed_checked(front, audio, np.array([len(audio)]))
    assert_frames_equal(got, want, "one call")
    front.reset()
    got, _ = feed_checked(front, audio, np.ones(len(audio), np.int64))
    assert_frames_equal(got, want, "sample by sample after reset")
    front.reset()
    data = audio.astype("<i2").tobytes()
    at, rows = 0, []
    while at < len(audio):
        at += front.feed(data, at)  # n defaults to the rest of the buffer
        if front.ready:
            rows.append(list(front.frame))
    assert_frames_equal(np.array(rows), want, "default n")
    assert front.frames == len(want)
    assert front.feed(b"", 0, 0) == 0 and not front.ready
    with pytest.raises(ValueError):
        front.feed(b"\x00\x00", 0, 2)


# ---------------------------------------------------------- the unix port ----
FEED_SCRIPT = """
import frontend
fe = frontend.Frontend()
buf = bytearray({max_bytes})
mv = memoryview(buf)
src = open('audio.raw', 'rb')
sizes = open('sizes.raw', 'rb')
out = open('frames.bin', 'wb')
word = bytearray(4)
while sizes.readinto(word) == 4:
    k = word[0] | word[1] << 8 | word[2] << 16 | word[3] << 24
    got = src.readinto(mv[: 2 * k]) // 2
    assert got == k
    at = 0
    while at < k:
        at += fe.feed(buf, at, k - at)
        if fe.ready:
            out.write(fe.frame)
            out.write(fe.frame_int8)
out.close()
print('frames', fe.frames)
"""


def run_on_unix_port(mp, audio: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    (mp.cwd / "audio.raw").write_bytes(audio.astype("<i2").tobytes())
    (mp.cwd / "sizes.raw").write_bytes(sizes.astype("<u4").tobytes())
    out = mp.output(FEED_SCRIPT.format(max_bytes=2 * MAX_CHUNK), timeout_s=300)
    raw = (mp.cwd / "frames.bin").read_bytes()
    frames = len(raw) // 120
    assert out.split() == ["frames", str(frames)]
    rec = np.frombuffer(raw, np.dtype([("u16", "<u2", 40), ("i8", "i1", 40)]))
    return rec["u16"].astype(np.int64), rec["i8"].astype(np.int64)


@pytest.mark.parametrize(
    "seconds",
    [60, pytest.param(600, marks=pytest.mark.slow)],
    ids=["60s", "10min"],
)
def test_unix_port_matches_pymicro_features(mp, speech, seconds):
    """Varied audio with speech, in chunks of 1 sample to 3 s, under the ESP32-S3 heap."""
    audio = varied_audio(seconds, seed=seconds, speech=speech)
    sizes = chunk_sizes(len(audio), seed=seconds + 1)
    assert sizes.min() == 1 and sizes.max() >= 2 * RATE
    want = reference_features(audio)
    got, got8 = run_on_unix_port(mp, audio, sizes)
    assert_frames_equal(got, want, "uint16 features")
    assert_frames_equal(got8, esphome_int8(want), "int8 features")
    assert len(want) == len(audio) // 160 - 2
    assert want.max() > 600 and want.min() == 0


HEAP_LOCK_SCRIPT = """
import gc, micropython
import frontend
fe = frontend.Frontend()


@micropython.viper
def put(out, o: int, frame, frame8):
    d = ptr8(out)
    s = ptr8(frame)
    s8 = ptr8(frame8)
    for i in range(80):
        d[o + i] = s[i]
    for i in range(40):
        d[o + 80 + i] = s8[i]


data = open('audio.raw', 'rb').read()
sizes = [1, 7, 160, 333, 480, 1000, 4801]
out = bytearray(120 * {frames})
def run(fe, data, sizes, out, f):
    at = 0
    n = len(data) // 2
    i = 0
    while at < n:
        k = sizes[i % 7]
        if k > n - at:
            k = n - at
        end = at + k
        while at < end:
            at += fe.feed(data, at, end - at)
            if fe.ready:
                put(out, 120 * f, fe.frame, fe.frame_int8)
                f += 1
        i += 1
    return f
warm = bytes(2 * 800)
run(fe, warm, sizes, bytearray(120 * 3), 0)
fe.reset()
def locked(fe, data, sizes, out):
    micropython.heap_lock()
    f = 0
    for _ in range({passes}):
        f = run(fe, data, sizes, out, f)
    micropython.heap_unlock()
    return f
gc.collect()
f = locked(fe, data, sizes, out)
open('frames.bin', 'wb').write(out)
print('frames', f)
"""


def test_no_allocation_per_frame(mp):
    """After warm-up the frontend runs frame after frame with the heap locked."""
    audio = varied_audio(1, seed=41, speech=None)  # fed 4 times over: 396 frames
    want = reference_features(np.tile(audio, 4))
    (mp.cwd / "audio.raw").write_bytes(audio.astype("<i2").tobytes())
    out = mp.output(HEAP_LOCK_SCRIPT.format(frames=len(want), passes=4))
    assert out.split() == ["frames", str(len(want))]
    rec = np.frombuffer(
        (mp.cwd / "frames.bin").read_bytes(), np.dtype([("u16", "<u2", 40), ("i8", "i1", 40)])
    )
    assert_frames_equal(rec["u16"].astype(np.int64), want, "uint16 under heap_lock")
    assert_frames_equal(rec["i8"].astype(np.int64), esphome_int8(want), "int8 under heap_lock")


def test_frontend_heap_use(mp):
    """What the module and one Frontend take on the heap (buffers are a few KB)."""
    out = mp.output(
        "import gc\n"
        "gc.collect()\n"
        "a = gc.mem_free()\n"
        "import frontend\n"
        "gc.collect()\n"
        "b = gc.mem_free()\n"
        "fe = frontend.Frontend()\n"
        "gc.collect()\n"
        "c = gc.mem_free()\n"
        "print(a - b, b - c)\n"
    )
    module, instance = map(int, out.split())
    assert instance < 6000, instance
    assert module < 20000, module
