# Simulated board for the MicroPython unix port: the microphone is fed from a WAV file
# or a TCP socket (raw 16 kHz int16 LE mono), at real-time pace or as fast as possible;
# the button is scripted on the audio clock or pressed by a test; LED, button and
# speaker state changes are logged as JSON lines (to a file, or kept in board.events).
import json
import socket
import time

from micropython import const
from wavfile import RATE_HZ, WavReader

_MS_PER_S = const(1000)


class SimError(ValueError):
    pass


class _EventLog:
    def __init__(self, path):
        self.events = []
        self._f = open(path, "w") if path else None

    def log(self, t_ms, dev, **fields):
        event = {"t_ms": t_ms, "dev": dev}
        event.update(fields)
        if self._f is None:
            self.events.append(event)
        else:
            self._f.write(json.dumps(event) + "\n")
            self._f.flush()

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class _SocketSource:
    """Raw int16 LE mono PCM from a TCP peer; the stream ends when the peer closes."""

    def __init__(self, address):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise SimError("mic socket %r is not HOST:PORT" % address)
        self._sock = socket.socket()
        self._sock.connect(socket.getaddrinfo(host, int(port))[0][-1])

    def readinto(self, buf):
        mv = memoryview(buf)
        want = len(buf) & ~1
        got = 0
        while got < want:
            n = self._sock.readinto(mv[got:want])
            if not n:
                break
            got += n
        return got & ~1

    def close(self):
        self._sock.close()


class SimMic:
    rate_hz = RATE_HZ

    def __init__(self, source, realtime):
        self._source = source
        self._realtime = realtime
        self.samples = 0
        self._start_ms = time.ticks_ms()

    def t_ms(self):
        """The audio clock: milliseconds of audio delivered so far."""
        return self.samples * _MS_PER_S // RATE_HZ

    def readinto(self, buf):
        got = self._source.readinto(buf)
        self.samples += got // 2
        if self._realtime:
            ahead = self.t_ms() - time.ticks_diff(time.ticks_ms(), self._start_ms)
            if ahead > 0:
                time.sleep_ms(ahead)
        return got

    def close(self):
        self._source.close()


class SimButton:
    """Pressed during the scripted [on_ms, off_ms) intervals of the audio clock, or by hand."""

    def __init__(self, clock, log, script):
        self._clock = clock
        self._log = log
        self._script = [(int(a), int(b)) for a, b in script]
        self._manual = False
        self._state = False

    def press(self):
        self._manual = True

    def release(self):
        self._manual = False

    def pressed(self):
        t = self._clock()
        state = self._manual
        for on_ms, off_ms in self._script:
            if on_ms <= t < off_ms:
                state = True
        if state != self._state:
            self._state = state
            self._log.log(t, "button", value=int(state))
        return state


class SimLed:
    def __init__(self, clock, log):
        self._clock = clock
        self._log = log
        self.state = None

    def value(self, on):
        on = bool(on)
        if on != self.state:
            self.state = on
            self._log.log(self._clock(), "led", value=int(on))


class SimSpeaker:
    """Records what it would have played: a "speaker" event per play() with its sample
    count, and with `path` the samples themselves (raw int16 LE, appended in order)."""

    def __init__(self, clock, log, path=None):
        self._clock = clock
        self._log = log
        self.played_samples = 0
        self._f = open(path, "wb") if path else None

    def play(self, pcm):
        n = len(pcm) // 2
        self.played_samples += n
        if self._f is not None:
            self._f.write(pcm)
        self._log.log(self._clock(), "speaker", samples=n)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class SimBoard:
    def __init__(
        self, wav=None, pcm_socket=None, realtime=False, events=None, button=(), speaker=None
    ):
        """speaker: a file that gets every sample the speaker plays (raw int16 LE)."""
        if (wav is None) == (pcm_socket is None):
            raise SimError("the sim board needs exactly one microphone source: wav or pcm_socket")
        self.name = "sim"
        self._log = _EventLog(events)
        self.events = self._log.events
        source = WavReader(wav) if wav is not None else _SocketSource(pcm_socket)
        self.mic = SimMic(source, realtime)
        clock = self.mic.t_ms
        self.button = SimButton(clock, self._log, button)
        self.led = SimLed(clock, self._log)
        self.speaker = SimSpeaker(clock, self._log, speaker)
        self.cpu_hz = None  # the CPU clock asked for (set_cpu_hz), None until then

    def set_cpu_hz(self, hz):
        """Records the request (board.cpu_hz and a "cpu" event); the PC runs as it runs."""
        self.cpu_hz = hz
        self._log.log(self.mic.t_ms(), "cpu", hz=hz)
        return hz

    def network_up(self, timeout_ms):
        return True

    def ticks_ms(self):
        """The audio clock, so that the link's timers (backoff, status, ack timeout) run on
        audio time: the same in fast mode as at real-time pace, and deterministic."""
        return self.mic.t_ms()

    def close(self):
        self.mic.close()
        self.speaker.close()
        self._log.close()
