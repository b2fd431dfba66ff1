#!/usr/bin/env python3
"""Metrics benchmark: what the trigger-kept counters cost per accepted message, and what a
/metrics + /health read costs as the queue grows (it should not grow with it).

Runs on a temporary journal in this process (no HTTP), prints figures, asserts nothing.

    .venv/bin/python bench/metrics.py
    .venv/bin/python bench/metrics.py --depths 1000,10000,100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from appliance.compose import Submission, prepare
from appliance.store import counters
from appliance.store.journal import Journal

BATCH = 200


def messages(n: int):
    return [prepare(Submission(user="bench", recipient=f"+3620{i:07d}", text="bench message",
                               dialect="ozeki")) for i in range(n)]


def accept_rate(journal: Journal, n: int) -> float:
    batches = [messages(BATCH) for _ in range(n // BATCH)]     # new ids each: no duplicates
    started = time.perf_counter()
    for batch in batches:
        journal.accept(batch)
    return n / (time.perf_counter() - started)


def read_cost(journal: Journal, rounds: int = 50) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        counters.parts_by_state(journal)
        counters.accepted(journal)
        counters.events_by_state(journal)
        counters.oldest_waiting_created(journal)
    return (time.perf_counter() - started) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--depths", default="10000,50000,100000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = Journal.open(Path(tmp) / "plain")
        counted = Journal.open(Path(tmp) / "counted")
        counters.ensure(counted)
        best = {"without counters": 0.0, "with counters": 0.0}
        for _ in range(3):      # interleaved, best of three: the machine is shared
            for label, journal in (("without counters", plain), ("with counters", counted)):
                best[label] = max(best[label], accept_rate(journal, args.messages // 3))
        for label, rate in best.items():
            print(f"accept in batches of {BATCH}, {label}: {rate:,.0f} messages/s (best of 3)")
        plain.close()
        depth = counters.parts_by_state(counted).get("queued", 0)
        for target in sorted(int(d) for d in args.depths.split(",")):
            if target > depth:
                accept_rate(counted, target - depth)
                depth = counters.parts_by_state(counted).get("queued", 0)
            read_cost(counted, 5)                        # warm the page cache
            print(f"queue depth {depth:>7,}: counters read for one scrape {read_cost(counted):.2f} ms")
        counted.close()


if __name__ == "__main__":
    main()
