"""Memory of large Ozeki batches: the daemon as a process (no modems), N batches of M
messages POSTed one after the other; RSS idle, after each batch, and the peak.

    python bench/batch_memory.py [messages per batch, default 20000] [batches, default 5]
                                 [another checkout to measure first, e.g. a git worktree]

A batch of 20,000 is the largest any dialect takes (params.MAX_BATCH_MESSAGES). With a
third argument the same batches go to that checkout's daemon first, then to this one's:
the machine is shared, so compare within one run.
"""

from __future__ import annotations

import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_kannel as vk  # noqa: E402  (the daemon, RSS and peak helpers)


def batch_body(round_no: int, count: int) -> bytes:
    fields = {"action": "sendmessage", "username": "admin", "password": vk.PASSWORD,
              "messagecount": count, "messagetype": "SMS:TEXT"}
    for i in range(count):
        fields[f"recipient{i}"] = f"+3620{i:07d}"
        fields[f"messagedata{i}"] = f"Batch message {round_no} {i}"
    return urllib.parse.urlencode(fields).encode()


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for src in ([sys.argv[3]] if len(sys.argv) > 3 else []) + [""]:
        print(f"== {src or 'this checkout'}")
        measure(count, rounds, src)
    return 0


def measure(count: int, rounds: int, src: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        daemon = vk.Appliance(Path(tmp), "batches", src=src)
        daemon.start()
        pids = daemon.pids()
        try:
            time.sleep(1)
            print(f"idle RSS {vk.rss_mib(pids):.1f} MiB")
            for round_no in range(rounds):
                body = batch_body(round_no, count)
                started = time.monotonic()
                request = urllib.request.Request(f"http://127.0.0.1:{daemon.port}/api", data=body)
                answer = urllib.request.urlopen(request, timeout=300).read()
                seconds = time.monotonic() - started
                time.sleep(2.0)      # the front trims the heap 1 s after a quiet loop
                print(f"batch {round_no + 1} of {count:,}: {seconds:.2f} s, answer"
                      f" {len(answer) / 1e6:.1f} MB; RSS after {vk.rss_mib(pids):.1f} MiB,"
                      f" peak so far {vk.peak_rss_mib(pids):.1f} MiB")
        finally:
            daemon.stop()


if __name__ == "__main__":
    raise SystemExit(main())
