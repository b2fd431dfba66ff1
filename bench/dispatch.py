"""Dispatcher cost: parts moved per second and CPU per part, journal on a real SQLite file.

The channel takes a window of parts at once and answers them `submitted` on its own thread
in one write_many (as the SMPP channel does, with an SMSC that answers at once), so the
figure is the cost of the queue itself: due_parts, routing, claim (with the whole-message
round) and the submit record.
Run: python bench/dispatch.py [messages]   (prints one line per message shape; nothing is
asserted)
"""

from __future__ import annotations

import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from appliance.compose import Submission, prepare  # noqa: E402
from appliance.dispatch import Dispatcher  # noqa: E402
from appliance.routing import Router  # noqa: E402
from appliance.store.journal import Journal  # noqa: E402


class InstantChannel:
    """Takes a window of parts and answers them all `submitted` on its own thread in one
    journal batch (write_many without waiting), as the SMPP channel records its results."""

    def __init__(self, name: str, journal, window: int = 50):
        self.set_wake = lambda wake: setattr(self, "wake", wake)    # it wakes the dispatcher
        self.name = name
        self.journal = journal
        self.window = window
        self.inflight = 0
        self.lock = threading.Lock()
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.wake = None

    def free_slots(self) -> int:
        return self.window - self.inflight

    def submit_batch(self, parts) -> None:
        with self.lock:
            self.inflight += len(parts)
        self.queue.put(list(parts))

    def _run(self) -> None:
        while True:
            parts = self.queue.get()
            if parts is None:
                return
            if hasattr(self.journal, "parts_submitted"):    # the set-based record
                results = [(p.id, str(p.id)) for p in parts]
                self.journal.write_many(
                    [lambda: self.journal.parts_submitted(self.name, results)], wait=False)
            else:
                self.journal.write_many(
                    [lambda p=p: self.journal.part_submitted(p.id, self.name, str(p.id))
                     for p in parts], wait=False)
            with self.lock:
                self.inflight -= len(parts)
            if self.wake:
                self.wake()


def run(messages: int, text: str, channels: int = 2) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as state:
        journal = Journal.open(state)
        subs = [prepare(Submission(user="admin", recipient=f"+3620{i % 50:07d}", text=text))
                for i in range(messages)]
        for start in range(0, len(subs), 500):
            journal.accept(subs[start:start + 500])
        parts = sum(len(s.parts) for s in subs)
        chans = {f"C{i}": InstantChannel(f"C{i}", journal) for i in range(channels)}
        dispatcher = Dispatcher(journal, chans, Router((), list(chans)), idle_seconds=0.01)
        for channel in chans.values():
            channel.set_wake(dispatcher.wake)
        wall, cpu = time.monotonic(), time.process_time()
        dispatcher.start()
        while dispatcher.dispatched < parts:
            time.sleep(0.05)
        journal._write(lambda conn: None)        # the last results are committed
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        dispatcher.stop()
        for channel in chans.values():
            channel.queue.put(None)
        journal.close()
        return wall, cpu, parts


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for label, text in (("1-part", "hello " * 10), ("4-part", "x" * 600)):
        wall, cpu, parts = run(count, text)
        print(f"{label}: {parts} parts in {wall:.2f}s = {parts / wall:.0f} parts/s,"
              f" CPU {cpu / parts * 1e6:.0f} µs/part")


if __name__ == "__main__":
    main()
