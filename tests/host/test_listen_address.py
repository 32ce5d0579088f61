"""`wakeward listen --tcp HOST:PORT`: an address it cannot listen on is a clear error."""

from __future__ import annotations

import pytest
from wakeward import cli


@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:65536", ":4294967296"])
def test_a_port_out_of_range_is_named(tmp_path, capsys, address):
    code = cli.main(["listen", "--tcp", address, "--once", "--store", str(tmp_path / "clips")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == f"wakeward: --tcp {address!r} is not HOST:PORT (a port is 0 to 65535)"
    assert not (tmp_path / "clips").exists()  # refused before anything was made


@pytest.mark.parametrize("address", ["127.0.0.1:\u00b2", "127.0.0.1:", "nohost"])
def test_a_port_that_is_not_a_number_is_named(tmp_path, capsys, address):
    code = cli.main(["listen", "--tcp", address, "--once", "--store", str(tmp_path / "clips")])
    assert code == 1
    assert capsys.readouterr().err.strip() == f"wakeward: --tcp {address!r} is not HOST:PORT"
