# Board pin maps, as data. Each profile names the GPIO numbers of one ESP32-S3 board
# wired to an INMP441-style I2S microphone and a MAX98357A-style I2S amplifier.
# Keys:
#   mic_sck/mic_ws/mic_sd   microphone bit clock, word select (L/R clock), data out
#   amp_bclk/amp_lrc/amp_din amplifier bit clock, word select, data in
#   button                  the mute button (to GND, internal pull-up, active low)
#   led                     the state LED; led_active_low when the LED sinks current
#   mic_shift               I2S 32-bit slot -> int16 shift (16 = top 16 bits; 14 = +12 dB)

PROFILES = {
    # Espressif ESP32-S3-DevKitC-1 (N8/N8R8/N16R8). GPIO0 is the BOOT button.
    # The on-board RGB LED is addressable (WS2812), so the state LED is an external one.
    "esp32-s3-devkitc-1": {
        "mic_sck": 4,
        "mic_ws": 5,
        "mic_sd": 6,
        "amp_bclk": 15,
        "amp_lrc": 16,
        "amp_din": 7,
        "button": 0,
        "led": 2,
        "led_active_low": False,
        "mic_shift": 14,
    },
    # Seeed Studio XIAO ESP32S3 (Sense or plain). Pads D0..D10; GPIO0 is the BOOT button;
    # the user LED (GPIO21) is wired to 3V3 and lights when the pin is low.
    "xiao-esp32s3": {
        "mic_sck": 7,  # D8
        "mic_ws": 8,  # D9
        "mic_sd": 9,  # D10
        "amp_bclk": 2,  # D1
        "amp_lrc": 3,  # D2
        "amp_din": 4,  # D3
        "button": 0,
        "led": 21,
        "led_active_low": True,
        "mic_shift": 14,
    },
}

_REQUIRED = (
    "mic_sck",
    "mic_ws",
    "mic_sd",
    "amp_bclk",
    "amp_lrc",
    "amp_din",
    "button",
    "led",
    "led_active_low",
    "mic_shift",
)


def get(name):
    """The pin map of a named board; ValueError naming the known boards otherwise."""
    try:
        pins = PROFILES[name]
    except KeyError:
        raise ValueError(
            "unknown board profile %r (known: %s)" % (name, ", ".join(sorted(PROFILES)))
        ) from None
    for key in _REQUIRED:
        if key not in pins:
            raise ValueError("board profile %r lacks %r" % (name, key))
    return pins
