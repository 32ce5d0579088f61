"""The one user-facing error type: the command line prints it as `wakeward: message`."""


class WakewardError(Exception):
    """An error the user can act on; its message says what went wrong and what to do."""
