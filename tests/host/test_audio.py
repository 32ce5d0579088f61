"""The host tools' WAV reader (wakeward.audio.read_wav: features, sim, try, tts and the
trainer's clips): it takes what the firmware's reader (firmware/wavfile.py) takes, the same
samples, and refuses the rest with `FILE: what is wrong`, never a traceback; a fuzz run
holds it to that, against the firmware's reader, over seeded mutations."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from wakeward import cli
from wakeward.audio import RATE_HZ, read_wav
from wakeward.errors import WakewardError

from tests import fuzzing
from tests.conftest import write_any_wav, write_test_wav

PCM = 1
EXTENSIBLE = 0xFFFE
FLOAT = 3
# KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT: the format tag, then a fixed GUID tail
GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def fmt_chunk(tag: int = PCM, *, channels: int = 1, rate: int = RATE_HZ, bits: int = 16,
              sub: int = PCM) -> bytes:  # fmt: skip
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if tag == EXTENSIBLE:  # cbSize 22: valid bits, channel mask, sub-format GUID
        fmt += struct.pack("<HHI", 22, bits, 4) + struct.pack("<H", sub) + GUID_TAIL
    return b"fmt " + struct.pack("<I", len(fmt)) + fmt


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def data_chunk(pcm: bytes, size: int | None = None) -> bytes:
    return b"data" + struct.pack("<I", len(pcm) if size is None else size) + pcm


SAMPLES = np.array([0, 1, -1, 32767, -32768, 1234, -4321], np.int16)
PCM_BYTES = SAMPLES.astype("<i2").tobytes()


def test_wave_format_extensible_16_bit_mono_pcm_is_read_like_plain_pcm(tmp_path):
    ext = tmp_path / "ext.wav"
    ext.write_bytes(riff(fmt_chunk(EXTENSIBLE), data_chunk(PCM_BYTES)))
    np.testing.assert_array_equal(read_wav(ext), SAMPLES)
    flt = tmp_path / "float.wav"
    flt.write_bytes(riff(fmt_chunk(EXTENSIBLE, bits=32, sub=FLOAT), data_chunk(b"\0" * 8)))
    with pytest.raises(WakewardError, match=r"float.wav: not a readable PCM WAV file \(format "):
        read_wav(flt)


@pytest.mark.parametrize(
    ("body", "samples"),
    [
        # the data ends at an odd byte: the half sample is dropped (as on the device)
        (data_chunk(PCM_BYTES[:5], size=1000), 2),
        (data_chunk(PCM_BYTES[:5]) + b"\0", 2),  # an odd data size, padded
        # sizes near and above 2**31: the samples that are there
        (data_chunk(PCM_BYTES, size=2**31 - 1), 7),
        (data_chunk(PCM_BYTES, size=2**31 + 1), 7),
        (data_chunk(PCM_BYTES, size=2**32 - 1), 7),
    ],
)
def test_data_that_ends_early_or_at_an_odd_byte_gives_the_whole_samples(tmp_path, body, samples):
    path = tmp_path / "cut.wav"
    path.write_bytes(riff(fmt_chunk(), body))
    np.testing.assert_array_equal(read_wav(path), SAMPLES[:samples])


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ((fmt_chunk(), b"LIST" + struct.pack("<I", 2**31 - 2), data_chunk(PCM_BYTES)),
         "no 'data' chunk in the first 1 MiB"),
        ((fmt_chunk(), b"LIST" + struct.pack("<I", 2**32 - 1)), "no 'data' chunk in the first"),
        ((b"fmt " + struct.pack("<I", 2**31), data_chunk(PCM_BYTES)),
         "bad 'fmt ' chunk size 2147483648"),
        ((data_chunk(PCM_BYTES),), "'data' chunk before 'fmt ' chunk"),
        ((fmt_chunk()[:20],), "truncated 'fmt ' chunk"),
        ((fmt_chunk(),), "no 'data' chunk"),
    ],
)  # fmt: skip
def test_damaged_headers_are_named_not_a_traceback(tmp_path, chunks, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(riff(*chunks))
    with pytest.raises(WakewardError) as e:
        read_wav(path)
    assert str(e.value) == f"{path}: not a readable PCM WAV file ({message})" or (
        str(e.value).startswith(f"{path}: not a readable PCM WAV file ({message}")
    )


def test_a_folder_or_an_unreadable_file_is_named(tmp_path):
    folder = tmp_path / "takes.wav"
    folder.mkdir()
    with pytest.raises(WakewardError, match=r"takes.wav: is a folder, not a WAV file"):
        read_wav(folder)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    said = capsys.readouterr()
    return code, said.out, said.err


@pytest.mark.parametrize(
    "command",
    [["features", "{wav}", "--out", "{out}"], ["sim", "{wav}"], ["try", "alexa", "{wav}"]],
)
def test_each_tool_names_the_file_it_cannot_read(tmp_path, capsys, command):
    folder = tmp_path / "takes.wav"
    folder.mkdir()
    odd = tmp_path / "chunk.wav"
    odd.write_bytes(riff(fmt_chunk(), b"LIST" + struct.pack("<I", 2**31 - 2), data_chunk(b"")))
    no_data = "not a readable PCM WAV file (no 'data' chunk in the first 1 MiB)"
    for wav, message in ((folder, "is a folder, not a WAV file"), (odd, no_data)):
        args = [a.format(wav=wav, out=tmp_path / "f.npy") for a in command]
        code, _, err = run(capsys, *args)
        assert code == 1
        assert err.strip() == f"wakeward: {wav}: {message}"


def test_features_reads_an_extensible_wav(tmp_path, capsys):
    pcm = np.random.default_rng(3).integers(-3000, 3000, RATE_HZ // 2).astype(np.int16)
    plain = write_test_wav(tmp_path / "plain.wav", pcm)
    ext = tmp_path / "ext.wav"
    ext.write_bytes(riff(fmt_chunk(EXTENSIBLE), data_chunk(pcm.astype("<i2").tobytes())))
    for wav in (plain, ext):
        code, _, err = run(capsys, "features", str(wav), "--out", str(wav.with_suffix(".npy")),
                           "--reference")  # fmt: skip
        assert code == 0, err
    assert (tmp_path / "plain.npy").read_bytes() == (tmp_path / "ext.npy").read_bytes()


# -- fuzz: mutated WAVs through the host reader and the firmware's, side by side -------------

MUTANTS = 400 * fuzzing.SCALE
SEED = fuzzing.seed(14)

FIRMWARE_READER = """
from wavfile import WavReader, WavError
buf = bytearray(1000)
for k in range(COUNT):
    name = "w%d.wav" % k
    try:
        r = WavReader(name)
    except WavError:
        print(k, "refused")
        continue
    except Exception as e:
        print(k, "ESCAPED", type(e).__name__, e)
        continue
    out = open("w%d.raw" % k, "wb")
    while True:
        n = r.readinto(buf)
        if not n:
            break
        out.write(memoryview(buf)[:n])
    out.close()
    r.close()
    print(k, "read")
