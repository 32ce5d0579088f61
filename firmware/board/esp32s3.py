# ESP32-S3 board: INMP441-style I2S microphone (32-bit slots), MAX98357A-style I2S
# amplifier, a mute button and a state LED, and the station-mode Wi-Fi interface.
import time

import machine
import network
from micropython import const
from pcm import i2s32_to_int16

from board import profiles

RATE_HZ = const(16000)
_MIC_I2S_ID = const(0)
_AMP_I2S_ID = const(1)
_MIC_DMA_BYTES = const(16000)  # 0.25 s of 32-bit slots buffered by the driver
_AMP_DMA_BYTES = const(8000)
MAX_CHUNK_SAMPLES = const(1024)
_WIFI_POLL_MS = const(100)
_WIFI_JOIN_MS = const(10000)  # a join not done by then is started again


class I2SMic:
    """INMP441-style microphone: 24-bit data left-justified in 32-bit slots, L/R pin to GND."""

    rate_hz = RATE_HZ

    def __init__(self, sck, ws, sd, shift):
        self._i2s = machine.I2S(
            _MIC_I2S_ID,
            sck=machine.Pin(sck),
            ws=machine.Pin(ws),
            sd=machine.Pin(sd),
            mode=machine.I2S.RX,
            bits=32,
            format=machine.I2S.MONO,
            rate=RATE_HZ,
            ibuf=_MIC_DMA_BYTES,
        )
        self._shift = shift
        self._slots = bytearray(4 * MAX_CHUNK_SAMPLES)
        self._slots_mv = memoryview(self._slots)
        self._view = self._slots_mv
        self._view_samples = MAX_CHUNK_SAMPLES

    def readinto(self, buf):
        """Read len(buf)//2 samples (at most MAX_CHUNK_SAMPLES) as int16 LE into buf.

        Reading the same size every time allocates nothing.
        """
        n = len(buf) // 2
        if n > MAX_CHUNK_SAMPLES:
            raise ValueError("read at most %d samples at a time" % MAX_CHUNK_SAMPLES)
        if n != self._view_samples:
            self._view = self._slots_mv[0 : 4 * n]
            self._view_samples = n
        got = self._i2s.readinto(self._view) // 4
        i2s32_to_int16(self._slots, buf, got, self._shift)
        return 2 * got

    def close(self):
        self._i2s.deinit()


class Button:
    """Push button to GND with the internal pull-up."""

    def __init__(self, pin):
        self._pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)

    def pressed(self):
        return self._pin.value() == 0


class Led:
    def __init__(self, pin, active_low):
        self._pin = machine.Pin(pin, machine.Pin.OUT)
        self._active_low = active_low
        self.value(False)

    def value(self, on):
        self._pin.value((not on) if self._active_low else bool(on))


class I2SSpeaker:
    """MAX98357A-style amplifier: 16-bit mono samples, blocking writes."""

    def __init__(self, bclk, lrc, din):
        self._i2s = machine.I2S(
            _AMP_I2S_ID,
            sck=machine.Pin(bclk),
            ws=machine.Pin(lrc),
            sd=machine.Pin(din),
            mode=machine.I2S.TX,
            bits=16,
            format=machine.I2S.MONO,
            rate=RATE_HZ,
            ibuf=_AMP_DMA_BYTES,
        )

    def play(self, pcm):
        self._i2s.write(pcm)

    def close(self):
        self._i2s.deinit()


class Esp32S3Board:
    def __init__(self, profile, wifi_ssid=None, wifi_password=None):
        pins = profiles.get(profile)
        self.name = profile
        self.mic = I2SMic(pins["mic_sck"], pins["mic_ws"], pins["mic_sd"], pins["mic_shift"])
        self.button = Button(pins["button"])
        self.led = Led(pins["led"], pins["led_active_low"])
        self.speaker = I2SSpeaker(pins["amp_bclk"], pins["amp_lrc"], pins["amp_din"])
        self._ssid = wifi_ssid
        self._password = wifi_password
        self._wlan = None
        self._join_ms = time.ticks_ms()
        self._joining = False

    def ticks_ms(self):
        return time.ticks_ms()

    def network_up(self, timeout_ms):
        """Join the configured Wi-Fi network; False if there is none or it is not up within
        timeout_ms. With 0 it does not wait: a join under way goes on in the background
        (and is started again after _WIFI_JOIN_MS), so the audio loop can ask every time."""
        if self._ssid is None:
            return False
        if self._wlan is None:
            self._wlan = network.WLAN(network.STA_IF)
            self._wlan.active(True)
        if self._wlan.isconnected():
            self._joining = False
            return True
        start = time.ticks_ms()
        if not self._joining or time.ticks_diff(start, self._join_ms) > _WIFI_JOIN_MS:
            self._wlan.connect(self._ssid, self._password)
            self._join_ms = start
            self._joining = True
        while not self._wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                return False
            time.sleep_ms(_WIFI_POLL_MS)
        return True

    def set_cpu_hz(self, hz):
        """machine.freq(hz); the clock the CPU runs at afterwards. The generic ESP32-S3
        build may boot at 160 MHz: the listening loop needs the 240 its budget assumes."""
        machine.freq(hz)
        return machine.freq()

    def close(self):
        self.mic.close()
        self.speaker.close()
        if self._wlan is not None:
            self._wlan.active(False)
