"""wakeward: host tools for a wake-word speaker that keeps what it hears."""

__version__ = "0.1.0"
