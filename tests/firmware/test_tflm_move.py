"""Data movement kernels (firmware/tflm/move.py), in checked 32-bit mode."""

from __future__ import annotations

import pytest

from tests import int32check
from tests.conftest import FIRMWARE


@pytest.fixture(scope="module")
def move():
    return int32check.load(FIRMWARE / "tflm" / "move.py")


def test_runs_merge_contiguous_triples(move):
    assert list(move.runs([(0, 10, 4), (4, 14, 2), (8, 0, 3), (11, 3, 0)])) == [0, 10, 6, 8, 0, 3]


def test_copy_runs_moves_each_run(move):
    src = bytes(range(20))
    dst = bytearray(12)
    table = move.runs([(2, 0, 3), (10, 5, 4), (0, 11, 1)])
    move.copy_runs(dst, src, table, len(table) // 3)
    assert dst == bytes([2, 3, 4, 0, 0, 10, 11, 12, 13, 0, 0, 0])


def test_map_bytes_applies_the_table(move):
    lut = bytes((255 - i) for i in range(256))
    src = bytes([0, 1, 128, 255])
    dst = bytearray(4)
    move.map_bytes(dst, src, lut, 4)
    assert dst == bytes([255, 254, 127, 0])


def test_copy_runs_word_and_byte_paths_agree(move):
    src = bytes((7 * i + 3) & 0xFF for i in range(200))
    runs = [(0, 0, 64), (64, 100, 36), (5, 140, 13), (101, 153, 4), (120, 160, 20)]
    dst = bytearray(200)
    table = move.runs(runs)
    move.copy_runs(dst, src, table, len(table) // 3)
    expected = bytearray(200)
    for s, d, n in runs:
        expected[d : d + n] = src[s : s + n]
    assert dst == expected
