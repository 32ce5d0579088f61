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
    "On the ESP32-S3 (an estimate, not measured: no board here) an invocation takes its "
    "instructions x 1.2-1.5 cycles / 240 MHz, once per 30 ms of audio; 'Projected ESP32-S3 "
    "load' under the whole loop below spells out the assumptions and gives the whole loop's "
    "share of the core. The models need a board with PSRAM (README), where the MicroPython "
    "heap, so the model and its arena, lives in PSRAM behind the 32 KB data cache: the "
    "~56 KB of weights are read once per invocation, so cache misses may add to the estimate."
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
    (),
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


# The ESP32-S3 projection (an estimate: no board here). Cycles per instruction of the LX7
# on this code: most ALU ops, loads and stores from internal SRAM take one cycle, multiplies
# and taken branches more, and viper spills every other local to the stack; 1.2-1.5 is the
# range assumed. The firmware sets 240 MHz at boot; the generic build may boot at 160.
CPI_RANGE = (1.2, 1.5)
CPU_MHZ = (160, 240)
FRAME_MS = 10


def projection_rows(counts: dict[str, float]) -> list[str]:
    """ms of CPU per 10 ms of audio at each clock for the CPI range, and the share of the
    core, from instructions per 10 ms (the Xtensa count taken equal to the x86-64 one)."""
    rows = []
    for label, count in counts.items():
        cells = [label, f"{count:,.0f}"]
        for mhz in CPU_MHZ:
            lo, hi = (count * cpi / (mhz * 1000) for cpi in CPI_RANGE)
            cells.append(
                f"{lo:.1f}-{hi:.1f} ms ({100 * lo / FRAME_MS:.0f}-{100 * hi / FRAME_MS:.0f}%)"
            )
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def bench_whole_loop(tmp: Path) -> str:
    """Instructions per 10 ms of speech of the whole loop with no model, one, three and
    ours, and what they project to on the ESP32-S3."""
    from wakeward import demo

    wav = demo.make_recording(tmp / "whole" / "demo.wav")
    counts = {}
    for names in LOOP_MODEL_SETS:
        label = " + ".join(Path(n).name for n in names) or "no model"
        counts[label] = whole_loop_count(tmp / "whole", wav, names)
    rows = [f"| {label} | {count:,.0f} |" for label, count in counts.items()]
    return "\n".join(
        [
            "## Whole loop per 10 ms of speech (issue 15)",
            "",
            "`make demo`'s recording: the firmware (`-m main`, compiled) on the sim board "
            "without a link, so microphone, level, frontend, every model and the detector; "
            "callgrind over the recording minus a run over an empty WAV (start-up and model "
            "loading cancel), divided by the recording's 10 ms frames. 'no model' is the floor "
            "the models add to (microphone, level, frontend, speech detector).",
            "",
            "| models | x86-64 instructions per 10 ms |",
            "| --- | --- |",
            *rows,
            "",
            "### Projected ESP32-S3 load (an estimate, not measured: no board here)",
            "",
            "CPU time per 10 ms of audio = instructions x cycles per instruction / clock. "
            "Assumptions: (1) the Xtensa code runs as many instructions as the x86-64 code "
            "(mpy-cross emits the same operations for both; the static counts below give "
            "Xtensa fewer, which this leaves out); (2) 1.2-1.5 cycles per instruction "
            "(the LX7 runs ALU ops, loads and stores from internal SRAM in one cycle; "
            "multiplies, taken branches and the windowed calls cost more); (3) no cache "
            "misses: the native code and the heap's hot data are taken to be in the caches "
            "or internal RAM (the models' weights and arena live in PSRAM behind a 32 KB "
            "cache: misses add to this); (4) the interpreter "
            "parts (the Python around the kernels) cost on the device what they cost here; "
            "(5) Wi-Fi, TLS and clip streaming are not included. The firmware asks for 240 "
            "MHz at boot (main.py, `board.set_cpu_hz`); 160 MHz is what the generic "
            "ESP32-S3 build may boot at.",
            "",
            "| models | x86-64 instructions per 10 ms | 160 MHz: ms per 10 ms (share) "
            "| 240 MHz: ms per 10 ms (share) |",
            "| --- | ---: | --- | --- |",
            *projection_rows(counts),
        ]
    )


