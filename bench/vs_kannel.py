#!/usr/bin/env python3
"""The appliance against Kannel 1.4.5, one after the other, on this machine.

Kannel: bearerbox + smsbox + fakesmsc, file store, `GET /cgi-bin/sendsms`. The appliance: no
modems (messages are accepted durably and wait), Ozeki `GET /api?action=sendmessage`. Both get
the same wrk keep-alive load (a unique text per request) at each concurrency; for each level
the bench prints accepted msgs/s, p50/p99, CPU ms per accepted message (utime+stime of the
server processes), peak RSS (VmHWM, reset per level), and bytes written to storage per
accepted message (/proc/PID/io write_bytes: store, WAL, checkpoints, logs). Then the
appliance's messagecount=1000 batch rate, the loop front alone (a trivial route and a one-row
durable write), idle RSS with four simulated modems on ptys, and
the ingest rate, /status time, start-to-READY and RSS with a million messages queued (the
rate against a daemon without a queue running beside it, measured alternately:
--queued-rounds).

The two do not promise the same thing. Kannel's file store writes each message and flushes
stdio, and never calls fsync: what it acknowledged is in the page cache until the kernel's
write-back (vm.dirty_expire_centisecs), and a power cut loses it. The appliance answers after
the group commit's fdatasync. So the bench also counts each side's sync calls per accepted
message (a short separate run under strace, whose rates are not quoted), and, where
eatmydata is installed, runs the appliance once more with its syncs made no-ops: the same
code at Kannel's guarantee, to tell what durability costs from what the code costs.

    make bench-deps                     # apt: kannel kannel-extras wrk strace eatmydata
    .venv/bin/python bench/vs_kannel.py [--seconds 10] [--clients 1,8,32] [--queued 1000000]
        [--queued-rounds 3]
    .venv/bin/python bench/vs_kannel.py --e2e [--seconds 10] [--e2e-clients 8] [--window 10]
        (SMPP end to end: Kannel `smsc = smpp` and the appliance against one smpp34 SMSC;
        see bench/smpp_e2e.py)

Nothing here asserts: it prints figures (docs/architecture.md quotes a run).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from installed import daemon_env

PASSWORD = "bench-password-1"
KANNEL_BIN = Path("/usr/sbin")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
# eatmydata's library, LD_PRELOADed: sync calls become no-ops (Debian's multiarch directory)
EATMYDATA = next(iter(sorted(Path("/usr/lib").glob("*/libeatmydata.so"))), Path("/nonexistent"))
SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "msync", "syncfs", "sync")
CLK_TCK = os.sysconf("SC_CLK_TCK")

WRK_UNIQUE = """
local n = 0
function setup(thread) n = n + 1; thread:set("tid", n) end
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("GET", prefix .. tid .. "x" .. counter)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return time.monotonic() - start
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"nothing listens on port {port}")


# --- /proc readings -------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])     # utime, stime
    return total / CLK_TCK


def write_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                total += int(line.split()[1])
    return total


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pids: list[int]) -> None:
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass      # not root: the peak is then the process's lifetime peak


def peak_rss_mib(pids: list[int]) -> float:
    return sum(status_kib(p, "VmHWM") for p in pids) / 1024


def rss_mib(pids: list[int]) -> float:
    return sum(status_kib(p, "VmRSS") for p in pids) / 1024


# --- wrk ------------------------------------------------------------------------------------


def wrk(url_prefix: str, clients: int, seconds: float, tmp: Path, *, script: str = "",
        url: str = "") -> dict:
    lua = tmp / f"wrk-{clients}.lua"
    host, path = re.match(r"(http://[^/]+)(.*)", url or url_prefix).groups()
    lua.write_text(script or f"prefix = {path!r}\n" + WRK_UNIQUE)
    out = subprocess.run(["wrk", "-t", str(min(clients, 2)), "-c", str(clients),
                          "-d", f"{max(1, int(seconds))}s", "--latency", "-s", str(lua), host],
                         capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": requests, "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "",
            "p50": _percentile(out, "50%"), "p99": _percentile(out, "99%")}


