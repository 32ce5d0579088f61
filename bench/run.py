"""`make bench`: speed and memory figures, written to BENCHMARKS.md with date and machine.

Each benchmark is a function returning Markdown; later work adds its own to BENCHMARKS.
Instruction counts come from `valgrind --tool=callgrind` (repeatable on a noisy machine);
the cost of a unit of work is (count for N units - count for 0 units) / N, so start-up
is subtracted. Wall times are medians of a few runs and only indicative here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from wakeward import unixport  # noqa: E402
from wakeward.audio import RATE_HZ, write_wav  # noqa: E402

LISTEN_SCRIPT = """
import listen
from board import open_board
b = open_board("sim", wav="in.wav")
listen.run(b, say=lambda s: None)
b.close()
"""


def callgrind_instructions(argv: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Total instructions executed by argv (a Python script is run under its interpreter)."""
    out = cwd / "callgrind.out"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise RuntimeError("callgrind printed no instruction count:\n" + done.stderr[-2000:])
    out.unlink(missing_ok=True)
    return int(match.group(1))


def micropython_argv(script: Path, heap: str = unixport.DEFAULT_HEAP_PROFILE) -> list[str]:
    """PyPI's `micropython` is a Python entry point: run it under this Python (so valgrind
    sees one process); a built port (WAKEWARD_MICROPYTHON) is an executable of its own."""
    exe = unixport.command(script, heap=heap)
    if Path(exe[0]).read_bytes()[:2] == b"#!":
        return [sys.executable, *exe]
    return exe


