"""Joining the parts of long inbound messages, whatever order they arrive in.

Parts are grouped by (sender, line, ref, total, ref_bits): 8- and 16-bit references never
mix, and neither do two of the appliance's numbers (the line is the number the SMS was sent
to, or the connection when that is not known): one sender writing to two SIMs with the same
8-bit reference had one user's part joined into another user's message.
A message is handed on as soon as every part is there; one that stays incomplete longer
than `timeout` is handed on by `expire` with a marker where parts are missing, so no text
is ever silently lost. All state lives in a `FragmentStore`, so a restart (with a durable
store) continues where it stopped.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.gsm.alphabet import from_septets
from appliance.gsm.ucs2 import decode_ucs2
from appliance.model import InboundFragment

# (sender, line, ref, total, ref_bits): JSON-able values
FragmentKey = tuple[str, str, int, int, int]

DEFAULT_TIMEOUT = 3600.0   # an SMSC retrying a lost part rarely takes longer than an hour


def missing_marker(seq: int, total: int) -> str:
    return f"[…part {seq} of {total} missing…]"


class FragmentStore(Protocol):
    """Where parts wait. Values to persist are the InboundFragment fields (str, int,
    float, bytes, None and the concat 4-tuple) plus `arrived_at` (a float, wall time).
    Single-threaded use: the Reassembler calls it from one worker at a time."""

    def put(self, key: FragmentKey, seq: int, fragment: InboundFragment,
            arrived_at: float) -> None:
        """Keep `fragment` as part `seq` of `key`; a seq already stored is not replaced."""

    def get(self, key: FragmentKey) -> dict[int, InboundFragment]:
        """Parts stored for `key` by seq ({} when none)."""

    def first_arrival(self, key: FragmentKey) -> float | None:
        """`arrived_at` of the earliest part of `key`, None when none is stored."""

    def pop(self, key: FragmentKey) -> dict[int, InboundFragment]:
        """Remove every part of `key` and return them by seq."""

    def keys_older_than(self, moment: float) -> list[FragmentKey]:
        """Keys whose first part arrived before `moment`."""


class MemoryFragmentStore:
    """A FragmentStore in a dict: for tests and for setups that accept losing parts
    on restart."""

    def __init__(self) -> None:
        self._parts: dict[FragmentKey, dict[int, InboundFragment]] = {}
        self._first: dict[FragmentKey, float] = {}

    def put(self, key, seq, fragment, arrived_at):
        self._parts.setdefault(key, {}).setdefault(seq, fragment)
        self._first[key] = min(self._first.get(key, arrived_at), arrived_at)

    def get(self, key):
        return dict(self._parts.get(key, {}))

    def first_arrival(self, key):
        return self._first.get(key)

    def pop(self, key):
        self._first.pop(key, None)
        return self._parts.pop(key, {})

    def keys_older_than(self, moment):
        return [key for key, first in self._first.items() if first < moment]


class Reassembler:
    def __init__(self, store: FragmentStore | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, clock: Clock | None = None):
        self.store = store if store is not None else MemoryFragmentStore()
        self.timeout = timeout
        self.clock = clock or SYSTEM_CLOCK

    def add(self, fragment: InboundFragment, now: float | None = None) -> InboundFragment | None:
        """The whole message when `fragment` completes it (or is a single SMS), else None.
        A repeated part (same seq) is ignored: the first copy wins. `now` (wall time)
        defaults to the clock's."""
        if fragment.concat is None:
            return fragment
        ref, total, seq, ref_bits = fragment.concat
        if not 1 <= seq <= total or total == 1:   # TS 23.040: treat as a lone SMS
            return replace(fragment, concat=None)
        line = fragment.recipient or fragment.connection
        key: FragmentKey = (fragment.sender, line, ref, total, ref_bits)
        stored = self.store.get(key)
        if seq in stored:
            return None
        self.store.put(key, seq, fragment, self.clock.now() if now is None else now)
        if len(stored) + 1 < total:
            return None
        return join(self.store.pop(key), total)

    def expire(self, now: float | None = None) -> list[InboundFragment]:
        """Messages still incomplete `timeout` seconds after their first part, joined
        with markers for the missing parts; they leave the store."""
        now = self.clock.now() if now is None else now
        expired = []
        for key in self.store.keys_older_than(now - self.timeout):
            parts = self.store.pop(key)
            if parts:
                expired.append(join(parts, total_of(parts)))
        return expired


def total_of(parts: dict[int, InboundFragment]) -> int:
    """The parts total of a stored message, from a part (keys an older release stored had
    another layout)."""
    concat = next(iter(parts.values())).concat
    return concat[1] if concat else max(parts)


def join(parts: dict[int, InboundFragment], total: int) -> InboundFragment:
    """One fragment from the parts present: text (or data) in seq order, a marker in the
    text for each missing part, time stamps of the first part and of the latest arrival."""
    ordered = [parts[seq] for seq in sorted(parts)]
    first = ordered[0]
    text = None
    if any(f.text is not None for f in ordered):
        text = _joined_text(parts, total)
    received = [f.received_at for f in ordered if f.received_at is not None]
    return replace(first, concat=None, text=text, encoding=_joined_encoding(ordered),
                   data=b"".join(f.data for f in ordered), raw=b"",
                   received_at=max(received) if received else first.received_at)


def _joined_text(parts: dict[int, InboundFragment], total: int) -> str:
    """Consecutive parts of one encoding are decoded together from their raw units, so a
    character split across two of them (a UCS-2 surrogate pair, a GSM escape and the
    character it escapes) is whole again; parts without raw units keep their own text."""
    pieces: list[str] = []
    run: list[InboundFragment] = []
    for seq in range(1, total + 1):
        part = parts.get(seq)
        if run and (part is None or not _joins(run[-1], part)):
            pieces.append(_decode_run(run))
            run = []
        if part is None:
            pieces.append(missing_marker(seq, total))
        elif part.raw and part.encoding in _DECODERS:
            run.append(part)
        else:
            pieces.append(part.text or "")
    if run:
        pieces.append(_decode_run(run))
    return "".join(pieces)


def _joins(previous: InboundFragment, part: InboundFragment) -> bool:
    return bool(part.raw) and part.encoding == previous.encoding


def _decode_run(run: list[InboundFragment]) -> str:
    if len(run) == 1:
        return run[0].text or ""
    return _DECODERS[run[0].encoding](b"".join(f.raw for f in run))


_DECODERS = {"ucs2": decode_ucs2, "gsm7": from_septets}


def _joined_encoding(ordered: list[InboundFragment]) -> str:
    """Phones may encode each part on its own; the whole is UCS-2 if any part is."""
    encodings = {f.encoding for f in ordered}
    if "ucs2" in encodings:
        return "ucs2"
    return ordered[0].encoding
