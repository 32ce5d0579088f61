"""The board's serial port: can we open it? A missing, busy or forbidden port gets a message
that names it and says what to do, before esptool or mpremote touch the board, and when
`wakeward listen --serial` opens it."""

from __future__ import annotations

import errno
from typing import Any

from wakeward.errors import WakewardError

DEFAULT_BAUD = 115200  # what a USB CDC port ignores, and MicroPython's UART REPL speed

# pyserial's exclusive open takes a flock (LOCK_EX | LOCK_NB): EAGAIN/EWOULDBLOCK when another
# program (mpremote, esptool, a terminal that locks) holds it; EBUSY when a program set TIOCEXCL.
_BUSY = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}


def available_ports() -> list[str]:
    """The serial ports pyserial sees on this computer."""
    from serial.tools import list_ports  # type: ignore[import-untyped]

    return sorted(p.device for p in list_ports.comports())


def _ports_hint() -> str:
    ports = available_ports()
    if not ports:
        return "no serial ports are present"
    return "serial ports here: " + ", ".join(ports)


def check_port(port: str) -> None:
    """Open and close `port` exclusively; WakewardError naming it when that fails."""
    open_port(port).close()


def open_port(port: str, baud: int = DEFAULT_BAUD, **options: Any) -> Any:
    """`port` opened exclusively (a serial.Serial; `options` go to it, e.g. timeout);
    WakewardError naming it and saying what to do when that fails."""
    import serial  # type: ignore[import-untyped]

    try:
        return serial.Serial(port, baud, exclusive=True, **{"timeout": 0, **options})
    except serial.SerialException as e:
        code = e.errno
        if code == errno.ENOENT:
            raise WakewardError(
                f"{port}: no such serial port: is the board plugged in (with a data cable)? "
                f"({_ports_hint()})"
            ) from None
        if code in _BUSY:
            raise WakewardError(
                f"{port} is busy: another program has it open (a serial terminal, "
                "`mpremote repl`, another wakeward); close it and try again"
            ) from None
        if code == errno.EACCES:
            raise WakewardError(
                f"{port}: permission denied: add yourself to the group that owns it "
                f"(`sudo usermod -aG dialout $USER`, then log in again)"
            ) from None
        raise WakewardError(f"{port}: cannot open the serial port ({e})") from None
    except ValueError as e:  # pyserial: a baud rate or option it does not take
        raise WakewardError(f"{port}: {e}") from None
