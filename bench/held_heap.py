"""Heap held once a model is ready, on the unix port in use (docs/port32.md).

    .venv/bin/python bench/held_heap.py [MODEL ...]     # default: alexa

An 8 MB heap, the compiled firmware (.mpy) on the module path, and `gc.collect();
gc.mem_alloc()` before and after `import wakeword`, after `tflm.model.load(model)` and after
`Interpreter(model)`: the firmware code, the model's bytes and the prepared interpreter.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from wakeward import models, unixport

HEAP = "esp32s3-psram"
SCRIPT = """
import gc
import sys
gc.collect()
start = gc.mem_alloc()
import wakeword
from tflm import interpreter, model
gc.collect()
code = gc.mem_alloc()
m = model.load(sys.argv[1])
gc.collect()
loaded = gc.mem_alloc()
it = interpreter.Interpreter(m)
gc.collect()
ready = gc.mem_alloc()
print(code - start, loaded - code, ready - loaded, ready - start)
"""


def held(model: str, folder: Path) -> list[int]:
    """[firmware code, model bytes, prepared interpreter, in all] in bytes."""
    script = folder / "held_heap.py"
    script.write_text(SCRIPT)
    path = Path(models.resolve(model)).resolve()
    done = unixport.run(script, [str(path)], heap=HEAP, cwd=folder, timeout_s=120)
    if done.returncode != 0:
        raise RuntimeError(f"{model}: {(done.stdout + done.stderr).decode(errors='replace')}")
    return [int(v) for v in done.stdout.split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=["alexa"])
    args = parser.parse_args()
    print("| model | firmware code | model bytes | prepared interpreter | in all |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="wakeward-held-heap-") as tmp:
        for model in args.models:
            cells = " | ".join(f"{v:,}" for v in held(model, Path(tmp)))
            print(f"| {Path(model).name} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
