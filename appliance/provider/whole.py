"""Messages that leave whole: part 1 carries the full text, parts 2..n share its fate.

Web and e-mail providers split long texts themselves. The store split the message into
parts at accept time, so part 1 goes with the whole text and its success is recorded with
`whole_message=True`: the journal gives every part of the message part 1's reference in one
transaction (parts already claimed included), so one report settles them all, also after a
restart. A part 2..n that reaches the channel meanwhile waits for part 1's answer here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from appliance.model import OutPart

MEMORY = 1000       # message ids sent whole, remembered for parts 2..n that come late
FAILED_FOR_GOOD = ("failed", "undelivered", "expired", "cancelled")


class WholeMessages:
    def __init__(self, name: str, sink):
        self.name = name
        self.sink = sink
        self._lock = threading.Lock()
        self._waiting: dict[str, list[OutPart]] = {}
        self._sent: OrderedDict[str, str] = OrderedDict()

    def begin(self, part: OutPart) -> None:
        """Part 1 is about to leave with the whole text."""
        with self._lock:
            self._waiting.setdefault(part.message_id, [])

    def follow(self, part: OutPart) -> str:
        """What part 2..n does: "settled" (by part 1 here, now or at its answer), "later"
        (part 1 has not left yet: go back to the queue and travel after it), "failed" (part
        1, which carried the whole text, failed for good: so does this one; sent alone it
        gave the phone the message without its beginning, reported submitted) or "send"
        (part 1 left elsewhere, not whole: send this segment on its own)."""
        if self._join(part, only_if_waiting=True):
            return "settled"
        first = self._stored_first(part)
        state = first["state"] if first else ""
        mine = bool(first) and first["connection"] == self.name
        if mine and state == "sending":           # claimed for us: it is on its way here
            self._join(part, only_if_waiting=False)
            return "settled"
        if mine and first["reference"] and state in ("submitted", "delivered", "undelivered"):
            self.sink.part_submitted(part.id, self.name, first["reference"])
            return "settled"
        if state in ("queued", "scheduled", "sending"):
            return "later"
        return "failed" if state in FAILED_FOR_GOOD else "send"

    def _join(self, part: OutPart, only_if_waiting: bool) -> bool:
        """Wait with part 1 (which is in flight here, or will be), or take its reference if
        it already left here whole. False when there is nothing to join."""
        with self._lock:
            reference = self._sent.get(part.message_id)
            if reference is None:
                waiting = self._waiting.get(part.message_id)
                if waiting is None and only_if_waiting:
                    return False
                self._waiting.setdefault(part.message_id, []).append(part)
                return True
        self.sink.part_submitted(part.id, self.name, reference)
        return True

    def succeeded(self, part: OutPart, reference: str) -> None:
        with self._lock:
            self._waiting.pop(part.message_id, None)   # the journal update below covers them
            self._sent[part.message_id] = reference
            while len(self._sent) > MEMORY:
                self._sent.popitem(last=False)
        self.sink.part_submitted(part.id, self.name, reference, whole_message=True)

    def failed(self, part: OutPart) -> list[OutPart]:
        """Part 1 did not leave: the parts that waited for it, to fail the same way."""
        with self._lock:
            return self._waiting.pop(part.message_id, [])

    def _stored_first(self, part: OutPart) -> dict | None:
        get_parts = getattr(self.sink, "get_parts", None)
        rows = get_parts(part.message_id) if get_parts else []
        return next((r for r in rows if r["seq"] == 1), None)
