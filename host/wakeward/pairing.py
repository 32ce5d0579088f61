"""Pairing: the receiver's TLS identity and one secret per device, on the owner's PC.

Everything lives in one folder (``WAKEWARD_CONFIG_DIR``, else the platform's user config
directory + ``/pairing``) that only the user can enter (0700), every file in it readable by
the user alone (0600):

- ``receiver.key`` / ``receiver.crt``: an EC P-256 key and a self-signed certificate for
  ``RECEIVER_HOSTNAME``. The device gets the certificate (DER) as its only trust anchor, so
  it talks to this receiver and no other: the certificate is pinned. It is valid from
  1970-01-01 to 9999-12-31 (RFC 5280's "no expiry"): the ESP32 port's mbedTLS checks
  validity dates against the device's clock, which nobody sets after a boot (it starts at
  the epoch), and the pin, not a date, is what makes the certificate trusted.
- ``devices.json``: per paired device its secret (hex), when it was paired and, once
  revoked, when. A revoked device's secret is forgotten; the row stays for the record.

The device proves it is paired by sending its secret inside the pinned TLS session (the
hello's ``auth`` field); the receiver compares it in constant time. Nothing here is ever
overwritten: pairing a device again needs ``renew=True`` and makes a new secret; a revoked
device is paired again only with ``again=True`` (``wakeward pair ID --again``).
"""

from __future__ import annotations

import datetime
import hmac
import json
import os
import secrets
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from wakeward.errors import WakewardError
from wakeward.files import write_atomic

RECEIVER_HOSTNAME = "wakeward-receiver"
SECRET_BYTES = 32
_CERT_NOT_BEFORE = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_CERT_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_KEY = "receiver.key"
_CERT = "receiver.crt"
_DEVICES = "devices.json"
_MAX_DEVICE_ID = 32


def default_dir() -> Path:
    """Where pairing material lives: the config file's `pairing` (wakeward/config.py),
    else `pairing` in the config folder (WAKEWARD_CONFIG_DIR overrides the platform's)."""
    from wakeward import config

    configured = config.load().pairing
    return configured if configured is not None else config.config_dir() / "pairing"


def check_device_id(device_id: str) -> str:
    """A device id as config.json and the hello carry it: 1..32 of [A-Za-z0-9_-]."""
    ok = 0 < len(device_id) <= _MAX_DEVICE_ID and all(
        c.isascii() and (c.isalnum() or c in "-_") for c in device_id
    )
    if not ok:
        raise WakewardError(
            f"device id {device_id!r}: use 1 to {_MAX_DEVICE_ID} letters, digits, '-' or '_'"
        )
    return device_id


def revoked_error(device_id: str, revoked_at: str) -> WakewardError:
    """What sim and deploy say for a revoked device: revoked, and how to pair it again."""
    return WakewardError(
        f"device {device_id!r} was revoked at {revoked_at}: the receiver refuses it; to "
        f"trust it again, run `wakeward pair {device_id} --again` (a new secret)"
    )


