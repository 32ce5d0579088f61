# The board layer: everything above it is the same code on the ESP32-S3 and on the
# MicroPython unix port. A board offers:
#   board.name                       profile name
#   board.mic.readinto(buf) -> int   int16 LE mono samples at board.mic.rate_hz; bytes
#                                    written (0 only when a simulated source ends)
#   board.button.pressed() -> bool   the mute button
#   board.led.value(on)              the state LED: on while listening, off while muted,
#                                    blinking (listen.py drives it) while the owner's
#                                    request is active (request.py)
#   board.speaker.play(pcm)          int16 LE mono samples at 16 kHz, blocking
#   board.network_up(timeout_ms)     -> bool, the link to the owner's PC is possible
#                                    (0: do not wait; a join under way goes on)
#   board.ticks_ms() -> int          the clock the link's timers use, wrapping like
#                                    time.ticks_ms() (the sim board: its audio clock)
#   board.set_cpu_hz(hz) -> int      ask for a CPU clock (main.py: the ESP32-S3's top
#                                    240 MHz); returns the clock it runs at (the sim
#                                    board records the request in board.cpu_hz)
#   board.close()


def open_board(profile, **options):
    """Open the named board. "sim" is the unix-port simulator; others are ESP32-S3 pin maps."""
    if profile == "sim":
        from board.sim import SimBoard

        return SimBoard(**options)
    from board.esp32s3 import Esp32S3Board

    return Esp32S3Board(profile, **options)
