"""xhuma: a payments transaction switch."""

__version__ = "0.1.0"
