"""The smallest MicroPython heap (`-X heapsize=`) the firmware needs, on the unix port in use.

    .venv/bin/python bench/min_heap.py                  # PyPI's 64-bit port
    WAKEWARD_MICROPYTHON=... WAKEWARD_MPY_CROSS=... WAKEWARD_MPY_ARCH=x86 \\
        .venv/bin/python bench/min_heap.py              # a 32-bit build (docs/port32.md)

For each pymicro-wakeword model: firmware/wakeword.py's WakeWord loads and prepares it
(firmware/tflm) and runs it on 3 x 100 frames (100 invocations); and the whole device loop
of `make demo` (bench/run.py's loop: sim board, alexa, clips streamed to a receiver).
Each is bisected with bench/run.py's smallest_heap, then tried every --step bytes around
the result (fitting is not monotonic in the heap size); a run fits when it ends without
error having done all its work. The model runs import the firmware and the driver below as
.mpy (no compiling on the heap); the loop runs firmware/main.py as `make demo` does, so
there the port compiles firmware/*.py on the heap. Run it again with another port to
compare the two.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import run  # bench/run.py, beside this file
from wakeward import models, unixport

# Runs on the unix port. Frames come from a small LCG (values stay small ints on 32 bits:
# no long-int allocations in the driver itself).
DRIVER = """
import wakeword


def run(name, path, cutoff, window, invocations):
    ww = wakeword.WakeWord(name, path, cutoff, window)
    frame = bytearray(wakeword.FEATURES)
    x = 1
    for _ in range(invocations * wakeword.FRAMES_PER_INVOCATION):
        for i in range(wakeword.FEATURES):
            x = (x * 75 + 74) % 65537
            frame[i] = x & 0xFF
        ww.add_frame(frame)
    print("ran", ww.invocations, ww.p)
"""


def port_line() -> str:
    """Which port: executable, word size, native arch of the compiled firmware."""
    code = "import sys; print(64 if sys.maxsize > 2**32 else 32, sys.implementation._mpy)"
    done = unixport.run(code=code, timeout_s=30)
    bits, mpy = done.stdout.decode().split()
    return (
        f"{unixport.micropython_exe()}: {bits}-bit, firmware compiled with "
        f"-march={unixport.mpy_arch()} (sys.implementation._mpy {mpy})"
    )


def compile_driver(folder: Path) -> None:
    source = folder / "_min_heap_driver.py"
    source.write_text(DRIVER)
    subprocess.run(
        [str(unixport.mpy_cross_exe()), "-o", str(source.with_suffix(".mpy")), str(source)],
        check=True,
        capture_output=True,
    )
    source.unlink()


def model_fits(name: str, invocations: int, folder: Path) -> Callable[[str], bool]:
    """fits(heap profile) for one model: loads, prepares and invokes `invocations` times."""
    path = models.resolve(name)
    micro = (models.manifest(path) or {}).get("micro", {})
    cutoff = int(micro.get("probability_cutoff", 0.5) * 255)
    window = int(micro.get("sliding_window_size", 5))
    code = (
        "import _min_heap_driver as d\n"
        f"d.run({name!r}, {str(path)!r}, {cutoff}, {window}, {invocations})"
    )

    def fits(heap: str) -> bool:
        done = unixport.run(code=code, heap=heap, cwd=folder, extra_paths=[folder], timeout_s=600)
        text = done.stdout.decode(errors="replace")
        return done.returncode == 0 and f"ran {invocations} " in text

    return fits


def measure(fits: Callable[[str], bool], args: argparse.Namespace) -> dict[str, int | None]:
    """Bisect, then try every `step` bytes around the result: a heap that fits does not
    mean every larger one does (where the big buffers land in the heap moves with its
    size). lowest: the smallest size seen to fit; from: every size tried from there up to
    the top of the scan fits; failures: sizes above `lowest` in the scan that do not."""
    found = run.smallest_heap(fits, args.lo, args.hi, args.within)
    if found is None:
        return {"bisection": None, "lowest": None, "from": None, "failures": 0, "top": args.hi}
    sizes = range(
        max(args.lo, int(found * (1 - args.below)) // args.step * args.step),
        int(found * (1 + args.above)),
        args.step,
    )
    results = {found: True}
    for size in sizes:
        unixport.HEAP_PROFILES["min_heap"] = size
        results[size] = fits("min_heap")
    unixport.HEAP_PROFILES.pop("min_heap", None)
    ordered = sorted(results)
    lowest = min(size for size in ordered if results[size])
    stable = ordered[-1]
    for size in reversed(ordered):
        if not results[size]:
            break
        stable = size
    failures = sum(1 for size in ordered if size > lowest and not results[size])
    return {
        "bisection": found,
        "lowest": lowest,
        "from": stable if results[ordered[-1]] else None,
        "failures": failures,
        "top": ordered[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=list(models.BUILTIN))
    parser.add_argument("--invocations", type=int, default=100)
    parser.add_argument("--within", type=int, default=256, help="bisection resolution, bytes")
    parser.add_argument("--step", type=int, default=1024, help="scan step, bytes")
    parser.add_argument("--below", type=float, default=0.05, help="scan this fraction below")
    parser.add_argument("--above", type=float, default=0.25, help="scan this fraction above")
    parser.add_argument("--lo", type=int, default=16_000, help="a heap that fails")
    parser.add_argument("--hi", type=int, default=2_000_000, help="a heap that fits")
    parser.add_argument("--no-loop", action="store_true", help="models only")
    parser.add_argument(
        "--wav", type=Path, help="the loop's recording (default: synthesise `make demo`'s; "
        "sox dithers, so each synthesis differs a little: pass one file to compare ports)"
    )  # fmt: skip
    parser.add_argument(
        "--save", type=Path, metavar="FIGURES.json", help="also write the figures there (JSON)"
    )
    args = parser.parse_args()

    port = port_line()
    print(f"port: {port}", flush=True)
    rows: list[tuple[str, dict[str, int | None]]] = []
    with tempfile.TemporaryDirectory(prefix="wakeward-min-heap-") as tmp:
        folder = Path(tmp)
        compile_driver(folder)
        jobs: list[tuple[str, Callable[[str], bool]]] = [
            (f"{name}: load, prepare, {args.invocations} invocations",
             model_fits(name, args.invocations, folder))
            for name in args.models
        ]  # fmt: skip
        if not args.no_loop:
            from wakeward import demo

            wav = args.wav or demo.make_recording(folder / "loop" / "demo.wav")
            jobs.append(
                (
                    "whole device loop of `make demo` (alexa, link, clips)",
                    lambda heap: run.loop_runs(wav, heap, realtime=False)[0],
                )
            )
        for what, fits in jobs:
            rows.append((what, measure(fits, args)))
            print(f"  {what}: {rows[-1][1]}", flush=True)

    def cell(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    print()
    print(f"port: {port}")
    print(
        f"scan: every {args.step:,} bytes from {args.below:.0%} below to {args.above:.0%} "
        "above the bisection"
    )
    print()
    print("| smallest -X heapsize (bytes) | bisection | lowest that fits "
          "| fits at every size from | sizes above lowest that fail |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    for what, got in rows:
        print(
            f"| {what} | {cell(got['bisection'])} | {cell(got['lowest'])} "
            f"| {cell(got['from'])} | {got['failures']} |"
        )
    if args.save:
        args.save.write_text(json.dumps({"port": port, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
