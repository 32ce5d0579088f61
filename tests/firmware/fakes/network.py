# A stand-in for `network` on the unix port (test-only): a WLAN that connects at once.
STA_IF = 0
CALLS = []


class WLAN:
    def __init__(self, interface):
        self._connected = False
        CALLS.append(("WLAN", interface))

    def active(self, on=None):
        CALLS.append(("active", on))

    def isconnected(self):
        return self._connected

    def connect(self, ssid, password):
        CALLS.append(("connect", ssid, password))
        self._connected = True
