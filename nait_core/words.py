"""Counts in prose: "1 neuron", "2 neurons" (a view that says "1 neurons" reads as a bug next to its number)."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` with thousands separators and the noun in the number it takes ("1 record", "1,024 records")."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def verb(n: int, singular: str, plural: str) -> str:
    """The verb that agrees with a count of `n` ("1 neuron marks", "2 neurons mark")."""
    return singular if n == 1 else plural
