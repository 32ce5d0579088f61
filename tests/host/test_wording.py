from wakeward.wording import plural


def test_plural():
    assert plural(1, "clip") == "1 clip"
    assert plural(0, "clip") == "0 clips"
    assert plural(2, "false accept") == "2 false accepts"
    assert plural(1, "false accept") == "1 false accept"
    assert plural(3, "try", "tries") == "3 tries"