# The viper kernels the listen loop spends its time in (the whole-loop figure above).
HOT_MODULES = ("frontend.py", "pcm.py", "tflm/conv.py", "tflm/quant.py", "tflm/move.py")
XTENSA_OBJDUMP = "xtensa-lx106-elf-objdump"  # Debian binutils-xtensa-lx106
_MPY_VERSION = 6
_MP_CODE_BYTECODE = 2
_MP_CODE_NATIVE_PY = 3
_MP_CODE_NATIVE_VIPER = 4
_MP_SCOPE_FLAG_VIPERRELOC = 0x10
_MP_SCOPE_FLAG_VIPERRODATA = 0x20
_MP_SCOPE_FLAG_VIPERBSS = 0x40
_OBJ_STR = 5
_OBJ_BYTES = 6
_OBJ_COMPLEX = 9
_OBJ_TUPLE = 10
_RELOC_END = 0xFF


def _mpy_uint(data: bytes, at: int) -> tuple[int, int]:
    """A .mpy variable-length unsigned int at `at`: (value, offset after it)."""
    value = 0
    while True:
        byte = data[at]
        at += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at


def _mpy_obj(data: bytes, at: int) -> int:
    """Skip one constant object of a .mpy's object table (tools/mpy-tool.py read_obj)."""
    kind = data[at]
    at += 1
    if kind == _OBJ_TUPLE:
        count, at = _mpy_uint(data, at)
        for _ in range(count):
            at = _mpy_obj(data, at)
    elif _OBJ_STR <= kind <= _OBJ_COMPLEX:
        length, at = _mpy_uint(data, at)
        at += length + (1 if kind in (_OBJ_STR, _OBJ_BYTES) else 0)
    return at


def viper_machine_code(mpy: bytes) -> list[bytes]:
    """The machine code of every viper function of a .mpy file (v6), in the order the
    module defines them (the layout tools/mpy-tool.py reads: header, qstrs, objects, then
    the raw code tree, each parent before its children)."""
    if mpy[0] != ord("M") or mpy[1] != _MPY_VERSION:
        raise ValueError("not a .mpy v6 file")
    at = 4
    n_qstr, at = _mpy_uint(mpy, at)
    n_obj, at = _mpy_uint(mpy, at)
    for _ in range(n_qstr):
        length, at = _mpy_uint(mpy, at)
        if not length & 1:  # a static qstr is its index alone
            at += (length >> 1) + 1
    for _ in range(n_obj):
        at = _mpy_obj(mpy, at)
    found: list[bytes] = []

    def raw_code(at: int) -> int:
        kind_len, at = _mpy_uint(mpy, at)
        kind = (kind_len & 3) + _MP_CODE_BYTECODE
        code = mpy[at : at + (kind_len >> 3)]
        at += kind_len >> 3
        if kind == _MP_CODE_NATIVE_PY:
            _, at = _mpy_uint(mpy, at)  # prelude offset
        elif kind != _MP_CODE_BYTECODE:
            flags, at = _mpy_uint(mpy, at)
            if kind != _MP_CODE_NATIVE_VIPER:  # inline assembler: two more uints
                _, at = _mpy_uint(mpy, at)
                _, at = _mpy_uint(mpy, at)
            else:
                rodata = bss = 0
                if flags & _MP_SCOPE_FLAG_VIPERRODATA:
                    rodata, at = _mpy_uint(mpy, at)
                if flags & _MP_SCOPE_FLAG_VIPERBSS:
                    bss, at = _mpy_uint(mpy, at)
                at += rodata
                if flags & _MP_SCOPE_FLAG_VIPERRELOC:
                    while mpy[at] != _RELOC_END:
                        op = mpy[at]
                        at += 1
                        if op & 1:
                            _, at = _mpy_uint(mpy, at)
                        if (op >> 1) <= 5 and (op >> 1) & 1:
                            _, at = _mpy_uint(mpy, at)
                    at += 1
                found.append(code)
        if (kind_len >> 2) & 1:
            children, at = _mpy_uint(mpy, at)
            for _ in range(children):
                at = raw_code(at)
        return at

    raw_code(at)
    return found