def _percentile(out: str, name: str) -> float:
    # the distribution's own line: "90.50%" in the thread stats above it also ends in "50%"
    match = re.search(rf"^\s*{name}\s+(\S+)", out, re.M)
    return _ms(match.group(1)) if match else float("nan")


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if match is None:          # wrk prints -nan when a level had no completed request
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def measure(side: "Side", clients: int, seconds: float, tmp: Path, **wrk_args) -> dict:
    pids = side.pids()
    commits0 = side.commits()       # read outside the CPU, bytes and peak RSS window
    reset_peak(pids)
    before = side.accepted()
    cpu0, io0, t0 = cpu_seconds(pids), write_bytes(pids), time.monotonic()
    result = wrk(side.url_prefix, clients, seconds, tmp, **wrk_args)
    time.sleep(0.3)     # let the last answers' writes land before reading the counters
    elapsed = time.monotonic() - t0 - 0.3
    cpu, io = cpu_seconds(pids) - cpu0, write_bytes(pids) - io0
    accepted = side.accepted(result) - before
    result.update(clients=clients, accepted=accepted, rate=accepted / elapsed,
                  cpu_ms=1000 * cpu / max(accepted, 1), bytes_per_msg=io / max(accepted, 1),
                  peak_rss=peak_rss_mib(pids), per_commit=None)
    commits1 = side.commits()
    if commits0 and commits1 and commits1[0] > commits0[0]:
        # bytes per message follow the group commit's size, which follows the machine's load:
        # two runs' bytes compare only at similar writes per commit
        result["per_commit"] = (commits1[1] - commits0[1]) / (commits1[0] - commits0[0])
    return result


def strace_counts(summary: str) -> dict[str, int]:
    """Calls per system call from `strace -c`'s table (its last column is the name)."""
    counts = {}
    for line in summary.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1] != "total" and fields[-1].isidentifier() \
                and fields[3].isdigit():
            counts[fields[-1]] = int(fields[3])
    return counts


def sync_census(side: "Side", clients: int, seconds: float, tmp: Path) -> dict | None:
    """Sync system calls per accepted message, counted by strace on the server processes.
    ptrace slows them down, so this is a run of its own: only the counts mean anything.
    None if strace could not attach (no table also means no sync call, so that is told
    apart by strace's "attached" lines)."""
    command = ["strace", "-f", "-c", "-e", "trace=" + ",".join(SYNC_CALLS)]
    for pid in side.pids():
        command += ["-p", str(pid)]
    tracer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    time.sleep(0.5)                        # attached to every thread
    result = measure(side, clients, seconds, tmp)
    tracer.send_signal(signal.SIGINT)
    summary = tracer.communicate(timeout=30)[1]
    if "attached" not in summary:
        print(f"sync census: strace did not attach: {summary.strip()[:200]}", flush=True)
        return None
    counts = strace_counts(summary)
    syncs = sum(counts.values())
    return {"accepted": result["accepted"], "syncs": syncs, "counts": counts,
            "per_1000": 1000 * syncs / max(result["accepted"], 1)}


def census_line(name: str, census: dict) -> str:
    calls = ", ".join(f"{n} {c:,}" for n, c in sorted(census["counts"].items())) or "none"
    return (f"{name}: {census['per_1000']:.0f} sync calls per 1,000 accepted"
            f" ({census['accepted']:,} accepted; {calls})")


# --- the two sides --------------------------------------------------------------------------


class Side:
    url_prefix = ""

    def pids(self) -> list[int]:
        raise NotImplementedError

    def accepted(self, wrk_result: dict | None = None) -> int:
        raise NotImplementedError

    def commits(self) -> tuple[float, float] | None:
        """(commits, writes committed) so far, where the side tells them."""
        return None


