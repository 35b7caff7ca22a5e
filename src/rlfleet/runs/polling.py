"""How often to ask whether something changed: often at first, so that short runs end
promptly, then less, so that a long run's followers take no CPU worth counting from it."""

from __future__ import annotations

FAST_FOR_S = 15.0
"""Polls in the first this many seconds use the fast interval."""


def poll_interval(elapsed_s: float, fast_s: float, slow_s: float) -> float:
    """``fast_s`` for the first :data:`FAST_FOR_S` seconds, ``slow_s`` after that."""
    return fast_s if elapsed_s < FAST_FOR_S else slow_s