@dataclass(frozen=True)
class Device:
    device_id: str
    paired_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Pairing:
    """The pairing folder: the receiver identity and the paired devices."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_dir()

    # -- files --------------------------------------------------------------------------

    @property
    def key_path(self) -> Path:
        return self.folder / _KEY

    @property
    def cert_path(self) -> Path:
        return self.folder / _CERT

    @property
    def devices_path(self) -> Path:
        return self.folder / _DEVICES

    def _make_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
        os.chmod(self.folder, _DIR_MODE)

    def _write_private(self, path: Path, data: bytes) -> None:
        """Write a file only the user can read, atomically and durably."""
        write_atomic(path, lambda f: f.write(data), mode=_FILE_MODE, durable=True)

    def check_permissions(self) -> None:
        """Refuse to use pairing files that others could read or write."""
        for path in (self.folder, self.key_path, self.devices_path):
            if not path.exists():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise WakewardError(
                    f"{path}: permissions {mode:o} let other users read it; "
                    f"run `chmod {'700' if path.is_dir() else '600'} {path}`"
                )

    # -- the receiver's identity --------------------------------------------------------

    def has_identity(self) -> bool:
        return self.key_path.is_file() and self.cert_path.is_file()

    def ensure_identity(self) -> bool:
        """Create the receiver's key and certificate unless they exist; True if created."""
        if self.has_identity():
            self.check_permissions()
            return False
        if self.key_path.exists() or self.cert_path.exists():
            raise WakewardError(
                f"{self.folder}: one of {_KEY} and {_CERT} is missing; move the other away "
                "to make a new identity (paired devices then need a new deploy)"
            )
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._make_folder()
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, RECEIVER_HOSTNAME)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_CERT_NOT_BEFORE)
            .not_valid_after(_CERT_NOT_AFTER)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(RECEIVER_HOSTNAME)]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .sign(key, hashes.SHA256())
        )
        self._write_private(
            self.key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        self._write_private(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return True

    def cert_der(self) -> bytes:
        """The receiver certificate as DER: what the device pins."""
        if not self.has_identity():
            raise WakewardError(f"no receiver identity in {self.folder}: run `wakeward pair`")
        return ssl.PEM_cert_to_DER_cert(self.cert_path.read_text())

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context with the receiver's key (TLS 1.2 or newer)."""
        if not self.has_identity():
            raise WakewardError(f"no receiver identity in {self.folder}: run `wakeward pair`")
        self.check_permissions()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    # -- devices ------------------------------------------------------------------------

    def _load(self) -> dict[str, dict]:
        if not self.devices_path.is_file():
            return {}
        self.check_permissions()
        try:
            data = json.loads(self.devices_path.read_text())
        except (OSError, ValueError) as e:
            raise WakewardError(f"{self.devices_path}: unreadable ({e})") from None
        if not isinstance(data, dict):
            raise WakewardError(f"{self.devices_path}: expected an object of devices")
        return data

    def _save(self, data: dict[str, dict]) -> None:
        self._make_folder()
        self._write_private(self.devices_path, json.dumps(data, indent=2).encode() + b"\n")

    def pair(self, device_id: str, *, renew: bool = False, again: bool = False) -> str:
        """Make (with renew, replace; with again, give a revoked device) a secret; returns
        it as hex. A revoked device is paired again only with `again`, never by accident."""
        check_device_id(device_id)
        self.ensure_identity()
        data = self._load()
        row = data.get(device_id)
        revoked_at = row.get("revoked_at") if row is not None else None
        if revoked_at and not again:
            raise WakewardError(
                f"device {device_id!r} was revoked at {revoked_at}; to trust it again, run "
                f"`wakeward pair {device_id} --again` (a new secret: the device then needs "
                "a deploy)"
            )
        if again and not revoked_at:
            raise WakewardError(
                f"device {device_id!r} is not revoked: --again is for a revoked device"
                + (" (--renew replaces a paired device's secret)" if row is not None else "")
            )
        if row is not None and row.get("secret") and not renew:
            raise WakewardError(
                f"device {device_id!r} is already paired; use --renew for a new secret "
                "(the device then needs a deploy)"
            )
        secret = secrets.token_hex(SECRET_BYTES)
        data[device_id] = {"secret": secret, "paired_at": _now(), "revoked_at": None}
        self._save(data)
        return secret

    def revoked_at(self, device_id: str) -> str | None:
        """When the device was revoked, or None (paired, or never paired)."""
        row = self._load().get(device_id)
        return row.get("revoked_at") if row is not None else None

    def devices(self) -> list[Device]:
        return [
            Device(device_id, row.get("paired_at", ""), row.get("revoked_at"))
            for device_id, row in sorted(self._load().items())
        ]

    def revoke(self, device_id: str) -> None:
        """Forget the device's secret: it is refused from now on (the row stays)."""
        data = self._load()
        row = data.get(device_id)
        if row is None:
            raise WakewardError(f"no paired device {device_id!r} (see `wakeward devices`)")
        if row.get("revoked_at"):
            raise WakewardError(f"device {device_id!r} was already revoked at {row['revoked_at']}")
        row["secret"] = None
        row["revoked_at"] = _now()
        self._save(data)

    def secret(self, device_id: str) -> str:
        """The active secret of a paired device (for its deploy)."""
        row = self._load().get(device_id)
        if row is not None and row.get("revoked_at"):
            raise revoked_error(device_id, row["revoked_at"])
        if row is None or not row.get("secret"):
            raise WakewardError(
                f"device {device_id!r} is not paired: run `wakeward pair {device_id}`"
            )
        return str(row["secret"])

    def accepts(self, device_id: str, secret: bytes | str) -> bool:
        """True when this is a paired, not revoked device presenting its own secret."""
        return self.refusal(device_id, secret) is None

    def refusal(self, device_id: str, secret: bytes | str) -> str | None:
        """Why the receiver refuses this device ("not paired", "revoked", "no secret",
        "wrong secret"), or None for a paired, not revoked device presenting its secret."""
        row = self._load().get(device_id)
        if row is None:
            return "not paired"
        if not row.get("secret"):
            return "revoked" if row.get("revoked_at") else "not paired"
        given = secret.hex() if isinstance(secret, bytes) else secret
        if not given:
            return "no secret"
        if not hmac.compare_digest(given.encode(), str(row["secret"]).encode()):
            return "wrong secret"
        return None
