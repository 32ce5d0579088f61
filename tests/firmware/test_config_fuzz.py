"""config.json fuzzed: the firmware's config loader (config.load) either accepts a mutant or
refuses it with ConfigError naming the problem; no other exception, no hang. Mutants are
seeded: fields deleted, replaced by values of every JSON type and extreme sizes, unknown
fields added, the JSON text itself damaged, and very deep nesting."""

from __future__ import annotations

import copy
import json

import numpy as np

from tests import fuzzing

MUTANTS = 1000 * fuzzing.SCALE
SEED = fuzzing.seed(1414)
SECRET = "ab" * 32

BASE = {
    "board": "sim",
    "board_options": {"wav": "x.wav", "realtime": False, "events": "ev.jsonl",
                      "button": [[100, 200]]},
    "device_id": "kitchen",
    "models": [{"path": "a.tflite", "name": "a", "probability_cutoff": 0.5,
                "sliding_window_size": 5}],
    "trace": False,
    "link": {"tcp": "192.168.1.2:7000", "tls": {"cert": "r.der"}, "secret": SECRET,
             "queue_max_clips": 4, "queue_max_kb": 512, "retry_min_ms": 100,
             "retry_max_ms": 5000, "timeout_ms": 200, "ack_timeout_ms": 1000,
             "status_interval_ms": 1000, "requests": "paired"},
    "wifi": {"ssid": "home", "password": "pw"},
    "clip": {"pre_roll_ms": 500, "max_ms": 4000},
}  # fmt: skip

VALUES = [None, True, False, 0, 1, -1, 65535, 65536, 2**31 - 1, 2**31, 2**63, -(2**63),
          10**30, 0.5, -0.5, 1e308, "", "x", "a:1", ":", "x" * 2000, "\u0000", "\u00e9",
          [], {}, [[]], [[1, 2, 3]], [None], {"": 1}, {"cert": 1}]  # fmt: skip

CHECK = """
import config, gc
accepted = refused = 0
for k in range(COUNT):
    try:
        config.load("c%d.json" % k)
        accepted += 1
    except config.ConfigError:
        refused += 1
    except Exception as e:
        print("ESCAPED", k, type(e).__name__, e)
    gc.collect()
print("accepted", accepted, "refused", refused)
"""


def paths(value, at=()):
    """Every (path to a container, key) in the config."""
    if isinstance(value, dict):
        for key, v in value.items():
            yield at, key
            yield from paths(v, (*at, key))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield at, i
            yield from paths(v, (*at, i))


def mutate(rng: np.random.Generator) -> bytes:
    cfg = copy.deepcopy(BASE)
    for _ in range(int(rng.integers(1, 4))):
        spots = list(paths(cfg))
        if not spots:
            break
        at, key = spots[int(rng.integers(len(spots)))]
        parent = cfg
        for step in at:
            parent = parent[step]
        kind = rng.integers(0, 4)
        if kind == 0 and isinstance(parent, dict):
            del parent[key]
        elif kind == 1 and isinstance(parent, dict):
            parent[f"unknown_{rng.integers(10)}"] = VALUES[int(rng.integers(len(VALUES)))]
        elif kind == 2:
            parent[key] = [parent[key]]
        else:
            parent[key] = copy.deepcopy(VALUES[int(rng.integers(len(VALUES)))])
    text = bytearray(json.dumps(cfg).encode())
    if rng.random() < 0.2:  # damage the text: bytes flipped (invalid UTF-8 too) or cut
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(1, 4))):
                text[int(rng.integers(len(text)))] = int(rng.integers(0, 256))
        else:
            text = text[: int(rng.integers(len(text)))]
    return bytes(text)


def test_fuzzed_configs_are_accepted_or_refused_by_name(mp):
    rng = np.random.default_rng(SEED)
    blobs = [mutate(rng) for _ in range(MUTANTS - 3)]
    blobs += [b"[" * 20000, b'{"board": ' + b"[" * 20000, json.dumps(BASE).encode()]
    for k, blob in enumerate(blobs):
        (mp.cwd / f"c{k}.json").write_bytes(blob)
    out = mp.output(CHECK.replace("COUNT", str(len(blobs))), timeout_s=120)
    assert "ESCAPED" not in out, out
    summary = out.strip().splitlines()[-1].split()
    accepted, refused = int(summary[1]), int(summary[3])
    assert accepted + refused == len(blobs)
    assert accepted > 0 and refused > 0