class Kannel(Side):
    """bearerbox + smsbox with a file store, fakesmsc taking every message as the SMSC."""

    def __init__(self, tmp: Path):
        self.tmp = tmp / "kannel"
        self.tmp.mkdir()
        self.procs: list[subprocess.Popen] = []
        self.count = 0
        ports = [free_port() for _ in range(4)]
        self.admin_port, self.box_port, self.smsc_port, self.http_port = ports
        self.url_prefix = (f"http://127.0.0.1:{self.http_port}/cgi-bin/sendsms?username=bench"
                           f"&password=bench&from=12345&to=36201234567&text=Bench+message+")

    def config(self) -> Path:
        path = self.tmp / "kannel.conf"
        path.write_text(f"""
group = core
admin-port = {self.admin_port}
admin-password = bench
smsbox-port = {self.box_port}
box-allow-ip = 127.0.0.1
log-file = "{self.tmp}/bearerbox.log"
log-level = 1
store-type = file
store-location = "{self.tmp}/kannel.store"

group = smsc
smsc = fake
smsc-id = FAKE
port = {self.smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.box_port}
sendsms-port = {self.http_port}
log-file = "{self.tmp}/smsbox.log"
log-level = 1

group = sendsms-user
username = bench
password = bench
max-messages = 1

group = sms-service
keyword = default
text = "ok"
""")
        return path

    def start(self) -> None:
        conf = str(self.config())
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.procs.append(subprocess.Popen([KANNEL_BIN / "bearerbox", conf], **quiet))
        wait_port(self.box_port, self.procs[0])
        self.procs.append(subprocess.Popen([KANNEL_BIN / "smsbox", conf], **quiet))
        self.procs.append(subprocess.Popen([FAKESMSC, "-H", "127.0.0.1", "-r",
                                            str(self.smsc_port), "-m", "0", "1 2 text x"],
                                           **quiet))
        wait_port(self.http_port, self.procs[1])
        time.sleep(1.0)    # fakesmsc connects to bearerbox

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs[:2]]       # the two boxes; fakesmsc is the SMSC

    def accepted(self, wrk_result: dict | None = None) -> int:
        if wrk_result is not None:
            self.count += wrk_result["requests"] - wrk_result["non2xx"]
        return self.count

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


class Appliance(Side):
    """The daemon in its own process, no modems: every accepted message waits in the journal."""

    # --commits: writes per commit from /metrics (off by default: the first /metrics request
    # loads the metrics code into the daemon, about 2 MiB more RSS in the peak RSS figures)
    read_commits = False

    def __init__(self, tmp: Path, name: str, *, modems: str = "", src: str = "",
                 page_size: int = 0, preload: str = ""):
        self.preload = preload      # LD_PRELOAD for the daemon (eatmydata: no syncs)
        self.state = tmp / name
        self.state.mkdir(exist_ok=True)
        if page_size:         # an empty journal file with this page size, opened as it is
            db = sqlite3.connect(self.state / "journal.sqlite3")
            db.execute(f"PRAGMA page_size={page_size}")
            db.execute("PRAGMA journal_mode=WAL")
            db.close()
        self.src = src          # another checkout's source (--baseline), else this one
        self.port = free_port()
        self.modems = modems
        self.proc: subprocess.Popen | None = None
        self.url_prefix = (f"http://127.0.0.1:{self.port}/api?action=sendmessage&username=admin"
                           f"&password={PASSWORD}&recipient=%2B36201234567"
                           f"&messagetype=SMS:TEXT&messagedata=Bench+message+")

    def start(self) -> float:
        config = self.state / "config.toml"
        config.write_text(f'[http]\nhost = "127.0.0.1"\nport = {self.port}\n'
                          f'[store]\nstate_dir = "{self.state}"\n' + self.modems)
        launch = ["-m", "appliance"]
        env = daemon_env(self.src)
        if self.src:
            env["PYTHONPATH"] = self.src
        if self.preload:
            env["LD_PRELOAD"] = self.preload
        self.proc = subprocess.Popen(
            [sys.executable, *launch, "run", "--config", str(config),
             "--admin-password", PASSWORD], stdout=subprocess.DEVNULL,
            stderr=open(self.state / "daemon.log", "a"), env=env, cwd=self.src or None)
        return wait_port(self.port, self.proc)

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def accepted(self, wrk_result: dict | None = None) -> int:
        conn = sqlite3.connect(f"file:{self.state}/journal.sqlite3?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM messages WHERE direction='out'").fetchone()[0]
        finally:
            conn.close()

    def commits(self) -> tuple[float, float] | None:
        """The group writer's commits and writes, from /metrics' batch-size histogram."""
        if not self.read_commits:
            return None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics")
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            text = urllib.request.urlopen(request, timeout=30).read().decode()
        except OSError:
            return None
        found = dict(re.findall(r"^sms_store_commit_batch_size_(count|sum) (\S+)$", text, re.M))
        return (float(found["count"]), float(found["sum"])) if len(found) == 2 else None

    def status_ms(self, repeat: int = 20) -> float:
        url = f"http://127.0.0.1:{self.port}/status"
        start = time.perf_counter()
        for _ in range(repeat):
            urllib.request.urlopen(url, timeout=30).read()
        return 1000 * (time.perf_counter() - start) / repeat

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# --- the appliance's extra figures ----------------------------------------------------------


