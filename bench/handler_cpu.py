#!/usr/bin/env python3
"""CPU per request of one dialect's send path, in process: the daemon's bottle app called with
a WSGI environ (no socket, no event loop), one durable commit per request, no modems.

What the loop front adds on top (parsing, greenlet switches, socket writes) is measured by
bench/vs_kannel.py and bench/ingest.py; this script isolates the handlers, the intake and the
journal so a change to them can be judged by a ratio in one run:

    .venv/bin/python bench/handler_cpu.py                      # every dialect, 3000 requests
    .venv/bin/python bench/handler_cpu.py --dialect ozeki --profile 30
    .venv/bin/python bench/handler_cpu.py --baseline /tmp/old-checkout --rounds 3

It prints CPU ms per request of the handler's thread (the figure a change to the web layer,
the intake or compose moves; the ratio uses it), of the whole process (plus the journal's
writer thread and its commit per request), and Python function calls per request (with --profile, the top functions by own time,
lock waits left out).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

PASSWORD = "bench-password-1"
NUMBER = "+36201234567"

REQUESTS = {
    "ozeki": lambda i: ("GET", "/api?" + urllib.parse.urlencode({
        "action": "sendmessage", "username": "admin", "password": PASSWORD,
        "recipient": NUMBER, "messagetype": "SMS:TEXT",
        "messagedata": f"Bench message {i}"}), b"", {}),
    "ozeki-json": lambda i: ("POST", "/api?action=sendmsg", json.dumps({"messages": [{
        "to_address": NUMBER, "text": f"Bench message {i}"}]}).encode(),
        {"CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": _basic()}),
}


def _basic() -> str:
    import base64
    return "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()


def environ(method: str, target: str, body: bytes, headers: dict) -> dict:
    path, _, query = target.partition("?")
    env = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path,
           "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
           "CONTENT_LENGTH": str(len(body)), "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
           "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
           "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False}
    env.update(headers)
    return env


def call(app, request) -> bytes:
    status: list = []
    body = b"".join(app(environ(*request), lambda s, h, e=None: status.append(s)))
    if not status[0].startswith("200"):
        raise SystemExit(f"{request[:2]} answered {status[0]}: {body[:300]!r}")
    return body


def measure(dialect: str, count: int, profile: int) -> dict:
    """Runs inside the checkout being measured (a child process)."""
    from appliance import config as cfg
    from appliance.daemon import Daemon
    state = tempfile.mkdtemp(prefix="handler-cpu-")
    config = cfg.Config(http=cfg.HttpConfig(host="127.0.0.1", port=0),
                        store=cfg.StoreConfig(state_dir=state + "/state"))
    daemon = Daemon(config, admin_password=PASSWORD, clock_synchronized=lambda: True)
    daemon.start()
    try:
        make = REQUESTS[dialect]
        for i in range(200):                   # warm: credential cache, imports, SQLite pages
            call(daemon.app, make(-i))
        requests = [make(i) for i in range(count)]
        profiler = None
        if profile:
            import cProfile
            profiler = cProfile.Profile()
            profiler.enable()
        cpu, own, wall = time.process_time(), time.thread_time(), time.perf_counter()
        for request in requests:
            call(daemon.app, request)
        cpu, own = time.process_time() - cpu, time.thread_time() - own
        wall = time.perf_counter() - wall
        result = {"dialect": dialect, "handler_ms": 1000 * own / count,
                  "cpu_ms": 1000 * cpu / count, "wall_ms": 1000 * wall / count}
        if profiler:
            profiler.disable()
            result["profile"] = _top(profiler, count, profile)
        return result
    finally:
        daemon.stop()


def _top(profiler, count: int, limit: int) -> str:
    import pstats
    stats = pstats.Stats(profiler).stats
    calls = sum(v[1] for v in stats.values())
    rows = sorted(((v[2], v[1], k) for k, v in stats.items()
                   if "acquire" not in k[2] and "put' of '_queue" not in k[2]), reverse=True)
    lines = [f"  function calls per request: {calls / count:.0f}",
             "  own ms/req  calls/req  function"]
    for own, ncalls, (file, line, name) in rows[:limit]:
        where = f"{os.path.relpath(file) if file != '~' else ''}:{line}({name})"
        lines.append(f"  {1000 * own / count:9.4f} {ncalls / count:9.1f}  {where}")
    return "\n".join(lines)


def run_in(checkout: str, dialect: str, count: int, profile: int) -> dict:
    env = dict(os.environ, PYTHONPATH=checkout)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", dialect,
                          "--count", str(count), "--profile", str(profile)],
                         cwd=checkout, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialect", choices=sorted(REQUESTS), action="append")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the timed requests, print the top N functions")
    parser.add_argument("--baseline", help="another checkout, measured alternately")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.count, args.profile)))
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sides = [("this", here)] + ([("baseline", os.path.abspath(args.baseline))]
                                if args.baseline else [])
    for dialect in args.dialect or sorted(REQUESTS):
        figures: dict = {name: [] for name, _ in sides}
        for _ in range(args.rounds):
            for name, checkout in sides:
                result = run_in(checkout, dialect, args.count, args.profile)
                figures[name].append(result["handler_ms"])
                print(f"{dialect:12s} {name:9s} handler thread {result['handler_ms']:.3f}"
                      f"  process {result['cpu_ms']:.3f}  wall {result['wall_ms']:.3f} ms/req",
                      flush=True)
                if "profile" in result:
                    print(result["profile"])
        if args.baseline:
            this, base = min(figures["this"]), min(figures["baseline"])
            print(f"{dialect:12s} handler-thread ratio this/baseline (best of {args.rounds}): "
                  f"{this / base:.3f}")


if __name__ == "__main__":
    main()
