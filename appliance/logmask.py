"""Phone numbers in logs: one rule for every layer (web, store, modems, notifier)."""

from __future__ import annotations


def masked(number) -> str:
    """Keep the country code and the last three digits: `+3620…567`. Short codes stay."""
    number = str(number or "")
    return number if len(number) < 7 else f"{number[:4]}…{number[-3:]}"
