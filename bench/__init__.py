"""Benchmarks of the bot: `make bench` (see README.md in this directory)."""