"""


def seeds() -> list[bytes]:
    pcm = np.arange(-300, 300, 7, dtype=np.int16).astype("<i2").tobytes()
    return [
        riff(fmt_chunk(), data_chunk(pcm)),
        riff(fmt_chunk(EXTENSIBLE), b"LIST" + struct.pack("<I", 5) + b"abcde\0", data_chunk(pcm)),
        riff(fmt_chunk(), data_chunk(pcm[:-1], size=len(pcm) + 3)),
    ]


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(0, 5)
    if kind == 0:  # truncate
        return bytes(b[: int(rng.integers(0, len(b)))])
    if kind == 1:  # flip bytes, mostly in the header
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, min(len(b), 80)))] ^= int(rng.integers(1, 256))
    elif kind == 2:  # an extreme 32-bit word at a chunk-size or field position
        at = int(rng.integers(0, 60))
        value = int(rng.choice([0, 1, 15, 16, 17, 64, 65, 2**31 - 1, 2**31, 2**32 - 1]))
        b[at : at + 4] = value.to_bytes(4, "little")
    elif kind == 3:  # a small field nudged (tag, channels, bits, cbSize)
        at = int(rng.integers(0, 60))
        b[at] = (b[at] + int(rng.integers(-2, 3))) & 0xFF
    else:  # odd bytes appended
        b += bytes(rng.integers(0, 256, int(rng.integers(1, 4)), dtype=np.uint8))
    return bytes(b)


def test_fuzzed_wavs_are_read_or_refused_as_the_firmware_does(mp, tmp_path):
    rng = np.random.default_rng(SEED)
    sources = seeds()
    host: list[np.ndarray | None] = []
    for k in range(MUTANTS):
        path = tmp_path / f"w{k}.wav"
        path.write_bytes(mutate(sources[k % len(sources)], rng))
        try:
            host.append(read_wav(path))
        except WakewardError as e:
            assert str(e).startswith(f"{path}: "), e
            host.append(None)
    out = mp.output(FIRMWARE_READER.replace("COUNT", str(MUTANTS)), timeout_s=120 * fuzzing.SCALE)
    assert "ESCAPED" not in out, out
    device = [line.split()[1] for line in out.splitlines()]
    assert len(device) == MUTANTS
    for k, (mine, theirs) in enumerate(zip(host, device, strict=True)):
        if theirs == "refused":
            assert mine is None, f"w{k}.wav: the host reads what the firmware refuses"
        else:
            assert mine is not None, f"w{k}.wav: the host refuses what the firmware reads"
            got = np.frombuffer((tmp_path / f"w{k}.raw").read_bytes(), "<i2")
            np.testing.assert_array_equal(mine, got, err_msg=f"w{k}.wav")
    refused = sum(1 for x in host if x is None)
    assert 0 < refused < MUTANTS  # the mutator bites, and leaves some readable


def test_a_wav_from_a_pipe_is_read_with_its_extra_chunks_skipped(tmp_path):
    """`wakeward try alexa <(sox ...)`: the file cannot seek, chunks are read past."""
    import os
    import threading

    blob = riff(fmt_chunk(), b"LIST" + struct.pack("<I", 3) + b"abc\0", data_chunk(PCM_BYTES))
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as w:
            w.write(blob)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        np.testing.assert_array_equal(read_wav(f"/dev/fd/{read_end}"), SAMPLES)
    finally:
        writer.join()
        os.close(read_end)


@pytest.mark.parametrize(
    ("fmt", "described"),
    [
        ({"rate_hz": 22_050, "channels": 1, "bits": 16, "is_float": False}, "22050 Hz mono 16-bit"),
        (
            {"rate_hz": 22_050, "channels": 2, "bits": 32, "is_float": True},
            "22050 Hz stereo 32-bit float",
        ),
        (
            {"rate_hz": 44_100, "channels": 2, "bits": 24, "is_float": False},
            "44100 Hz stereo 24-bit",
        ),
        ({"rate_hz": 8_000, "channels": 1, "bits": 8, "is_float": False}, "8000 Hz mono 8-bit"),
        (
            {"rate_hz": 48_000, "channels": 1, "bits": 32, "is_float": False, "extensible": True},
            "48000 Hz mono 32-bit",
        ),
        (
            {"rate_hz": 16_000, "channels": 2, "bits": 16, "is_float": False},
            "16000 Hz stereo 16-bit",
        ),
    ],
)
def test_any_common_wav_is_converted_and_said_once(tmp_path, fmt, described):
    from wakeward.audio import read_any_wav

    path = write_any_wav(tmp_path / "in.wav", 1.0, **fmt)
    said: list[str] = []
    samples = read_any_wav(path, said.append)
    assert said == [f"{path}: {described}, converted to 16 kHz mono 16-bit"]
    assert samples.dtype == np.int16 and abs(len(samples) - RATE_HZ) <= 1
    t = np.arange(len(samples)) / RATE_HZ
    want = 0.5 * 32768 * np.sin(2 * np.pi * 440.0 * t)
    middle = slice(RATE_HZ // 10, -RATE_HZ // 10)  # away from the resampler's edges
    assert np.max(np.abs(samples[middle] - want[middle])) < 0.01 * 32768


def test_a_device_format_wav_is_read_as_is_and_nothing_is_said(tmp_path):
    from wakeward.audio import read_any_wav

    samples = np.arange(-1600, 1600, dtype=np.int16)
    path = write_test_wav(tmp_path / "in.wav", samples)
    said: list[str] = []
    assert np.array_equal(read_any_wav(path, said.append), samples)
    assert said == []


def test_the_strict_reader_still_refuses_what_the_device_refuses(tmp_path):
    path = write_any_wav(tmp_path / "in.wav", 0.1)
    with pytest.raises(WakewardError):
        read_wav(path)