def batch_script(port: int, n: int) -> str:
    fields = {"action": "sendmessage", "username": "admin", "password": PASSWORD,
              "messagecount": n, "messagetype": "SMS:TEXT"}
    for i in range(n):
        fields[f"recipient{i}"] = f"+3620{i:07d}"
        fields[f"messagedata{i}"] = f"Batch message {i}"
    body = urllib.parse.urlencode(fields)
    return (f'wrk.method = "POST"\nwrk.path = "/api"\nwrk.body = "{body}"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')


def prefill(state: Path, count: int) -> None:
    """`count` queued one-part messages written straight into a journal the daemon created."""
    db = sqlite3.connect(state / "journal.sqlite3", isolation_level=None)
    now = time.time()
    db.execute("BEGIN")
    db.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<?)"
        " INSERT INTO messages(id, direction, user, recipient, messagetype, body, encoding,"
        " state, created, updated, valid_until)"
        " SELECT printf('prefill-%08d', x), 'out', 'admin', '+36201234567', 'SMS:TEXT',"
        " 'Queued message ' || x, 'gsm7', 'queued', ?, ?, ? FROM c", (count, now, now, now + 3e7))
    db.execute(
        "INSERT INTO parts(message_id, seq, total, encoding, text, state, next_attempt,"
        " valid_until) SELECT id, 1, 1, 'gsm7', body, 'queued', created, valid_until"
        " FROM messages WHERE id LIKE 'prefill-%'")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def sim_modems(tmp: Path, count: int) -> tuple[subprocess.Popen, str]:
    """`sms-appliance sim --modems N` in another process; config lines for its ptys."""
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "sim", "--modems", str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ports = []
    deadline = time.monotonic() + 30
    while len(ports) < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        ports += re.findall(r"^slot\d+\s+\S+\s+(\S+)", line)
    lines = "".join(f'\n[connections.GSMModem{i}]\ntype = "GSMModem"\nmodemorport = "{p}"\n'
                    for i, p in enumerate(ports[:count]))
    return proc, lines


# --- printing -------------------------------------------------------------------------------


def row(name: str, r: dict) -> str:
    return (f"| {name} c={r['clients']} | {r['rate']:,.0f} | {r['p50']:.2f} / {r['p99']:.2f} |"
            f" {r['cpu_ms']:.3f} | {r['peak_rss']:.1f} | {r['bytes_per_msg']:,.0f}{_batch(r)} |"
            f" {r['non2xx']} {r['socket_errors']} |")