def median_wall_s(argv: list[str], cwd: Path, env: dict[str, str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_unit_wall_s(argv: list[str], n: int, cwd: Path, env: dict[str, str]) -> float:
    """Median wall time of argv + [n] minus that of argv + [0], per unit."""
    full = median_wall_s([*argv, str(n)], cwd, env)
    empty = median_wall_s([*argv, "0"], cwd, env)
    return (full - empty) / n


def bench_listen_loop(tmp: Path) -> str:
    """The firmware's listen loop without models (sim mic, level, frontend, speech
    detector) per 10 ms frame."""
    seconds = 60
    rng = np.random.default_rng(1)
    audio = np.clip(rng.normal(0, 2000, seconds * RATE_HZ), -32768, 32767).astype(np.int16)
    frames = seconds * 100
    env = unixport.environment()
    env["PYTHONHASHSEED"] = "0"
    script = tmp / "listen_bench.py"
    script.write_text(LISTEN_SCRIPT)
    rows = []
    counts = {}
    walls = {}
    for n in (0, len(audio)):
        write_wav(tmp / "in.wav", audio[:n])
        argv = micropython_argv(script)
        walls[n] = median_wall_s(argv, tmp, env)
        if shutil.which("valgrind"):
            counts[n] = callgrind_instructions(argv, tmp, env)
    loop_s = walls[len(audio)] - walls[0]
    rows.append(f"| wall time for {seconds} s of audio (start-up subtracted) | {loop_s:.3f} s |")
    rows.append(f"| real-time factor (audio time / compute time) | {seconds / loop_s:.0f}x |")
    if counts:
        per_frame = (counts[len(audio)] - counts[0]) / frames
        rows.append(f"| x86-64 instructions per 10 ms frame (callgrind) | {per_frame:,.0f} |")
    else:
        rows.append("| x86-64 instructions per 10 ms frame | valgrind not installed |")
    return "\n".join(
        [
            "## Firmware listen loop on the unix port (issue 2)",
            "",
            "`firmware/listen.py` without models over 60 s of white noise from a WAV on the "
            "sim board: read 10 ms, mean absolute level (viper), the speech frontend (40 "
            "features, below), energy speech detector. This is the floor the wake-word "
            "models add to; the frontend is most of it.",
            "",
            "| measure | value |",
            "| --- | --- |",
            *rows,
        ]
    )


INTERPRETER_SCRIPT = """
import sys
from tflm import interpreter, model
it = interpreter.Interpreter(model.load(sys.argv[1]))
n = int(sys.argv[2])
data = open("inputs.raw", "rb").read()
size = len(it.inputs[0])
views = [memoryview(data)[k * size : (k + 1) * size] for k in range(n)]
for k in range(n):
    it.set_input(0, views[k])
    it.invoke()
"""

TFLM_SCRIPT = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read())
n = int(sys.argv[2])
x = np.frombuffer(open("inputs.raw", "rb").read(), np.int8).reshape(-1, 1, 3, 40)
for k in range(n):
    it.set_input(x[k], 0)
    it.invoke()
"""


def bench_interpreter(tmp: Path) -> str:
    """One invocation of each pymicro-wakeword model: device interpreter vs TFLite Micro."""
    from wakeward import models

    n = 500
    rng = np.random.default_rng(3)
    inputs = rng.integers(-128, 128, (4 * n, 1, 3, 40)).astype(np.int8)
    (tmp / "inputs.raw").write_bytes(inputs.tobytes())
    env = unixport.environment()
    env["PYTHONHASHSEED"] = "0"  # CPython's start-up work is then the same in every run
    device = tmp / "interp_bench.py"
    device.write_text(INTERPRETER_SCRIPT)
    reference = tmp / "tflm_bench.py"
    reference.write_text(TFLM_SCRIPT)
    rows = []
    for name in models.BUILTIN:
        path = str(models.resolve(name))
        dev_argv = [*micropython_argv(device, heap="esp32s3-psram"), path]
        ref_argv = [sys.executable, str(reference), path]
        dev = {k: callgrind_instructions([*dev_argv, str(k)], tmp, env) for k in (0, n)}
        ref = {k: callgrind_instructions([*ref_argv, str(k)], tmp, env) for k in (0, n)}
        dev_per = (dev[n] - dev[0]) / n
        ref_per = (ref[n] - ref[0]) / n
        dev_wall = per_unit_wall_s(dev_argv, 4 * n, tmp, env)
        ref_wall = per_unit_wall_s(ref_argv, 4 * n, tmp, env)
        rows.append(
            f"| {name} | {dev_per:,.0f} | {ref_per:,.0f} | {dev_per / ref_per:.1f}x "
            f"| {dev_wall * 1e6:,.0f} | {ref_wall * 1e6:,.0f} |"
        )
    return "\n".join(
        [
            "## Device interpreter per invocation (issue 3)",
            "",
            f"{n} streaming invocations on random int8 inputs; instructions from callgrind "
            "(N minus 0 invocations, so loading and prepare are excluded). The reference is "
            "TFLite Micro (PyPI tflite-micro) driven from CPython, so its figure includes the "
            "Python binding's per-call overhead. Wall times are medians of 7 runs, start-up "
            "subtracted; they are noisy on this shared machine, the instruction counts are not.",
            "",
            "| model | device instr/invocation | TFLite Micro instr/invocation | ratio "
            "| device us | TFLite Micro us |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            ESP32S3_ESTIMATE,
        ]
    )


ESP32S3_ESTIMATE = (
    "Expected on the ESP32-S3 (an estimate, not measured: no board here): viper emits about "
    "the same number of operations for Xtensa as for x86-64 (it keeps a few locals in "
    "registers on both and spills the rest), and the LX7 runs simple integer instructions "
    "at about one per cycle with single-cycle internal SRAM, so ~0.6M instructions per "
    "alexa invocation should take roughly 2.5-3.7 ms at 240 MHz (1.0-1.5 cycles per "
    "instruction), once per 30 ms of audio: ~8-12% of one core per model, plus the "
    "frontend's ~320k instructions per 10 ms (~1.3-2 ms, another ~13-20%). Native code "
    "from .mpy files runs from IRAM on the esp32 port. The models need a board with PSRAM "
    "(README), where the MicroPython heap, so the "
    "model and its arena, lives in PSRAM behind the 32 KB data cache: the ~56 KB of weights "
    "are read once per invocation, so cache misses may add to this estimate."
)


FRONTEND_SCRIPT = """
import sys
from frontend import Frontend
fe = Frontend()
seconds = int(sys.argv[1])
data = open("speech.raw", "rb").read()
n = len(data) // 2
mv = memoryview(data)
for _ in range(seconds):
    at = 0
    while at < n:
        at += fe.feed(mv, at, n - at)
"""

FEATURES_SCRIPT = """
import sys
from pymicro_features import MicroFrontend
fe = MicroFrontend()
seconds = int(sys.argv[1])
data = open("speech.raw", "rb").read()
for _ in range(seconds):
    at = 0
    while at + 320 <= len(data):
        at += 2 * fe.process_samples(data[at : at + 320]).samples_read
"""


def per_frame_count(argv: list[str], seconds: int, cwd: Path, env: dict[str, str]) -> float:
    """Instructions per 10 ms frame of a script taking a number of seconds of audio as its
    last argument: (count for `seconds` - count for 0) / frames."""
    counts = {k: callgrind_instructions([*argv, str(k)], cwd, env) for k in (0, seconds)}
    return (counts[seconds] - counts[0]) / (100 * seconds)


def frontend_count(tmp: Path, seconds: int = 10) -> float:
    """x86-64 instructions per 10 ms frame of the whole device frontend (FRONTEND_SCRIPT)."""
    frontend_speech(tmp)
    env = unixport.environment()
    env["PYTHONHASHSEED"] = "0"
    device = tmp / "frontend_bench.py"
    device.write_text(FRONTEND_SCRIPT)
    return per_frame_count(micropython_argv(device), seconds, tmp, env)


def bench_frontend(tmp: Path) -> str:
    """The device frontend per 10 ms frame against pymicro-features (TFLM's C frontend)."""
    frontend_speech(tmp)
    env = unixport.environment()
    env["PYTHONHASHSEED"] = "0"
    device = tmp / "frontend_bench.py"
    device.write_text(FRONTEND_SCRIPT)
    reference = tmp / "features_bench.py"
    reference.write_text(FEATURES_SCRIPT)
    seconds = 10
    dev_argv = micropython_argv(device)
    ref_argv = [sys.executable, str(reference)]
    dev_per = per_frame_count(dev_argv, seconds, tmp, env)
    ref_per = per_frame_count(ref_argv, seconds, tmp, env)
    wall_seconds = 120  # long enough that start-up noise does not swamp the difference
    dev_wall = per_unit_wall_s(dev_argv, wall_seconds, tmp, env) / 100
    ref_wall = per_unit_wall_s(ref_argv, wall_seconds, tmp, env) / 100
    return "\n".join(
        [
            "## Device frontend per 10 ms frame (issue 4)",
            "",
            f"{seconds} s of a modulated tone in noise, fed in one buffer per second; "
            "instructions from callgrind (N minus 0 seconds). The reference is "
            "pymicro-features (the TFLite Micro C frontend) driven from CPython 10 ms at a "
            "time, so its figure includes the binding's per-call overhead.",
            "",
            "| measure | device (unix port) | pymicro-features | ratio |",
            "| --- | --- | --- | --- |",
            f"| x86-64 instructions per frame | {dev_per:,.0f} | {ref_per:,.0f} "
            f"| {dev_per / ref_per:.1f}x |",
            f"| wall time per frame | {dev_wall * 1e6:,.1f} us | {ref_wall * 1e6:,.1f} us "
            f"| {dev_wall / ref_wall:.1f}x |",
        ]
    )


FRONTEND_STAGES = (
    "copy_in",
    "window",
    "fft_first",
    "fft_stage_4",
    "fft_stage_16",
    "fft_stage_64",
    "fft_split",
    "filterbank",
    "sqrt",
    "finish",
)

# Each frame runs the frontend as Frontend._process does, snapshots every stage's input
# buffers and, for the stage named in argv[1], runs that stage once more on the snapshots:
# the run minus the run of stage "none" is what the stage costs on this frame's data
# (the snapshots are taken in both runs, so their cost cancels).
FRONTEND_STAGES_SCRIPT = """
import sys
import frontend as F
stage = sys.argv[1]
seconds = int(sys.argv[2])
fe = F.Frontend()
stages = STAGES
which = stages.index(stage) if stage in stages else -1
s_pcm = bytearray(len(fe._pcm))
s_new = bytearray(len(fe._pcm))
s_xin = bytearray(len(fe._xin))
s_f = [bytearray(len(fe._fft)) for _ in range(5)]
s_acc = bytearray(len(fe._acc))
s_sig = bytearray(len(fe._sig))
s_est = bytearray(len(fe._est))
f8 = bytearray(F.NUM_CHANNELS)
f16 = bytearray(2 * F.NUM_CHANNELS)
data = open("speech.raw", "rb").read()
mv = memoryview(data)


def process():
    f = fe._fft
    s_pcm[:] = fe._pcm
    s_new[0] = 0
    s_new[1] = 0
    if which == 0:
        F._copy_in(s_new, mv, 0, F.WINDOW_STEP)
    shift = F._window(fe._pcm, F.WINDOW, fe._xin, fe._pcm)
    if which == 1:
        F._window(s_pcm, F.WINDOW, s_xin, s_pcm)
    s_xin[:] = fe._xin
    F._fft_first(fe._xin, f, shift)
    if which == 2:
        F._fft_first(s_xin, s_f[0], shift)
    s_f[0][:] = f
    F._fft_stage(f, F.FFT_TWIDDLES, 4, 16)
    if which == 3:
        F._fft_stage(s_f[0], F.FFT_TWIDDLES, 4, 16)
    s_f[1][:] = f
    F._fft_stage(f, F.FFT_TWIDDLES, 16, 4)
    if which == 4:
        F._fft_stage(s_f[1], F.FFT_TWIDDLES, 16, 4)
    s_f[2][:] = f
    F._fft_stage(f, F.FFT_TWIDDLES, 64, 1)
    if which == 5:
        F._fft_stage(s_f[2], F.FFT_TWIDDLES, 64, 1)
    s_f[3][:] = f
    F._fft_split(f, F.FFT_SUPER_TWIDDLES)
    if which == 6:
        F._fft_split(s_f[3], F.FFT_SUPER_TWIDDLES)
    s_f[4][:] = f
    F._filterbank(f, F.FB_WEIGHTS, fe._acc)
    if which == 7:
        F._filterbank(s_f[4], F.FB_WEIGHTS, s_acc)
    s_acc[:] = fe._acc
    F._sqrt(fe._acc, fe._sig, shift)
    if which == 8:
        F._sqrt(s_acc, s_sig, shift)
    s_sig[:] = fe._sig
    s_est[:] = fe._est
    F._finish(fe._sig, fe._est, fe.frame, fe.frame_int8)
    if which == 9:
        F._finish(s_sig, s_est, f16, f8)
    fe.ready = True


fe._process = process
n = len(data) // 2
for _ in range(seconds):
    at = 0
    while at < n:
        at += fe.feed(mv, at, F.WINDOW_STEP)
""".replace("STAGES", repr(FRONTEND_STAGES))


def frontend_speech(tmp: Path) -> None:
    """speech.raw: one second of a modulated tone in noise (the frontend benchmarks' input)."""
    rng = np.random.default_rng(4)
    t = np.arange(16000) / 16000
    second = 3000 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    second += rng.normal(0, 300, 16000)
    (tmp / "speech.raw").write_bytes(np.clip(second, -32768, 32767).astype("<i2").tobytes())


def frontend_stage_counts(tmp: Path, stages=FRONTEND_STAGES, seconds: int = 3) -> dict:
    """x86-64 instructions per 10 ms frame of each frontend stage (FRONTEND_STAGES_SCRIPT)."""
    frontend_speech(tmp)
    env = unixport.environment()
    env["PYTHONHASHSEED"] = "0"
    script = tmp / "frontend_stages.py"
    script.write_text(FRONTEND_STAGES_SCRIPT)
    argv = micropython_argv(script)
    base = callgrind_instructions([*argv, "none", str(seconds)], tmp, env)
    frames = seconds * 100
    return {
        name: (callgrind_instructions([*argv, name, str(seconds)], tmp, env) - base) / frames
        for name in stages
    }


def bench_frontend_stages(tmp: Path) -> str:
    """Each stage of the device frontend per 10 ms frame."""
    counts = frontend_stage_counts(tmp)
    rows = [f"| {name} | {count:,.0f} |" for name, count in counts.items()]
    rows.append(f"| sum of the stages | {sum(counts.values()):,.0f} |")
    return "\n".join(
        [
            "## Device frontend per stage (issue 15)",
            "",
            "x86-64 instructions per 10 ms frame of each viper kernel of `firmware/frontend.py` "
            "(the same input as above, fed 10 ms at a time): each frame runs one stage a second "
            "time on a copy of its input, and the count of that run minus the count of a run "
            "without the second call is the stage's cost. What the whole frontend costs beyond "
            "the sum of its stages is the Python around them (`feed`, `_process`).",
            "",
            "| stage | x86-64 instructions per frame |",
            "| --- | --- |",
            *rows,
        ]
    )


ADD_FRAME_SCRIPT = """
import sys
import array
import wakeword
ww = wakeword.WakeWord("m", sys.argv[1], 255, 5)
n = int(sys.argv[2])
frame = array.array("b", range(-20, 20))
for _ in range(n):
    ww._filled = 0  # never completes an invocation: the frame handling alone
    ww.add_frame(frame)
"""


def add_frame_count(tmp: Path, model: str = "alexa", n: int = 2000) -> float:
    """x86-64 instructions per WakeWord.add_frame call that does not invoke the model."""
    from wakeward import models

    env = unixport.environment()
    env["PYTHONHASHSEED"] = "0"
    script = tmp / "add_frame.py"
    script.write_text(ADD_FRAME_SCRIPT)
    argv = [*micropython_argv(script, heap="esp32s3-psram"), str(models.resolve(model))]
    counts = {k: callgrind_instructions([*argv, str(k)], tmp, env) for k in (0, n)}
    return (counts[n] - counts[0]) / n


def smallest_heap(fits: Callable[[str], bool], lo: int, hi: int, within: int) -> int | None:
    """The smallest MicroPython heap in bytes (to `within`) at which fits(profile) holds,
    by bisection between lo (taken to fail) and hi; fits gets the name of a heap profile
    of the size to try. None when even hi does not fit."""
    try:
        unixport.HEAP_PROFILES["bench"] = hi
        if not fits("bench"):
            return None
        while hi - lo > within:
            mid = (lo + hi) // 2
            unixport.HEAP_PROFILES["bench"] = mid
            if fits("bench"):
                hi = mid
            else:
                lo = mid
    finally:
        unixport.HEAP_PROFILES.pop("bench", None)
    return hi


def loop_runs(wav: Path, heap: str, realtime: bool) -> tuple[bool, float, list[float]]:
    """One run of the firmware on the sim board with the alexa model, streaming to an
    in-process receiver: (ran, wall seconds, detection-to-clip_start latencies in s).
    A run in which the model was not loaded (main.py reports a MemoryError and goes on
    without it) did not run the loop."""
    from wakeward import receiver, sim

    seen: dict[str, list[float]] = {"detected": [], "clip": [], "not_loaded": []}

    def device(line: str) -> None:
        if line.startswith("detected:"):
            seen["detected"].append(time.monotonic())
        if line.startswith("wakeward: model") and "not loaded" in line:
            seen["not_loaded"].append(time.monotonic())

    def host(line: str) -> None:
        if line.startswith("clip ") and "started" in line:
            seen["clip"].append(time.monotonic())

    port, thread, result = receiver.serve_in_background(wav.parent / "clips", host)
    start = time.perf_counter()
    try:
        sim.run_sim(
            wav,
            model_names=["alexa"],
            link_tcp=f"127.0.0.1:{port}",
            heap=heap,
            realtime=realtime,
            say=device,
        )
    except Exception:  # noqa: BLE001 - a failed run is what the heap search looks for
        return False, 0.0, []
    wall = time.perf_counter() - start
    thread.join(30)
    if seen["not_loaded"]:
        return False, wall, []
    latencies = [c - d for d, c in zip(seen["detected"], seen["clip"], strict=False)]
    return True, wall, latencies


def bench_loop(tmp: Path) -> str:
    """The whole device loop on the unix port: real-time factor, smallest heap, latency."""
    from wakeward import demo

    wav = demo.make_recording(tmp / "loop" / "demo.wav")
    seconds = len(np.frombuffer(wav.read_bytes()[44:], "<i2")) / RATE_HZ
    ok, wall, _ = loop_runs(wav, "esp32s3-psram", realtime=False)
    smallest = smallest_heap(
        lambda heap: loop_runs(wav, heap, realtime=False)[0], 64_000, 1_000_000, 8_000
    )
    smallest_text = f"{smallest:,} bytes" if smallest else "over 1,000,000 bytes"
    _, _, latencies = loop_runs(wav, "esp32s3-psram", realtime=True)
    latency = (
        f"within {1000 * max(abs(x) for x in latencies):.1f} ms ({len(latencies)} clips; the "
        "clip_start frame goes out in the same 10 ms frame as the detection, so this is the "
        "transport plus the host reading the device's output)"
        if latencies
        else "not measured (no clip arrived)"
    )
    return "\n".join(
        [
            "## Whole device loop on the unix port (issue 5)",
            "",
            f"`make demo`'s recording ({seconds:.1f} s, two wake words): firmware on the sim board "
            "with the alexa model, streaming the clips over loopback TCP to the receiver.",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| real-time factor (audio s / wall s, process start included) | "
            f"{seconds / wall:.1f}x |"
            if ok
            else "| real-time factor | the run failed |",
            f"| smallest MicroPython heap that runs it ({port_bits()}-bit unix port, within "
            f"8 KB) | {smallest_text} |",
            f"| detection line on the device to clip_start at the receiver (real-time pace) | "
            f"{latency} |",
        ]
    )


# The model sets of the whole-loop figure (issue 15's targets): one shipped model, three,
# and our own.
LOOP_MODEL_SETS = (
    ("alexa",),
    ("alexa", "hey_jarvis", "hey_mycroft"),
    (str(REPO / "models" / "wakeward_alexa"),),
)


def whole_loop_count(tmp: Path, wav: Path, model_names: tuple[str, ...]) -> float:
    """x86-64 instructions per 10 ms of `wav` of the whole firmware (`-m main` on the sim
    board, no link): the run over wav minus a run over an empty WAV, per 10 ms frame."""
    from wakeward import sim

    env = unixport.environment()
    env["PYTHONHASHSEED"] = "0"
    empty = write_wav(tmp / "empty.wav", np.zeros(0, np.int16))
    samples = len(np.frombuffer(wav.read_bytes()[44:], "<i2"))
    counts = []
    for source in (empty, wav):
        flash = tmp / f"flash-{source.stem}"
        flash.mkdir(exist_ok=True)
        config = sim.sim_config(source, model_names=list(model_names))
        (flash / "config.json").write_text(json.dumps(config))
        argv = unixport.main_command()
        if Path(argv[0]).read_bytes()[:2] == b"#!":
            argv = [sys.executable, *argv]
        counts.append(callgrind_instructions(argv, flash, env))
    return (counts[1] - counts[0]) / (samples / (RATE_HZ / 100))


def bench_whole_loop(tmp: Path) -> str:
    """Instructions per 10 ms of speech of the whole loop with one, three and our model."""
    from wakeward import demo

    wav = demo.make_recording(tmp / "whole" / "demo.wav")
    rows = []
    for names in LOOP_MODEL_SETS:
        count = whole_loop_count(tmp / "whole", wav, names)
        label = " + ".join(Path(n).name for n in names)
        rows.append(f"| {label} | {count:,.0f} |")
    return "\n".join(
        [
            "## Whole loop per 10 ms of speech (issue 15)",
            "",
            "`make demo`'s recording: the firmware (`-m main`, compiled) on the sim board "
            "without a link, so microphone, level, frontend, every model and the detector; "
            "callgrind over the recording minus a run over an empty WAV (start-up and model "
            "loading cancel), divided by the recording's 10 ms frames.",
            "",
            "| models | x86-64 instructions per 10 ms |",
            "| --- | --- |",
            *rows,
        ]
    )


BENCHMARKS: list[Callable[[Path], str]] = [
    bench_listen_loop,
    bench_frontend,
    bench_frontend_stages,
    bench_interpreter,
    bench_whole_loop,
    bench_loop,
]


def port_bits() -> int:
    """The word size of the unix port in use (64 for PyPI's, 32 for a 32-bit build)."""
    done = unixport.run(code="import sys; print(64 if sys.maxsize > 2**32 else 32)", timeout_s=30)
    return int(done.stdout.decode().split()[-1])


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version_code = "import sys; v = sys.implementation.version; print('%d.%d.%d-%s' % v[:4])"
    micropython = subprocess.run(
        unixport.command(None, code=version_code),
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; MicroPython unix port {micropython}"
    )


# Sections other scripts write into BENCHMARKS.md (bench/train_compare.py: `make
# bench-train`, a long run of its own), kept as they are when `make bench` rewrites the file.
KEPT_SECTIONS = ("## Trained models vs pymicro-wakeword", "## Issue 15: what each change saved")


def kept_sections(path: Path) -> str:
    """The KEPT_SECTIONS of the BENCHMARKS.md at `path`, each up to the next section."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    out = []
    for title in KEPT_SECTIONS:
        start = text.find(title)
        if start >= 0:
            end = text.find("\n## ", start + len(title))
            out.append(text[start : end + 1 if end >= 0 else len(text)].rstrip("\n") + "\n")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args()
    sections = []
    with tempfile.TemporaryDirectory(prefix="wakeward-bench-") as tmp:
        for bench in BENCHMARKS:
            print(f"bench: {bench.__name__} ...", flush=True)
            sections.append(bench(Path(tmp)))
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    text = "\n\n".join(
        [
            "# Benchmarks",
            f"Written by `make bench` on {now}.\n\nMachine: {machine_line()}.",
            "Re-run with `make bench`; instruction counts are from "
            "`valgrind --tool=callgrind` (N units minus 0 units, divided by N).",
            *sections,
        ]
    )
    kept = kept_sections(args.out)
    args.out.write_text(text + "\n" + ("\n" + kept if kept else ""))
    print(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
