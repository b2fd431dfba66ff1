"""SMPP uplink throughput: submit_sm per second with window 1, 10 and 50.

The SMSC is smpp34's SMPP server on 127.0.0.1 (the test SMSC, without its fault proxy); the
channel is the real SmppChannel with a sink that only counts. Needs the `test` extra.
Run: python bench/uplink.py [count]   (prints one line per window; nothing is asserted)
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from appliance.config import SMPPConfig  # noqa: E402
from appliance.model import OutPart  # noqa: E402
from appliance.uplink.smpp import SmppChannel  # noqa: E402
from fakes.smsc import Smsc  # noqa: E402


class CountingSink:
    def __init__(self):
        self.done = 0
        self.finished = threading.Event()
        self.target = 0

    def part_submitted(self, part_id, connection, reference):
        self.done += 1
        if self.done >= self.target:
            self.finished.set()

    part_failed = report = inbound = lambda self, *a, **k: None


def run(smsc: Smsc, window: int, count: int) -> float:
    sink = CountingSink()
    sink.target = count
    conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=smsc.smsc_port, username="bench",
                      password="bench", windowsize=window, deliveryreport=False)
    channel = SmppChannel(conn, sink)
    channel.start()
    while channel.state != "bound":
        time.sleep(0.01)
    parts = [OutPart(id=i, message_id=str(i), recipient="+36201234567", originator="BENCH",
                     text=f"benchmark message {i}") for i in range(count)]
    start = time.perf_counter()
    sent = 0
    while not sink.finished.is_set():
        room = channel.free_slots()          # feed it as the dispatcher would
        for part in parts[sent:sent + room]:
            channel.submit(part)
        sent += room
        sink.finished.wait(0.0005)
    elapsed = time.perf_counter() - start
    channel.stop()
    return count / elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    smsc = Smsc().start()
    try:
        for window in (1, 10, 50):
            rate = run(smsc, window, count if window > 1 else count // 5)
            print(f"window {window:>3}: {rate:8.0f} submit_sm/s")
    finally:
        smsc.stop()


if __name__ == "__main__":
    main()