def _batch(r: dict) -> str:
    return f" ({r['per_commit']:.1f}/commit)" if r.get("per_commit") else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--queued", type=int, default=1_000_000)
    parser.add_argument("--queued-rounds", type=int, default=3,
                        help="alternations of the queued store and one without a queue")
    parser.add_argument("--skip-kannel", action="store_true")
    parser.add_argument("--skip-nosync", action="store_true",
                        help="no run of the appliance under eatmydata (syncs off)")
    parser.add_argument("--skip-extras", action="store_true",
                        help="only the single-message levels")
    parser.add_argument("--baseline", default="",
                        help="a directory holding an older `appliance/` package: its single-"
                             "message levels run first, alternating with this one's")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --baseline: old/new alternations")
    parser.add_argument("--page-sizes", default="",
                        help="e.g. 1024,2048,4096: the single-message levels once per journal"
                             " page size first (bytes written and CPU per message)")
    parser.add_argument("--commits", action="store_true",
                        help="writes per group commit next to bytes/msg (from /metrics: the"
                             " daemons' peak RSS is then ~2 MiB higher)")
    parser.add_argument("--e2e", action="store_true",
                        help="only the SMPP end-to-end section (bench/smpp_e2e.py)")
    parser.add_argument("--window", type=int, default=10, help="--e2e: SMPP window")
    parser.add_argument("--e2e-clients", type=int, default=8, help="--e2e: wrk clients")
    args = parser.parse_args()
    if args.e2e:
        return smpp_e2e(args)
    levels = [int(c) for c in args.clients.split(",")]
    Appliance.read_commits = args.commits
    for tool in ("wrk",) + (() if args.skip_kannel else ("bearerbox",)):
        if not shutil.which(tool) and not (KANNEL_BIN / tool).exists():
            raise SystemExit(f"{tool} is missing: make bench-deps")
    base = Path(os.environ.get("BENCH_DIR", "/var/tmp"))   # a real disk, not tmpfs
    with tempfile.TemporaryDirectory(prefix="bench-vs-kannel-", dir=base) as tmp_name:
        tmp = Path(tmp_name)
        print(f"cpus={os.cpu_count()} seconds={args.seconds} dir={tmp}")
        print("| run | accepted msgs/s | p50 / p99 ms | CPU ms/msg | peak RSS MiB |"
              " bytes written/msg | non-2xx, socket errors |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        census = 8 if 8 in levels else levels[-1]
        kannel = {}
        if not args.skip_kannel:
            kannel = run_levels(Kannel(tmp), "kannel", levels, args.seconds, tmp,
                                census=census)
        for i, size in enumerate(int(p) for p in args.page_sizes.split(",") if p):
            run_levels(Appliance(tmp, f"page{i}", page_size=size), f"page {size}", levels,
                       args.seconds, tmp)
        for i in range(args.rounds if args.baseline else 0):
            run_levels(Appliance(tmp, f"base{i}", src=args.baseline), "baseline", levels,
                       args.seconds, tmp)
            if i < args.rounds - 1:
                run_levels(Appliance(tmp, f"new{i}"), "appliance", levels, args.seconds, tmp)
        ours = run_levels(Appliance(tmp, "empty"), "appliance", levels, args.seconds, tmp,
                          extras=not args.skip_extras, census=census)
        nosync = {}
        if EATMYDATA.exists() and not args.skip_nosync:
            nosync = run_levels(Appliance(tmp, "nosync", preload=str(EATMYDATA)),
                                "appliance, syncs off (eatmydata)", levels, args.seconds, tmp,
                                census=census)
        print()
        summary(levels, kannel, ours, nosync, census)
        if not args.skip_extras:
            extras(args, tmp, ours, kannel, levels)
    return 0


def summary(levels, kannel: dict, ours: dict, nosync: dict, census: int) -> None:
    """The ratios to Kannel per level (as they are, and with both sides' syncs off), then
    each side's sync census."""
    for c in levels:
        if c in kannel:
            print(f"c={c}: " + ratios(ours[c], kannel[c]))
            if c in nosync:
                print(f"c={c}, both without sync (Kannel's guarantee): "
                      + ratios(nosync[c], kannel[c]))
    for name, side in (("Kannel", kannel), ("appliance", ours),
                       ("appliance under eatmydata", nosync)):
        if side.get("census"):
            print(census_line(f"{name}, c={census}", side["census"]))
    if kannel.get("census"):
        expire = Path("/proc/sys/vm/dirty_expire_centisecs").read_text().split()[0]
        print(f"(a message a side acknowledged without a sync is on disk only after the"
              f" kernel's write-back: up to {int(expire) / 100:.0f} s here)")


def ratios(ours: dict, kannel: dict) -> str:
    return (f"rate ratio {ours['rate'] / max(kannel['rate'], 1):.2f}x, CPU/msg"
            f" {ours['cpu_ms'] / max(kannel['cpu_ms'], 1e-9):.2f}x, bytes/msg"
            f" {ours['bytes_per_msg'] / max(kannel['bytes_per_msg'], 1):.2f}x")


def smpp_e2e(args) -> int:
    """Kannel `smsc = smpp` and the appliance's SMPP uplink, same load, same SMSC."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import smpp_e2e
    base = Path(os.environ.get("BENCH_DIR", "/var/tmp"))
    with tempfile.TemporaryDirectory(prefix="bench-smpp-e2e-", dir=base) as tmp_name:
        return smpp_e2e.main(sys.modules[__name__], args, Path(tmp_name))


def run_levels(side, name: str, levels, seconds: float, tmp: Path, extras=False,
               census: int = 0) -> dict:
    """Each level's figures; then, with `census` (clients), a sync census run of its own."""
    side.start()
    results = {}
    try:
        if isinstance(side, Appliance):
            log0 = (side.state / "daemon.log").stat().st_size
        for c in levels:
            results[c] = measure(side, c, seconds, tmp)
            print(row(name, results[c]), flush=True)
        if isinstance(side, Appliance):
            total = sum(r["accepted"] for r in results.values())
            log = (side.state / "daemon.log").stat().st_size - log0
            results["log_bytes_per_msg"] = log / max(total, 1)
            results["status_ms"] = side.status_ms()
            if extras:
                results["batch"] = measure(side, 4, seconds, tmp,
                                           script=batch_script(side.port, 1000),
                                           url=side.url_prefix)
                results["idle_rss_after"] = rss_mib(side.pids())
        if census and shutil.which("strace"):
            results["census"] = sync_census(side, census, min(seconds, 3.0), tmp)
    finally:
        side.stop()
    return results


def front_floor(tmp: Path, seconds: float, levels) -> None:
    """The loop front alone, in this process: a trivial bottle route, and one that makes a
    one-row durable write through the group commit. What the dialect code adds is the rest."""
    import bottle
    from appliance.store.journal import Journal
    from appliance.web.loop_server import LoopServer
    from appliance.web.server import listen_socket
    journal = Journal.open(tmp / "floor")
    journal._write(lambda c: c.execute("CREATE TABLE IF NOT EXISTS floor(x)"))
    app = bottle.Bottle()
    app.route("/ok")(lambda: "ok")
    app.route("/write")(lambda: journal._write(
        lambda c: c.execute("INSERT INTO floor VALUES (1)")) and "ok")
    server = LoopServer(app, [listen_socket("127.0.0.1", 0)])
    server.start()
    try:
        for path in ("/ok", "/write"):
            for c in levels:
                commits, cpu0 = journal.commits, time.process_time()
                out = subprocess.run(["wrk", "-t", str(min(c, 2)), "-c", str(c), "-d",
                                      f"{max(1, int(seconds))}s",
                                      f"http://127.0.0.1:{server.ports[0]}{path}"],
                                     capture_output=True, text=True, check=True).stdout
                n = int(re.search(r"(\d+) requests in", out).group(1))
                rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                batch = f", {n / max(journal.commits - commits, 1):.1f} per commit" \
                    if path == "/write" else ""
                print(f"front alone {path} c={c}: {rate:,.0f} req/s,"
                      f" {1000 * (time.process_time() - cpu0) / max(n, 1):.3f} CPU ms/req{batch}")
    finally:
        server.stop()
        journal.close()


def extras(args, tmp: Path, ours: dict, kannel: dict, levels) -> None:
    front_floor(tmp, args.seconds, [c for c in levels if c > 1] or levels)
    best_kannel = max((kannel[c]["rate"] for c in levels if c in kannel), default=0)
    batch = ours["batch"]
    print(f"appliance log bytes per accepted message: {ours['log_bytes_per_msg']:.1f}")
    print(f"appliance /status with the store above: {ours['status_ms']:.2f} ms")
    print(f"messagecount=1000 batches, c=4: {batch['rate']:,.0f} msgs/s"
          + (f" = {batch['rate'] / best_kannel:.1f}x Kannel's best single-message rate"
             if best_kannel else "") + f", CPU {batch['cpu_ms']:.3f} ms/msg,"
          f" {batch['bytes_per_msg']:.0f} bytes written/msg, peak RSS {batch['peak_rss']:.1f} MiB")

    sim, lines = sim_modems(tmp, 4)
    try:
        side = Appliance(tmp, "modems", modems=lines)
        side.start()
        time.sleep(5.0)            # modems probed and registered
        print(f"idle RSS with 4 simulated modems on ptys: {rss_mib(side.pids()):.1f} MiB")
        side.stop()
    finally:
        sim.terminate()
        sim.wait(10)

    queued_vs_empty(args, tmp, ours, 8 if 8 in levels else levels[-1])


def queued_vs_empty(args, tmp: Path, ours: dict, clients: int) -> None:
    """Ingest with `args.queued` messages waiting against a store without a queue: both
    daemons run side by side and are measured alternately, so the ratio is not the noise
    of minutes apart (one pair each ranged 0.80-0.98 between runs on this shared machine)."""
    side = Appliance(tmp, "queued")
    side.start()
    side.stop()
    t0 = time.monotonic()
    prefill(side.state, args.queued)
    print(f"prefilled {args.queued:,} queued messages in {time.monotonic() - t0:.1f} s")
    ready = side.start()
    empty = Appliance(tmp, "queued-ref")
    empty.start()
    try:
        status0 = side.status_ms()
        print(f"{args.queued:,} queued: start to listening {ready * 1000:.0f} ms;"
              f" /status {status0:.2f} ms (empty store: {ours['status_ms']:.2f} ms);"
              f" idle RSS {rss_mib(side.pids()):.1f} MiB")
        for warm in (side, empty):          # the first login's scrypt, outside the figures
            measure(warm, clients, 1.0, tmp)
        ratios = []
        for i in range(args.queued_rounds):     # ABBA: a drift of the machine cancels out
            pair = (empty, side) if i % 2 == 0 else (side, empty)
            first, second = (measure(s, clients, args.seconds, tmp) for s in pair)
            ref, r = (first, second) if i % 2 == 0 else (second, first)
            ratios.append(r["rate"] / max(ref["rate"], 1))
            print(row(f"appliance {args.queued:,} queued, round {i + 1}", r))
            print(row(f"appliance no queue, round {i + 1}", ref))
        print(f"ingest with {args.queued:,} queued vs no queue, c={clients}, alternating:"
              f" {', '.join(f'{x:.2f}' for x in ratios)}x (median"
              f" {statistics.median(ratios):.2f}x)")
    finally:
        side.stop()
        empty.stop()


if __name__ == "__main__":
    raise SystemExit(main())
