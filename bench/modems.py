"""Modem throughput and latency against the pty simulator, through the real journal and
dispatcher, so every layer between accept and AT+CMGS is counted.

    python bench/modems.py [--modems 1,2,4] [--send-seconds 0.5] [--seconds 20]

Prints, per modem count N: delivered reports per second against the physical limit
N / send_seconds (one AT+CMGS at a time per modem), and, on one idle modem, the latency
from journal.accept() returning to the simulator receiving AT+CMGS (p50, p99).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.compose import Submission, prepare  # noqa: E402
from appliance.config import GSMModemConfig  # noqa: E402
from appliance.dispatch import Dispatcher  # noqa: E402
from appliance.modem.session import Timings  # noqa: E402
from appliance.modem.worker import ModemWorker  # noqa: E402
from appliance.routing import Router  # noqa: E402
from appliance.sim.network import SimNetwork  # noqa: E402
from appliance.store.journal import Journal  # noqa: E402


class Rig:
    def __init__(self, count: int, send_seconds: float):
        self.dir = tempfile.TemporaryDirectory(prefix="bench-modems-")
        self.journal = Journal.open(self.dir.name)
        self.network = SimNetwork(send_seconds=send_seconds, report_seconds=0.2)
        self.sims, self.workers = [], {}
        for index in range(count):
            sim = self.network.add_modem(f"slot{index + 1}", f"+3620{index + 1:07d}")
            config = GSMModemConfig(name=f"GSMModem{index}", modemorport=sim.path,
                                    slot=sim.slot, limittompm=0, keepaliveperiod=10.0)
            self.workers[config.name] = ModemWorker(config, self.journal, timings=Timings())
            self.sims.append(sim)
        self.dispatcher = Dispatcher(self.journal, self.workers, Router((), list(self.workers)),
                                     idle_seconds=0.5)
        for worker in self.workers.values():
            worker.set_wake(self.dispatcher.wake)
            worker.start()
        self.dispatcher.start()
        deadline = time.monotonic() + 30
        while any(w.free_slots() == 0 for w in self.workers.values()):
            if time.monotonic() > deadline:
                raise SystemExit("modems did not become ready")
            time.sleep(0.05)

    def accept(self, count: int = 1) -> list[str]:
        messages = [prepare(Submission(user="admin", recipient="+36701234567", text="bench"))
                    for _ in range(count)]
        ids = self.journal.accept(messages)
        self.dispatcher.wake()          # what the HTTP layer does after an accept
        return ids

    def delivered(self) -> int:
        return sum(w.counters["reports"] for w in self.workers.values())

    def close(self) -> None:
        self.dispatcher.stop(5)
        for worker in self.workers.values():
            worker.stop(5)
        self.network.close()
        self.journal.close()
        self.dir.cleanup()


def throughput(count: int, send_seconds: float, seconds: float) -> tuple[float, float]:
    rig = Rig(count, send_seconds)
    try:
        rig.accept(int(count * seconds / send_seconds * 1.5) + 10)    # never let them idle
        time.sleep(2 * send_seconds)                                 # reach steady state
        start_count, start = rig.delivered(), time.monotonic()
        time.sleep(seconds)
        rate = (rig.delivered() - start_count) / (time.monotonic() - start)
        return rate, count / send_seconds
    finally:
        rig.close()


def latency(samples: int, send_seconds: float) -> list[float]:
    rig = Rig(1, send_seconds)
    sim = rig.sims[0]
    results = []
    try:
        for _ in range(samples):
            seen = len(sim.command_log)
            rig.accept(1)
            accepted = time.monotonic()
            while True:
                cmgs = [t for t, line in sim.command_log[seen:] if line.startswith("AT+CMGS=")]
                if cmgs:
                    results.append(cmgs[0] - accepted)
                    break
                time.sleep(0.0005)
            while rig.workers["GSMModem0"].free_slots() == 0:      # idle again
                time.sleep(0.002)
    finally:
        rig.close()
    return results


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modems", default="1,2,4")
    parser.add_argument("--send-seconds", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    print(f"send time per SMS {args.send_seconds:g}s (simulated network), window {args.seconds:g}s")
    for count in (int(n) for n in args.modems.split(",")):
        rate, limit = throughput(count, args.send_seconds, args.seconds)
        print(f"  {count} modem(s): {rate:6.2f} delivered/s   limit {limit:6.2f}/s   "
              f"({100 * rate / limit:5.1f}% of N/send_time)")
    values = latency(args.samples, args.send_seconds)
    print(f"accept -> AT+CMGS on an idle modem, {len(values)} samples: "
          f"p50 {1000 * statistics.median(values):.1f} ms, p99 {1000 * percentile(values, 0.99):.1f} ms, "
          f"max {1000 * max(values):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
