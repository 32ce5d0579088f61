# A stand-in for the ESP32-S3 `machine` module on the unix port: records what the board
# layer asks of the hardware and serves scripted microphone slots. Test-only.
CALLS = []
MIC_SLOTS = bytearray()
_FREQ = [160_000_000]  # the generic ESP32-S3 build may boot at 160 MHz


def freq(hz=None):
    if hz is None:
        return _FREQ[0]
    CALLS.append(("freq", hz))
    _FREQ[0] = hz
    return None


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2

    def __init__(self, pin_id, mode=None, pull=None):
        self.id = pin_id
        self.level = 1 if pull == Pin.PULL_UP else 0
        CALLS.append(("Pin", pin_id, mode, pull))

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = int(v)
        CALLS.append(("Pin.value", self.id, self.level))
        return None


class I2S:
    RX = 0
    TX = 1
    MONO = 0
    STEREO = 1

    def __init__(self, i2s_id, sck, ws, sd, mode, bits, format, rate, ibuf):
        self.mode = mode
        self._at = 0
        CALLS.append(("I2S", i2s_id, sck.id, ws.id, sd.id, mode, bits, format, rate, ibuf))

    def readinto(self, buf):
        n = min(len(buf), len(MIC_SLOTS) - self._at)
        buf[0:n] = MIC_SLOTS[self._at : self._at + n]
        self._at += n
        return n

    def write(self, buf):
        CALLS.append(("I2S.write", len(buf)))
        return len(buf)

    def deinit(self):
        CALLS.append(("I2S.deinit",))
