# Minimal reader for the one format the device pipeline accepts: RIFF/WAVE,
# integer PCM, 16 kHz, 16-bit, mono. Anything else is refused with the field named.
import struct

from micropython import const

RATE_HZ = const(16000)
_PCM = const(1)
_EXTENSIBLE = const(0xFFFE)
_HEADER_LIMIT = const(1 << 20)
_SEEK_CUR = const(1)


class WavError(ValueError):
    pass


class WavReader:
    """Streams int16 samples from a WAV file into caller-provided buffers."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, "rb")
        try:
            self.frames = self._parse_header()
        except Exception:
            self._f.close()
            raise
        self._remaining = self.frames * 2

    def _fail(self, what):
        raise WavError("%s: %s" % (self.path, what))

    def _parse_header(self):
        f = self._f
        head = f.read(12)
        if len(head) < 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
            self._fail("not a RIFF/WAVE file")
        fmt = None
        seen = 12
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                self._fail("no 'data' chunk" if fmt else "no 'fmt ' chunk")
            cid = chunk[0:4]
            size = struct.unpack("<I", chunk[4:8])[0]
            seen += 8
            if cid == b"fmt ":
                if size < 16 or size > 64:
                    self._fail("bad 'fmt ' chunk size %d" % size)
                fmt = f.read(size + (size & 1))
                if len(fmt) < size:
                    self._fail("truncated 'fmt ' chunk")
                self._check_format(fmt)
            elif cid == b"data":
                if fmt is None:
                    self._fail("'data' chunk before 'fmt ' chunk")
                return size // 2
            else:
                skip = size + (size & 1)
                seen += skip
                if seen > _HEADER_LIMIT:
                    self._fail("no 'data' chunk in the first 1 MiB")
                f.seek(skip, _SEEK_CUR)  # not read(): a chunk of up to 1 MiB needs no heap

    def _check_format(self, fmt):
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[0:16])
        if tag == _EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack("<H", fmt[24:26])[0]
        if tag != _PCM:
            self._fail("format tag %d is not integer PCM" % tag)
        if channels != 1:
            self._fail("%d channels, expected 1 (mono)" % channels)
        if rate != RATE_HZ:
            self._fail("sample rate %d Hz, expected %d Hz" % (rate, RATE_HZ))
        if bits != 16:
            self._fail("%d bits per sample, expected 16" % bits)

    def readinto(self, buf):
        """Fill buf (bytes of int16 LE) from the file; returns bytes read, 0 at the end."""
        want = len(buf)
        if want > self._remaining:
            want = self._remaining
        want &= ~1
        if want == 0:
            return 0
        mv = memoryview(buf)
        got = self._f.readinto(mv[0:want])
        if not got:
            self._remaining = 0
            return 0
        got &= ~1
        self._remaining -= got
        return got

    def close(self):
        self._f.close()
