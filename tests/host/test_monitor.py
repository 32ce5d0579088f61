"""`wakeward monitor`: records parsed (bad lines named by number), the terminal chart from a
recorded stream (no terminal needed), the PNG (matplotlib's Agg canvas, its size checked),
and the command fed by `wakeward sim --json` through a pipe and by --sim."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from wakeward import cli, monitor
from wakeward.errors import WakewardError

from tests.firmware.test_vad import bursts_wav

WAKEWARD = [sys.executable, "-m", "wakeward"]


def record(t: float, model: str, p: int, detected: bool = False) -> str:
    return json.dumps({"t": t, "model": model, "p": p, "detected": detected})


def recorded_stream() -> list[str]:
    """Two models, 3 s at 30 ms per invocation: alexa rises over its cutoff around 1.5 s
    and is detected there; hey_jarvis stays low."""
    lines = []
    for i in range(100):
        t = round(0.03 * (i + 1), 2)
        p = 250 if 45 <= i <= 52 else 10
        lines.append(record(t, "alexa", p, detected=i == 50))
        lines.append(record(t, "hey_jarvis", 20))
    return lines


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("heard: speech 0.5-1.5 s", "line 7: not JSON ('heard: speech 0.5-1.5 s')"),
        ("[1, 2]", "line 7: not a JSON object ('[1, 2]')"),
        ('{"t": 1, "model": "alexa"}', "line 7: no p, detected in "),
        ('{"t": -1, "model": "a", "p": 1, "detected": false}', "line 7: t -1 is not a time"),
        ('{"t": 1, "model": "", "p": 1, "detected": false}', "line 7: model '' is not a model"),
        ('{"t": 1, "model": "a", "p": 256, "detected": false}', "line 7: p 256 is not a model"),
        ('{"t": 1, "model": "a", "p": 0.5, "detected": false}', "line 7: p 0.5 is not a model"),
        ('{"t": 1, "model": "a", "p": 1, "detected": 1}', "line 7: detected 1 is not true"),
    ],
)
def test_a_bad_line_is_named_by_its_number(line, message):
    with pytest.raises(WakewardError) as e:
        monitor.parse_line(line, 7)
    assert str(e.value).startswith(message)


def test_a_record_and_a_blank_line():
    assert monitor.parse_line(record(0.05, "alexa", 3), 1) == (0.05, "alexa", 3, False)
    assert monitor.parse_line("  \n", 2) is None


def test_the_cutoff_is_the_manifests_as_the_device_compares_it():
    rule = monitor.rule_for("alexa")
    assert (rule.cutoff, rule.window, rule.known) == (0.9, 5, True)
    assert rule.cutoff_u8 == 229  # int(0.9 * 255), as firmware/wakeword.py truncates it
    unknown = monitor.rule_for("../../etc/passwd")  # a name from the stream is not a path
    assert (unknown.cutoff, unknown.window, unknown.known) == (0.9, 5, False)


def test_the_window_mean_follows_the_device_and_resets_after_a_detection():
    m = monitor.Monitor()
    for i, p in enumerate([100, 200, 250, 250, 250, 250]):
        m.add(monitor.Invocation(0.03 * i, "alexa", p, detected=i == 4))
    trace = m.traces["alexa"]
    assert trace.mean[:5] == [20, 60, 110, 160, 210]  # zeros before the first outputs
    assert trace.mean[5] == 50  # the window was zeroed at the detection
    assert trace.detections == [0.12]


def test_the_terminal_chart_from_a_recorded_stream():
    m = monitor.Monitor()
    for line in recorded_stream():
        m.feed(line)
    assert not m.bad
    lines = monitor.render(m, width=80, rows=8)
    assert len(lines) == 2 * (1 + 1 + 8 + 1)  # per model: header, markers, rows, time axis
    assert all(len(line) <= 80 for line in lines)
    alexa, jarvis = lines[:11], lines[11:]
    assert alexa[0] == ("alexa: p 0.04, peak 0.98 at 1.38 s, 1 detection; cutoff 0.90 (mean of 5)")
    assert jarvis[0].startswith("hey_jarvis: p 0.08, peak 0.08 at 0.03 s, 0 detections; cutoff")
    # the detection's marker sits above the column of its time (1.53 s of 0.03..3.0 s)
    marks = [i for i, ch in enumerate(alexa[1]) if ch == "▼"]
    cols = 80 - 6
    assert marks == [6 + int((1.53 - 0.0) / (3.0 / cols))]
    # the cutoff row (0.90 of 8 rows: the top one) is dashed where the bars do not reach
    assert alexa[2].startswith(" 0.90│┄") and "▇" in alexa[2]  # 250/255: 7 eighths of it
    assert jarvis[2].startswith(" 0.97│┄┄┄")
    assert alexa[9].startswith("    0│")
    assert alexa[10].split() == ["0.0", "s", "3.0", "s"]
    assert "\x1b[" not in "".join(lines)  # no colour unless asked


def test_the_chart_in_ascii_with_colour():
    m = monitor.Monitor()
    for line in recorded_stream():
        m.feed(line)
    lines = monitor.render(m, width=60, color=True, ascii_only=True)
    text = "".join(lines)
    assert "\x1b[31mv\x1b[0m" in text  # the detection, red
    assert "\x1b[33m#\x1b[0m" in text  # a bar above the cutoff, yellow
    assert "▼" not in text and "█" not in text


def test_the_live_chart_follows_the_last_seconds():
    m = monitor.Monitor()
    for i in range(1000):  # 30 s
        m.add(monitor.Invocation(0.03 * (i + 1), "alexa", 5, False))
    lines = monitor.render(m, width=70, span_s=10.0)
    assert lines[10].split() == ["20.0", "s", "30.0", "s"]


def test_the_png_from_a_recorded_stream(tmp_path):
    m = monitor.Monitor()
    for line in recorded_stream():
        m.feed(line)
    out = monitor.save_png(m, tmp_path / "sub" / "p.png", size=(640, 480), title="test")
    assert out.is_file() and png_size(out) == (640, 480)
    monitor.save_png(m, tmp_path / "d.png")
    assert png_size(tmp_path / "d.png") == monitor.default_size(2) == (1000, 600)


def test_monitor_a_recorded_file_to_png(tmp_path, capsys):
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(recorded_stream()) + "\n")
    rc = cli.main(["monitor", str(rec), "--save", str(tmp_path / "m.png"), "--size", "800x500"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.startswith("alexa: p 0.04, peak 0.98 at 1.38 s, 1 detection; cutoff 0.90")
    assert err == f"wakeward monitor: plot saved to {tmp_path / 'm.png'}\n"
    assert png_size(tmp_path / "m.png") == (800, 500)


def test_bad_lines_are_reported_skipped_and_fail_the_run(tmp_path, capsys):
    lines = recorded_stream()[:10]
    lines[2] = "heard: speech 0.5-1.5 s"
    lines[4] = '{"t": 0.1, "model": "alexa", "p": 300, "detected": false}'
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(lines) + "\n")
    rc = cli.main(["monitor", str(rec), "--save", str(tmp_path / "m.png")])
    out, err = capsys.readouterr()
    assert rc == 1
    assert err.splitlines() == [
        "wakeward monitor: line 3: not JSON ('heard: speech 0.5-1.5 s'); the input is "
        "`wakeward sim --json` output",
        "wakeward monitor: line 5: p 300 is not a model output 0..255",
        f"wakeward monitor: plot saved to {tmp_path / 'm.png'}",
        "wakeward: 2 bad input lines skipped (first: line 3: not JSON ('heard: speech "
        "0.5-1.5 s'); the input is `wakeward sim --json` output)",
    ]
    assert out.startswith("alexa: ")  # the good lines are still charted


def test_no_records_is_an_error(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("\n")
    assert cli.main(["monitor", str(tmp_path / "empty.jsonl")]) == 1
    assert "wakeward: no model invocations in the input" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "wakeward: monitor: give the records' source: - (stdin"),
        (["-", "--sim", "x.wav"], "wakeward: monitor: give the records' source"),
        (["--sim", "x.wav"], "wakeward: monitor --sim: name at least one --model"),
        (["nope.jsonl"], "wakeward: nope.jsonl: No such file or directory"),
        (["-", "--model", "nope.tflite"], "wakeward: nope.tflite: no such model file"),
        (["-", "--size", "12x5000"], "wakeward: --size '12x5000': WIDTHxHEIGHT in pixels"),
    ],
)
def test_monitor_refusals(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["monitor", *args]) == 1
    assert capsys.readouterr().err.startswith(message)


def test_save_without_matplotlib_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(recorded_stream()) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert cli.main(["monitor", str(rec), "--save", str(tmp_path / "m.png")]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # refused before reading anything
    assert err == f"wakeward: {monitor.PLOT_HINT}\n"
    assert not (tmp_path / "m.png").exists()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_live_view_redraws_in_place(monkeypatch):
    monkeypatch.setattr(monitor, "REDRAW_S", 0.0)
    out = Tty()
    monitor.run(recorded_stream()[:6], out=out, err=io.StringIO(), live=True)
    text = out.getvalue()
    draws = text.split("\x1b[J")
    assert len(draws) == 6 + 1 + 1  # one per record, the final whole chart, the text before
    assert draws[0] == "" and "\x1b[" + str(2 * 11) + "F" in draws[-2]  # back up, redraw


def test_sim_json_piped_into_monitor(tmp_path):
    """The real thing: `wakeward sim x.wav --model alexa --json | wakeward monitor - --save`."""
    bursts_wav(tmp_path / "in.wav", [(0.5, 1.5)], 3.0)
    sim = subprocess.Popen(
        [*WAKEWARD, "sim", "in.wav", "--model", "alexa", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    done = subprocess.run(
        [*WAKEWARD, "monitor", "-", "--save", "m.png", "--size", "700x300"],
        cwd=tmp_path,
        stdin=sim.stdout,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert sim.wait(timeout=300) == 0
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("alexa: ") and "0 detections; cutoff 0.90" in done.stdout
    assert done.stdout.splitlines()[-1].split()[-2:] == ["3.0", "s"]
    assert png_size(tmp_path / "m.png") == (700, 300)


def test_monitor_runs_the_sim_itself(tmp_path):
    bursts_wav(tmp_path / "in.wav", [(0.5, 1.5)], 2.0)
    done = subprocess.run(
        [*WAKEWARD, "monitor", "--sim", "in.wav", "--model", "alexa"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("alexa: ")
    assert "heard: speech 0.5" in done.stderr  # the firmware's own lines, beside the chart


def test_monitor_saves_a_jpeg_or_refuses_the_extension(tmp_path, capsys):
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(recorded_stream()) + "\n")
    rc = cli.main(["monitor", str(rec), "--save", str(tmp_path / "m.jpg"), "--size", "400x300"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "m.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG, not a PNG
    capsys.readouterr()
    assert cli.main(["monitor", str(rec), "--save", str(tmp_path / "m.bmp")]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # refused before reading anything
    assert err.startswith(
        "wakeward: --save m.bmp: cannot write a .bmp file; give a name ending in "
    )
    assert ".jpg" in err and ".png" in err and ".svg" in err
    assert not (tmp_path / "m.bmp").exists()
    assert cli.main(["monitor", str(rec), "--save", str(tmp_path / "noext")]) == 1
    assert "cannot write a file without an extension" in capsys.readouterr().err
