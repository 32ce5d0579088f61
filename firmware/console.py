# The USB serial link's stream (link.serial in config.json): the console itself, sys.stdin
# and sys.stdout. On the ESP32-S3 that is MicroPython's REPL port (native USB CDC); on the
# sim board, the unix port's stdin and stdout, which `wakeward sim --link serial` puts on a
# pseudo-terminal (host/wakeward/ptyport.py) for `wakeward listen --serial` to open.
#
# The console carries the firmware's print() lines, which the receiver shows as the device's
# log, and the protocol frames, written raw through sys.stdout.buffer (print's text path
# turns "\n" into "\r\n" on the device). The receiver's Decoder tells them apart (F5 C1
# never occurs in text: protocol.py). The link writes every frame whole before it returns
# to the audio loop (link.py: resends go frame by frame too), and the firmware prints only
# from that loop, so no log line lands inside a frame. Acks come back on stdin, read
# without waiting: a zero-timeout poll of sys.stdin, then one byte at a time while more is
# there (on the device, reading more than has arrived blocks).
#
# There is no connection to make: the console is there from boot, whether or not a program
# on the PC has the port open, and what nobody reads is lost (TinyUSB keeps only the latest
# bytes while the port is closed, shared/tinyusb/mp_usbd_cdc.c, and pyserial discards them
# when it opens the port). The acks and the clip queue on flash make delivery: a clip not
# acknowledged within link.ack_timeout_ms goes again after the link's backoff, as on TCP.
# No TLS and no secret: the cable runs straight to the owner's PC.
#
# While the link owns the console (take() at boot, release() at exit: main.py), Ctrl-C is
# a byte like any other (micropython.kbd_intr(-1)): 0x03 can be any byte of an ack, and
# must not raise KeyboardInterrupt. So neither Ctrl-C in a terminal nor mpremote (it
# enters the raw REPL with Ctrl-C, as `wakeward deploy` does) stops the firmware. To get
# the REPL back, hold the mute button for the first seconds after a reset (main.py then
# leaves the console to the REPL; not during the reset itself: on both board profiles the
# button is GPIO0, which held at reset starts the ROM bootloader), or use
# `wakeward flash`, whose reset into the bootloader does not need the REPL.
#
# Speed, from MicroPython's source, not measured on a board: the native USB CDC carries
# far more than the 32 KB/s of live audio, but MicroPython's generic ESP32-S3 build
# (ESP32_GENERIC_S3) copies all console output to UART0 as well (MICROPY_HW_ENABLE_UART_REPL)
# at 115200 baud, and that copy waits for the UART (ports/esp32/uart.c,
# uart_stdout_tx_strn), so the console carries at most about 11.5 KB/s there. A build whose
# REPL is on USB only (MicroPython's SEEED_XIAO_ESP32S3 board) does not have that limit.
import io
import select
import sys

import micropython
from micropython import const

_STREAM_POLL = const(3)  # MP_STREAM_POLL, py/stream.h
_POLL_RD = const(0x0001)
_POLL_WR = const(0x0004)
_EINVAL = const(22)
_CTRL_C = const(3)
_RX_BYTES = const(64)


def take():
    """The link owns the console: Ctrl-C no longer raises KeyboardInterrupt."""
    micropython.kbd_intr(-1)


def release():
    """Ctrl-C interrupts again (the REPL's default)."""
    micropython.kbd_intr(_CTRL_C)


class Console(io.IOBase):
    """The console as the link's stream: write(), recv() and readinto() of what has
    arrived, never waiting, and pollable (select.poll) like a socket."""

    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poller = select.poll()
        self._poller.register(sys.stdin, select.POLLIN)
        self._byte = bytearray(1)
        self._rx = bytearray(_RX_BYTES)
        self._ended = False  # stdin has ended (on the sim: the PC side has gone)

    def ioctl(self, request, arg):
        """select.poll asks here: readable when a byte waits on stdin; always writable (a
        console write blocks, or on the device drops what the PC does not read)."""
        if request != _STREAM_POLL:
            return -_EINVAL
        ready = arg & _POLL_WR
        if arg & _POLL_RD and self._waiting():
            ready |= _POLL_RD
        return ready

    def _waiting(self):
        for _ in self._poller.ipoll(0):
            return True
        return False

    def write(self, data):
        return self._out.write(data)

    def readinto(self, buf):
        """What has arrived, into buf; its length (0 when nothing has)."""
        return self._take(buf, len(buf))

    def recv(self, nbytes):
        """What has arrived, at most nbytes (up to _RX_BYTES); None when nothing has, b""
        once stdin has ended."""
        n = self._take(self._rx, min(nbytes, _RX_BYTES))
        if n:
            return self._rx[:n]
        return b"" if self._ended else None

    def _take(self, buf, limit):
        n = 0
        byte = self._byte
        while n < limit and not self._ended and self._waiting():
            if not self._in.readinto(byte):  # type: ignore[union-attr]  # stubs lack it
                self._ended = True
                break
            buf[n] = byte[0]
            n += 1
        return n

    def setblocking(self, flag):
        pass  # never blocks on reads; writes are the console's own

    def close(self):
        pass  # the console stays; release() gives Ctrl-C back
