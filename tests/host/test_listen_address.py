"""`wakeward listen --tcp HOST:PORT`: an address it cannot listen on is a clear error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from wakeward import cli, devicerequests, receiver
from wakeward.errors import WakewardError

from tests.host.loglines import LOG_PREFIX, plain

WAIT_S = 30.0


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


def test_an_empty_host_listens_on_all_interfaces_and_says_so(tmp_path):
    """`--tcp :PORT` is the usual "every interface", with the plain-TCP warning."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wakeward", "listen", "--tcp", ":0", "--once"]
        + ["--store", str(tmp_path / "clips")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    port = int(plain(first).split()[2].split(":")[1].rstrip(","))
    socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
    proc.wait(timeout=WAIT_S)
    rest = proc.stdout.read()  # through the same reader: readline() may hold lines already
    assert plain(first).startswith(f"listening on 0.0.0.0:{port},"), first + rest
    assert any(
        LOG_PREFIX.match(x) and " WARNING plain TCP, no TLS" in x for x in rest.splitlines()
    ), rest
    assert proc.returncode == 0, rest


def test_every_command_reads_tcp_the_same_way():
    """One parser (listen's, and ListenOptions for monitor, record and satellite): an empty
    host means every interface, and a port out of range is named."""
    options = devicerequests.ListenOptions.parse(tcp=":7000")
    assert (options.host, options.port) == ("0.0.0.0", 7000)
    assert receiver.parse_tcp(":7000") == ("0.0.0.0", 7000)
    with pytest.raises(WakewardError, match="a port is 0 to 65535"):
        devicerequests.ListenOptions.parse(tcp="a:65536")
