"""Pairing material: the receiver identity, device secrets, permissions, revocation."""

from __future__ import annotations

import os
import ssl
import stat

import pytest
from wakeward import cli, pairing
from wakeward.errors import WakewardError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_identity_is_made_once_and_readable_by_the_user_alone(tmp_path):
    pairs = pairing.Pairing(tmp_path / "p")
    assert pairs.ensure_identity() is True
    key = pairs.key_path.read_bytes()
    assert pairs.ensure_identity() is False  # never overwritten
    assert pairs.key_path.read_bytes() == key
    assert mode(pairs.folder) == 0o700
    assert mode(pairs.key_path) == 0o600
    assert mode(pairs.cert_path) == 0o600


def test_certificate_names_the_receiver_and_loads_as_a_server(tmp_path):
    from cryptography import x509

    pairs = pairing.Pairing(tmp_path)
    pairs.ensure_identity()
    cert = x509.load_der_x509_certificate(pairs.cert_der())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [pairing.RECEIVER_HOSTNAME]
    ctx = pairs.server_context()
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_secret_accepts_only_its_device_until_revoked(tmp_path):
    pairs = pairing.Pairing(tmp_path)
    a = pairs.pair("kitchen")
    b = pairs.pair("hall")
    assert len(bytes.fromhex(a)) == pairing.SECRET_BYTES
    assert a != b
    assert mode(pairs.devices_path) == 0o600
    assert pairs.accepts("kitchen", a)
    assert pairs.accepts("kitchen", bytes.fromhex(a))
    assert not pairs.accepts("kitchen", b)
    assert not pairs.accepts("garage", a)
    pairs.revoke("kitchen")
    assert not pairs.accepts("kitchen", a)
    assert pairs.accepts("hall", b)
    rows = {d.device_id: d for d in pairs.devices()}
    assert not rows["kitchen"].active and rows["kitchen"].revoked_at
    assert rows["hall"].active
    assert a not in pairs.devices_path.read_text()  # a revoked secret is forgotten


def test_pairing_again_needs_renew(tmp_path):
    pairs = pairing.Pairing(tmp_path)
    first = pairs.pair("kitchen")
    with pytest.raises(WakewardError, match="already paired"):
        pairs.pair("kitchen")
    assert pairs.secret("kitchen") == first
    second = pairs.pair("kitchen", renew=True)
    assert second != first
    assert not pairs.accepts("kitchen", first)


@pytest.mark.parametrize("bad", ["", "a" * 33, "kitchen speaker", "küche", "../x"])
def test_bad_device_ids_are_refused(tmp_path, bad):
    with pytest.raises(WakewardError, match="device id"):
        pairing.Pairing(tmp_path).pair(bad)


def test_files_others_can_read_are_refused(tmp_path):
    pairs = pairing.Pairing(tmp_path)
    pairs.pair("kitchen")
    os.chmod(pairs.devices_path, 0o644)
    with pytest.raises(WakewardError, match="chmod 600"):
        pairs.accepts("kitchen", "00")


def test_half_an_identity_is_not_replaced(tmp_path):
    pairs = pairing.Pairing(tmp_path)
    pairs.ensure_identity()
    pairs.cert_path.unlink()
    key = pairs.key_path.read_bytes()
    with pytest.raises(WakewardError, match="missing"):
        pairs.ensure_identity()
    assert pairs.key_path.read_bytes() == key


def test_revoking_an_unknown_device_names_it(tmp_path):
    with pytest.raises(WakewardError, match="garage"):
        pairing.Pairing(tmp_path).revoke("garage")


def test_pair_and_devices_commands(tmp_path, capsys):
    where = ["--pairing", str(tmp_path)]
    assert cli.main(["pair", "kitchen", *where]) == 0
    assert cli.main(["devices", *where]) == 0
    assert "kitchen" in capsys.readouterr().out
    assert cli.main(["pair", "kitchen", *where]) == 1
    assert "already paired" in capsys.readouterr().err
    assert cli.main(["devices", "--revoke", "kitchen", *where]) == 0
    assert cli.main(["devices", *where]) == 0
    assert "revoked" in capsys.readouterr().out


def test_pair_takes_the_older_dir_option_too(tmp_path, capsys):
    assert cli.main(["pair", "hall", "--dir", str(tmp_path)]) == 0
    assert cli.main(["devices", "--pairing", str(tmp_path)]) == 0
    assert "hall" in capsys.readouterr().out


def test_a_revoked_device_is_named_revoked_and_repairing_it_is_explicit(tmp_path, capsys):
    pairs = pairing.Pairing(tmp_path)
    first = pairs.pair("kitchen")
    pairs.revoke("kitchen")
    with pytest.raises(WakewardError, match=r"revoked .*wakeward pair kitchen --again"):
        pairs.secret("kitchen")
    with pytest.raises(WakewardError, match=r"was revoked .*--again"):
        pairs.pair("kitchen")
    with pytest.raises(WakewardError, match=r"was revoked .*--again"):
        pairs.pair("kitchen", renew=True)
    assert not pairs.devices()[0].active  # still revoked: nothing changed silently
    where = ["--pairing", str(tmp_path)]
    assert cli.main(["pair", "kitchen", *where]) == 1
    assert "--again" in capsys.readouterr().err
    assert cli.main(["pair", "kitchen", "--again", *where]) == 0
    assert "paired kitchen again" in capsys.readouterr().out
    assert pairs.devices()[0].active
    assert pairs.secret("kitchen") != first


def test_again_is_only_for_a_revoked_device(tmp_path):
    pairs = pairing.Pairing(tmp_path)
    with pytest.raises(WakewardError, match="not revoked"):
        pairs.pair("kitchen", again=True)
    pairs.pair("kitchen")
    with pytest.raises(WakewardError, match="not revoked"):
        pairs.pair("kitchen", again=True)


def test_sim_and_deploy_say_revoked(tmp_path):
    import numpy as np
    from wakeward import audio, deploy, sim

    audio.write_wav(tmp_path / "x.wav", np.zeros(1600, np.int16))
    pairs = pairing.Pairing(tmp_path)
    pairs.pair("sim")
    pairs.revoke("sim")
    with pytest.raises(WakewardError, match=r"'sim' was revoked .*wakeward pair sim --again"):
        sim.run_sim(tmp_path / "x.wav", link_tcp="127.0.0.1:1", tls=pairs)
    revoked = r"'sim' was revoked .*wakeward pair sim --again"
    bundle = deploy.prepare(link="127.0.0.1:7000", device_id="sim", pairing_dir=tmp_path)
    with pytest.raises(WakewardError, match=revoked), bundle:
        pass
