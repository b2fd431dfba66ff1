#!/usr/bin/env python3
"""Ingest benchmark: how many sendmessage requests a running appliance accepts per second.

Starts the appliance as a separate process (no modems: messages are accepted durably and wait,
which is exactly the accept path), then for each concurrency sends single-message GETs over
keep-alive connections for a fixed time and prints accepted messages/s, p50/p99 latency and the
daemon's peak RSS. `--engine` compares HTTP servers; `--batch N` measures messagecount batches.

    .venv/bin/python bench/ingest.py                       # the loop front, 1/8/32 clients
    .venv/bin/python bench/ingest.py --engine wsgiref
    .venv/bin/python bench/ingest.py --batch 1000
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from installed import daemon_env

PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(engine: str, state: Path, demo: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = state / "config.toml"
    config.write_text(f'[http]\nhost = "127.0.0.1"\nport = {port}\nengine = "{engine}"\n'
                      f'threads = 16\n[store]\nstate_dir = "{state}"\n'
                      f'[demo]\nenabled = {"true" if demo else "false"}\n')
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config),
                             "--admin-password", PASSWORD], stdout=subprocess.DEVNULL,
                            stderr=open(state / "daemon.log", "w"), env=daemon_env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the appliance did not start; see " + str(state / "daemon.log"))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def client(port: int, query: str, seconds: float, latencies: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        conn.request("GET", "/api?" + query)
        body = conn.getresponse().read()
        latencies.append(time.perf_counter() - start)
        if b"<statuscode>0</statuscode>" not in body and b"<statuscode0>0<" not in body:
            errors.append(body[:200])


def run_level(port: int, clients: int, seconds: float, query: str, per_request: int) -> dict:
    latencies: list[float] = []
    errors: list = []
    threads = [threading.Thread(target=client, args=(port, query, seconds, latencies, errors))
               for _ in range(clients)]
    start = time.perf_counter()
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"clients": clients, "requests": len(latencies), "errors": len(errors),
            "msgs_per_s": len(latencies) * per_request / elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1]}


def single_query() -> str:
    return urllib.parse.urlencode({"action": "sendmessage", "username": "admin",
                                   "password": PASSWORD, "recipient": "+36201234567",
                                   "messagetype": "SMS:TEXT", "messagedata": "Bench message"})


def batch_query(n: int) -> str:
    fields = {"action": "sendmessage", "username": "admin", "password": PASSWORD,
              "messagecount": n, "messagetype": "SMS:TEXT"}
    for i in range(n):
        fields[f"recipient{i}"] = f"+3620{i:07d}"
        fields[f"messagedata{i}"] = f"Batch message {i}"
    return urllib.parse.urlencode(fields)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="loop", choices=["loop", "waitress", "wsgiref"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--batch", type=int, default=0, help="messagecount per request")
    parser.add_argument("--demo", action="store_true", help="with simulated modems sending")
    parser.add_argument("--wrk", action="store_true",
                        help="load with wrk (apt-get install wrk) instead of Python clients, "
                             "so the client costs less of the two cores")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        proc, port = start_daemon(args.engine, Path(tmp), args.demo)
        try:
            report(args, port, proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


def report(args, port: int, pid: int) -> None:
    if args.wrk:
        return report_wrk(args, port, pid)
    query = batch_query(args.batch) if args.batch else single_query()
    per_request = args.batch or 1
    print(f"engine={args.engine} batch={per_request} seconds={args.seconds} cpus={os.cpu_count()}")
    print(f"{'clients':>7} {'requests':>9} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for clients in (int(c) for c in args.clients.split(",")):
        r = run_level(port, clients, args.seconds, query, per_request)
        print(f"{r['clients']:>7} {r['requests']:>9} {r['msgs_per_s']:>9.0f} {r['p50_ms']:>8.2f}"
              f" {r['p99_ms']:>8.2f} {r['errors']:>6}")
    print(f"daemon peak RSS: {peak_rss_mib(pid):.1f} MiB")


def report_wrk(args, port: int, pid: int) -> None:
    url = f"http://127.0.0.1:{port}/api?{single_query()}"
    print(f"engine={args.engine} wrk seconds={args.seconds} cpus={os.cpu_count()}")
    for clients in (int(c) for c in args.clients.split(",")):
        out = subprocess.run(["wrk", "-t", str(min(clients, 2)), "-c", str(clients),
                              "-d", f"{int(args.seconds)}s", "--latency", url],
                             capture_output=True, text=True, check=True).stdout
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
        p50 = re.search(r"50%\s+(\S+)", out).group(1)
        p99 = re.search(r"99%\s+(\S+)", out).group(1)
        print(f"{clients:>3} clients: {float(rate):>7.0f} msgs/s  p50 {p50:>8}  p99 {p99:>8}")
    print(f"daemon peak RSS: {peak_rss_mib(pid):.1f} MiB")


if __name__ == "__main__":
    raise SystemExit(main())