def viper_names(source: Path) -> list[str]:
    """The module-level @micropython.viper functions of a source file, in order."""
    import ast

    names = []
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef) and any(
            ast.unparse(d) == "micropython.viper" for d in node.decorator_list
        ):
            names.append(node.name)
    return names


def _instructions(argv: list[str]) -> int:
    """How many instructions an objdump listing holds (one per 'address:' line)."""
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return len(re.findall(r"^\s*[0-9a-f]+:\t", done.stdout, re.MULTILINE))


def static_counts(tmp: Path, module: str) -> dict[str, tuple[int, int]]:
    """{viper function: (x86-64 instructions, xtensawin instructions)} of one firmware
    module, each compiled by mpy-cross and disassembled whole. mpy-cross's xtensawin code
    starts with a jump over the function's constant table: the count starts at its target."""
    source = unixport.firmware_dir() / module
    names = viper_names(source)
    codes = {}
    for arch in ("x64", "xtensawin"):
        out = tmp / f"{source.stem}-{arch}.mpy"
        subprocess.run(
            [str(unixport.mpy_cross_exe()), f"-march={arch}", "-o", str(out), str(source)],
            check=True,
            capture_output=True,
        )
        codes[arch] = viper_machine_code(out.read_bytes())
        if len(codes[arch]) != len(names):
            raise RuntimeError(f"{module}: {len(codes[arch])} viper functions, {len(names)} named")
    counts = {}
    for name, x64, xtensa in zip(names, codes["x64"], codes["xtensawin"], strict=True):
        x64_bin = tmp / "x64.bin"
        x64_bin.write_bytes(x64)
        xt_bin = tmp / "xtensa.bin"
        xt_bin.write_bytes(xtensa)
        x64_count = _instructions(
            ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", str(x64_bin)]
        )
        first = subprocess.run(
            [XTENSA_OBJDUMP, "-D", "-b", "binary", "-m", "xtensa", "--stop-address=3", str(xt_bin)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        jump = re.search(r"\tj\t0x([0-9a-f]+)", first)
        if jump is None:
            raise RuntimeError(f"{module} {name}: xtensawin code does not start with a jump")
        xt_count = _instructions(
            [XTENSA_OBJDUMP, "-D", "-b", "binary", "-m", "xtensa",
             f"--start-address=0x{jump.group(1)}", str(xt_bin)]
        )  # fmt: skip
        counts[name] = (x64_count, xt_count + 1)  # + the jump itself
    return counts


def bench_static_counts(tmp: Path) -> str:
    """Static instruction counts of the hot viper kernels: x86-64 vs Xtensa (xtensawin)."""
    header = [
        "## Static instruction counts: x86-64 vs Xtensa (issue 15)",
        "",
        "Every viper function of the modules the listen loop runs (frontend, pcm, the "
        "TFLite-Micro kernels) compiled by mpy-cross for `-march=x64` and for "
        "`-march=xtensawin` (the ESP32-S3's code) and disassembled whole: objdump for "
        "x86-64, `xtensa-lx106-elf-objdump` (Debian binutils-xtensa-lx106) for Xtensa. That "
        "objdump is for the ESP8266's LX106, which lacks the windowed-ABI opcodes (entry, "
        "callx8, retw): it prints them as `excw`, still one line per instruction (an "
        "instruction's length is in its first byte). The xtensawin count starts at the "
        "jump over the function's constant table and includes it. A static count weighs "
        "every instruction once, whatever runs it how often; the dynamic counts above are "
        "x86-64 only (callgrind).",
        "",
    ]
    if shutil.which(XTENSA_OBJDUMP) is None or shutil.which("objdump") is None:
        return "\n".join(
            [*header, "Not measured: `xtensa-lx106-elf-objdump` (binutils-xtensa-lx106) or "
             "`objdump` (binutils) is not installed."]
        )  # fmt: skip
    rows = []
    total_x64 = total_xt = 0
    for module in HOT_MODULES:
        for name, (x64, xt) in static_counts(tmp, module).items():
            rows.append(f"| {module} | `{name}` | {x64:,} | {xt:,} | {xt / x64:.2f} |")
            total_x64 += x64
            total_xt += xt
    rows.append(f"| all | | {total_x64:,} | {total_xt:,} | {total_xt / total_x64:.2f} |")
    return "\n".join(
        [
            *header,
            "| module | function | x86-64 | xtensawin | xtensawin / x86-64 |",
            "| --- | --- | ---: | ---: | ---: |",
            *rows,
        ]
    )


# Home Assistant's satellite (issue 16): requests with the wake word, each followed by room
# noise long enough for the device to end its clip at the end of speech.
SATELLITE_REQUESTS = (
    "Alexa, what time is it?",
    "Alexa, turn off the kitchen lights.",
    "Alexa, how warm is it outside?",
    "Alexa, set a timer for ten minutes.",
    "Alexa, what is on my calendar today?",
)
_ROOM_NOISE = 30  # standard deviation of the room noise (as in the demo's recording)
_ROOM_S = 2.5  # of room noise after each request: the device's end of speech comes within
_VOICE_LEVEL = 64  # |sample| above this is the voice (espeak-ng's pauses are near 0)
_SATELLITE_GOAL_MS = 150  # issue 16: detection to the first audio-chunk, on loopback
_SATELLITE_WAIT_S = 60.0  # for the last audio-stop once the device's input has ended


def satellite_requests(folder: Path) -> tuple[Path, list[float]]:
    """SATELLITE_REQUESTS spoken (espeak-ng, at half level) between stretches of room
    noise, as a 16 kHz WAV; and the time (s) at which each request's voice ends."""
    from wakeward import tts

    rng = np.random.default_rng(16)
    parts = [rng.normal(0, _ROOM_NOISE, RATE_HZ)]
    ends = []
    for i, text in enumerate(SATELLITE_REQUESTS):
        voice = tts.espeak(text, folder / f"request{i}.wav").astype(np.float64) * 0.5
        voiced = np.flatnonzero(np.abs(voice) > _VOICE_LEVEL)
        start = sum(len(part) for part in parts)
        ends.append((start + voiced[-1] + 1) / RATE_HZ)
        parts += [voice, rng.normal(0, _ROOM_NOISE, int(_ROOM_S * RATE_HZ))]
    samples = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    return write_wav(folder / "requests.wav", samples), ends


def satellite_latencies(folder: Path) -> dict[str, list[float]]:
    """The firmware on the sim board at real-time pace says SATELLITE_REQUESTS to
    `wakeward satellite` (its own process) on loopback, whose Wyoming client is the
    `wyoming` package's as the tests run it (tests/host/test_satellite.py's HomeAssistant):
    per pipeline, in ms, from the device's detection line to the `detection` event and to
    the first `audio-chunk` at the client, and to `audio-stop` from the end of the clip's
    audio (the device's end of speech) and from the end of the spoken words.

    The audio clock is tied to the wall clock by the detections: at real-time pace the sim
    board reads each 10 ms frame when its time has come, so a frame's audio time plus the
    smallest (detection line's arrival - its audio time) is when it was captured."""
    sys.path.insert(0, str(REPO))
    from wakeward import sim
    from wyoming.audio import AudioChunk

    from tests.host.test_delivery import Receiver, free_port
    from tests.host.test_satellite import HomeAssistant

    folder.mkdir(parents=True, exist_ok=True)
    wav, words_end = satellite_requests(folder)
    port, wyoming = free_port(), free_port()
    satellite = Receiver(
        port,
        folder / "store",
        command=("satellite", "--wyoming", f"127.0.0.1:{wyoming}", "--no-zeroconf"),
    )
    detected: list[tuple[float, float]] = []  # (time.monotonic(), audio time s)

    def device(line: str) -> None:
        if line.startswith("detected: "):
            detected.append((time.monotonic(), float(line.split()[-2])))

    try:
        client = HomeAssistant(wyoming)
        sim.run_sim(
            wav,
            model_names=["alexa"],
            link_tcp=f"127.0.0.1:{port}",
            heap="esp32s3-psram",
            realtime=True,
            say=device,
        )
        end = time.monotonic() + _SATELLITE_WAIT_S
        while client.types().count("audio-stop") < len(detected) and time.monotonic() < end:
            time.sleep(0.01)
        received = list(client.received)
        client.close()
    finally:
        satellite.stop()
    runs: list[dict[str, float]] = []  # per pipeline: when each event first came; samples
    for at, event in received:
        if event.type == "detection":
            runs.append({"detection": at, "samples": 0})
        elif runs:
            runs[-1].setdefault(event.type, at)
            if event.type == "audio-chunk":
                runs[-1]["samples"] += len(AudioChunk.from_event(event).audio) // 2
    clock = min(line_at - audio_s for line_at, audio_s in detected)
    out: dict[str, list[float]] = {"detection": [], "chunk": [], "clip_end": [], "words": []}
    for (line_at, audio_s), run in zip(detected, runs, strict=False):
        if "audio-stop" not in run or "audio-chunk" not in run:
            continue
        words = min(t for t in words_end if t > audio_s)
        clip_end = audio_s + run["samples"] / RATE_HZ  # the pre-roll ends at the detection
        out["detection"].append(1000 * (run["detection"] - line_at))
        out["chunk"].append(1000 * (run["audio-chunk"] - line_at))
        out["clip_end"].append(1000 * (run["audio-stop"] - (clock + clip_end)))
        out["words"].append(1000 * (run["audio-stop"] - (clock + words)))
    return out


def bench_satellite(tmp: Path) -> str:
    """Home Assistant's wait: the device's detection to Wyoming's first audio-chunk, and
    the end of speech to audio-stop, on loopback at real-time pace."""
    got = satellite_latencies(tmp / "satellite")
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    n = len(got["chunk"])

    def row(what: str, key: str) -> str:
        values = got[key]
        if not values:
            return f"| {what} | not measured | not measured |"
        return f"| {what} | {statistics.median(values):.1f} | {max(values):.1f} |"

    goal = (
        f"goal <= {_SATELLITE_GOAL_MS} ms: "
        + ("met" if got["chunk"] and max(got["chunk"]) <= _SATELLITE_GOAL_MS else "not met")
        if n
        else "no pipeline came"
    )
    return "\n".join(
        [
            "## Home Assistant satellite on loopback (issue 16)",
            "",
            f"Measured {now} on {machine_line()}.",
            "",
            f"The firmware on the sim board at real-time pace (alexa model) says "
            f'{len(SATELLITE_REQUESTS)} requests ("Alexa, what time is it?" and others, '
            "espeak-ng) to `wakeward satellite` over loopback TCP, whose Wyoming client is "
            "the `wyoming` package's, as Home Assistant connects (run-satellite, describe, "
            f"ping): {n} pipelines. Times from the device's `detected:` line as the bench "
            "reads it; the end of the clip's audio (the device's end of speech, its VAD's "
            "hangover after the voice) and of the spoken words on the audio clock, tied to "
            "the wall clock by the detections. The first chunk waits for the first "
            "`clip_data` after the pre-roll (32 ms of audio). "
            f"Detection to the first audio-chunk, {goal}.",
            "",
            "| measure | median ms | max ms |",
            "| --- | --- | --- |",
            row("detection line on the device -> `detection` at the Wyoming client", "detection"),
            row("detection line on the device -> first `audio-chunk`", "chunk"),
            row("end of the clip's audio (device's end of speech) -> `audio-stop`", "clip_end"),
            row(
                "end of the spoken words -> `audio-stop` (mostly the device's hangover: "
                "firmware/clip.py HANGOVER_MS)",
                "words",
            ),
        ]
    )


BENCHMARKS: list[Callable[[Path], str]] = [
    bench_listen_loop,
    bench_frontend,
    bench_frontend_stages,
    bench_interpreter,
    bench_whole_loop,
    bench_static_counts,
    bench_loop,
    bench_satellite,
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
