"""Asisten KK: the Telegram-free services, settings, wiring and the command line."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("asisten-kk")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
