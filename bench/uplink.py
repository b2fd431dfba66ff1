"""SMPP uplink throughput: submit_sm per second with window 1, 10 and 50.

The SMSC is smpp34's SMPP server on 127.0.0.1 (the test SMSC, without its fault proxy); the
channel is the real SmppChannel with a sink that only counts. Needs the `test` extra.
Run: python bench/uplink.py [count]   (default 30,000 per run; one line per window; nothing
is asserted)
Each line also gives smpplib alone against the same SMSC (its Client, pipelined up to the
window: send_message while there is room, read_pdu for each answer; no store, no routing)
and the ratio, with the client process's CPU per submit_sm and the SMSC process's; the two
alternate, three rounds each, and the best round of each is printed. The SMSC runs in a
process of its own. Both comparisons run twice: through the test SMSC, which needs about a
core at 9-17k submit_sm/s, so it sets the pace for both clients, and through
bench/fast_smsc.py, a minimal peer at a few µs per submit_sm, so the clients set it.
BENCH_PIN=1 puts the SMSC on CPU 1 and the clients on CPU 0.

End to end: python bench/uplink.py --e2e [seconds] [clients] [window]
The daemon runs as a process (`python -m appliance run`) with one SMPP connection to the
same SMSC; `clients` keep-alive HTTP clients send `sendmessage` for `seconds`; printed:
accepted messages, submit_sm/s at the SMSC during the load and to the last one, messages
lost, and the daemon's CPU per message.

Receipts: python bench/uplink.py --receipts [count]   (default 10,000: a burst of receipts
for parts the channel submitted into a real journal; see receipt_burst)

Backlog: python bench/uplink.py --backlog [messages] [window] [receipts 0|1|N] [rounds]
The same daemon with the SMSC unreachable takes `messages` (HTTP batches of 1000), then the
link comes back; printed: the drain rate at the SMSC, the channel's feed during it (parts
waiting in its memory, the window in use: a full window with parts waiting means the link,
not the store, set the pace) and the daemon's CPU per message (also
per thread, named by `py-spy dump` when py-spy is installed), the journal's commits and the
SMSC process's CPU, then the channel alone through the same SMSC process and link proxy,
before and after the drain, and the ratio to their mean (with rounds > 1: alone, drain,
alone, ... and the median ratio); BENCH_PYSPY=FILE profiles the
drain (py-spy raw, per thread). BENCH_PIN=1 puts the SMSC process on CPU 1 and the bench
and the daemon on CPU 0: on this 2-core machine the daemon and the bench's SMSC otherwise
share both cores, which a box draining to a remote aggregator does not. With
receipts, the SMSC answers each submit_sm with a deliver_sm receipt and the time until every
message is `delivered` in the journal (from /status) is printed too: `1` awaits each
receipt's answer before reading the next submit_sm (the test SMSC's way: the drain then runs
at one receipt round trip, a durable commit, per message), N > 1 keeps up to N receipts in
flight while it goes on answering submit_sm (an SMSC with a window on each direction).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from appliance.config import SMPPConfig  # noqa: E402
from appliance.model import OutPart  # noqa: E402
from appliance.uplink.smpp import SmppChannel  # noqa: E402
from fakes.smsc import Smsc  # noqa: E402
from installed import daemon_env  # noqa: E402


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

    def write_many(self, calls, *, wait=True):
        """The journal's batch entry point (the channel's real path), without the store."""
        for call in calls:
            call()
        return [None] * len(calls) if wait else None


def run(smsc, window: int, count: int, port: int = 0) -> tuple[float, float]:
    sink = CountingSink()
    sink.target = count
    conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=port or smsc.smsc_port,
                      username="bench", password="bench", windowsize=window,
                      deliveryreport=False)
    channel = SmppChannel(conn, sink)
    freed = threading.Event()
    channel.set_wake(freed.set)
    channel.start()
    while channel.state != "bound":
        time.sleep(0.01)
    parts = [OutPart(id=i, message_id=str(i), recipient="+36201234567", originator="BENCH",
                     text=f"benchmark message {i}") for i in range(count)]
    start, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while not sink.finished.is_set():
        room = channel.free_slots()          # feed it as the dispatcher does: batches, woken
        if room and sent < count:
            channel.submit_batch(parts[sent:sent + room])
            sent += room
        freed.wait(0.05)
        freed.clear()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    channel.stop()
    return count / elapsed, cpu / count * 1e6


class SmscProcess:
    """The test SMSC in a process of its own, as a real peer is: the client measured does
    not share its interpreter (and GIL) with the SMSC's Python side. `port` goes through its
    link proxy (`down()` / `up()`), `smsc_port` straight to it."""
    NAME = "the test SMSC (smpp34)"

    def __init__(self, receipts: int = 0):
        """`receipts`: 0 none; 1 a receipt per submit_sm, each answered before the SMSC
        reads on; N > 1 receipts with a window of N (see serve_smsc)."""
        self.proc = subprocess.Popen([sys.executable, __file__, "--smsc-process",
                                      str(int(receipts))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=_on_cpu(1) if _pinned() else None)
        self.smsc_port, self.port = map(int, self.proc.stdout.readline().split())

    def _ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def down(self) -> None:
        self._ask("down")

    def up(self) -> None:
        self._ask("up")

    def counts(self) -> tuple[int, int]:
        """(submit_sm received, distinct texts among them)"""
        received, distinct = self._ask("count").split()
        return int(received), int(distinct)

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


class FastSmscProcess:
    """bench/fast_smsc.py in a process of its own: answers submit_sm at a few µs each, so
    the client measured through it sets the pace (no proxy, no receipts)."""
    NAME = "bench/fast_smsc.py (a peer that keeps up)"

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fast_smsc.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=_on_cpu(1) if _pinned() else None)
        self.smsc_port = self.port = int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


# BENCH_PIN=1: the SMSC process on CPU 1, everything else on CPU 0, as with a remote
# aggregator, whose CPU the appliance does not share (decided before anything is pinned)
PINNED = os.environ.get("BENCH_PIN") == "1" and {0, 1} <= os.sched_getaffinity(0)


def _pinned() -> bool:
    return PINNED


def _cpu_sharing() -> str:
    """How the figures were taken: a ratio means little without it."""
    if _pinned():
        return "the SMSC on CPU 1, the daemon and the channel alone on CPU 0 (BENCH_PIN=1)"
    return (f"the SMSC, the daemon and the channel alone share {len(os.sched_getaffinity(0))}"
            " CPUs (BENCH_PIN=1 gives the SMSC a CPU of its own, as a remote aggregator has)")


def _on_cpu(cpu: int):
    return lambda: os.sched_setaffinity(0, {cpu})


def serve_smsc(receipts: int) -> None:
    """`receipts` 1: the test SMSC as the tests have it, which awaits each receipt's
    deliver_sm_resp before it reads the next submit_sm (so a drain with receipts runs at one
    receipt round trip per message); N > 1: up to N receipts in flight while submit_sm keep
    being answered, as an SMSC with a window on each direction does."""
    smsc = Smsc(receipts=receipts > 0, receipt_window=receipts if receipts > 1 else 0).start()
    smsc.received = _Count()              # a bench SMSC keeps no record per message
    smsc.proxy.tap_wire = False
    print(smsc.smsc_port, smsc.port, flush=True)
    for line in sys.stdin:                # until the parent closes the pipe
        command = line.strip()
        if command in ("down", "up"):
            smsc.proxy.down = command == "down"
            print("ok", flush=True)
        elif command == "count":
            print(smsc.received.count, len(smsc.received.texts), flush=True)
    smsc.stop()


class _Count(list):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.texts: set[bytes] = set()

    def append(self, record) -> None:
        self.count += 1
        self.texts.add(record.short_message)


def smpplib_alone(smsc, window: int, count: int) -> tuple[float, float]:
    """smpplib's own rate: its blocking Client, with up to `window` submit_sm in flight."""
    import smpplib.client
    import smpplib.consts
    import smpplib.exceptions
    client = smpplib.client.Client("127.0.0.1", smsc.smsc_port, allow_unknown_opt_params=True)
    client.connect()
    client.bind_transmitter(system_id="bench", password="bench")
    start, cpu = time.perf_counter(), time.process_time()
    sent = answered = 0
    while answered < count:
        while sent < count and sent - answered < window:
            client.send_message(source_addr_ton=5, source_addr_npi=0, source_addr="BENCH",
                                dest_addr_ton=1, dest_addr_npi=1,
                                destination_addr="36201234567",
                                short_message=f"benchmark message {sent}".encode())
            sent += 1
        if client.read_pdu().command == "submit_sm_resp":
            answered += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    try:
        client.unbind()
    except smpplib.exceptions.ConnectionError:      # smpp34 may close before unbind_resp
        pass
    client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN     # no "bound state" warning
    client.disconnect()
    return count / elapsed, cpu / count * 1e6


# --- end to end ---------------------------------------------------------------------------

PASSWORD = "bench-secret-1"


def start_daemon(state: Path, smsc_port: int, window: int,
                 receipts: bool = False) -> tuple[subprocess.Popen, int]:
    config = state / "config.toml"
    config.write_text(
        '[http]\nhost = "127.0.0.1"\nport = 0\n'
        '[connections.SMPP0]\ntype = "SMPP"\nhost = "127.0.0.1"\n'
        f'port = {smsc_port}\nusername = "bench"\npassword = "bench"\n'
        f'windowsize = {window}\ndeliveryreport = {"true" if receipts else "false"}\n'
        'messageidbase = "hex-decimal"\n'      # the test SMSC's receipts write ids in decimal
        'reconnectdelay = 0.1\nreconnectmaxdelay = 0.2\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--config", str(config),
         "--state-dir", str(state / "state"), "--admin-password", PASSWORD],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=daemon_env())
    for line in proc.stdout:
        match = re.search(r"is running: http://127\.0\.0\.1:(\d+)/status", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, int(match.group(1))
    raise RuntimeError("the daemon did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far per thread id of `pid` (/proc/PID/task)."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[task.name] = (int(fields[11]) + int(fields[12])) / tick
    return out


def thread_names(pid: int) -> dict[str, str]:
    """Thread id -> Python thread name, from `py-spy dump` when py-spy is installed."""
    try:
        dump = subprocess.run([py_spy(), "dump", "-p", str(pid)], capture_output=True,
                              text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return _parse_dump(dump)


def py_spy() -> str:
    """py-spy beside this interpreter (`.venv/bin/pip install py-spy`; .venv/bin is not
    always on PATH), else whatever PATH has."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


def _parse_dump(dump: str) -> dict[str, str]:
    names = {}
    for m in re.finditer(r'Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): "([^"]*)"', dump):
        ident = m.group(1)
        names[str(int(ident, 16)) if ident.startswith("0x") else ident] = m.group(2)
    return names


def load(port: int, seconds: float, clients: int) -> int:
    accepted = [0] * clients
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.monotonic() < deadline:
            query = urllib.parse.urlencode({
                "action": "sendmessage", "username": "admin", "password": PASSWORD,
                "recipient": f"+3620{index:02d}{n:05d}", "messagedata": f"e2e {index} {n}"})
            conn.request("GET", f"/api?{query}")
            body = conn.getresponse().read()
            if b"<statuscode>0</statuscode>" in body:
                accepted[index] += 1
            n += 1
        conn.close()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return sum(accepted)


def end_to_end(seconds: float, clients: int, window: int) -> None:
    smsc = Smsc().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            proc, port = start_daemon(Path(tmp), smsc.smsc_port, window)
            try:
                while not smsc.binds:
                    time.sleep(0.05)
                cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
                accepted = load(port, seconds, clients)
                during = len(smsc.received)
                load_time = time.monotonic() - t0
                deadline = time.monotonic() + 120
                while len(smsc.received) < accepted and time.monotonic() < deadline:
                    time.sleep(0.05)
                total_time = time.monotonic() - t0
                cpu = cpu_seconds(proc.pid) - cpu0
                got = len(smsc.received)
                distinct = len({r.short_message for r in list(smsc.received)})
                print(f"e2e window {window}, {clients} clients, {seconds:g}s: {accepted} accepted;"
                      f" {during / load_time:.0f} submit_sm/s during the load,"
                      f" {got / total_time:.0f} to the last one ({total_time:.1f}s);"
                      f" lost {max(0, accepted - distinct)}, sent twice {got - distinct};"
                      f" daemon CPU {cpu / max(1, got) * 1e6:.0f} µs/message")
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        smsc.stop()


def send_batches(port: int, count: int, tag: str = "") -> int:
    """`count` messages in POSTs of 1000; `tag` keeps each round's texts distinct (the
    SMSC counts distinct texts to tell lost and doubled messages)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    accepted = 0
    for start in range(0, count, 1000):
        n = min(1000, count - start)
        fields = {"action": "sendmessage", "username": "admin", "password": PASSWORD,
                  "messagecount": n, "messagetype": "SMS:TEXT"}
        for i in range(n):
            fields[f"recipient{i}"] = f"+3620{(start + i) % 10_000_000:07d}"
            fields[f"messagedata{i}"] = f"backlog {tag}{start + i}"
        conn.request("POST", "/api", urllib.parse.urlencode(fields),
                     {"Content-Type": "application/x-www-form-urlencoded"})
        body = conn.getresponse().read().decode()
        accepted += len(re.findall(r"<statuscode\d*>0</statuscode\d*>", body))
    conn.close()
    return accepted


class FeedSampler:
    """The channel's state during a drain, from /status (every 50 ms): parts waiting in its
    memory and the window in use. A drain whose window was always full with parts waiting
    was held by the link (the SMSC's answers, the CPU it shares), not by the dispatcher's
    feed or the store."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.waiting: list[int] = []
        self.in_use: list[int] = []

    def sample(self) -> None:
        self.conn.request("GET", "/status")
        uplinks = json.loads(self.conn.getresponse().read())["uplinks"]
        if uplinks and uplinks[0]["state"] == "bound":
            self.waiting.append(uplinks[0]["queued"])
            self.in_use.append(uplinks[0]["window"]["in_use"])

    def summary(self, window: int) -> str:
        if not self.waiting:
            return "feed: no sample while bound"
        full = sum(1 for n in self.in_use if n >= window) / len(self.in_use)
        dry = sum(1 for n in self.waiting if n == 0) / len(self.waiting)
        return (f"feed ({len(self.waiting)} samples): parts waiting in the channel min"
                f" {min(self.waiting)}, median {statistics.median(self.waiting):.0f}; window"
                f" full in {full:.0%} of samples, nothing waiting in {dry:.0%}")


def delivered(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/status")
    status = json.loads(conn.getresponse().read())
    conn.close()
    return status["queue"].get("delivered", 0)


def store_commits(port: int) -> int:
    """The journal's group commits so far (/metrics `sms_store_commits`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    match = re.search(r"^sms_store_commits(?:_total)? (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else -1


def start_profiler(pid: int) -> subprocess.Popen | None:
    """With BENCH_PYSPY=FILE, py-spy samples the daemon during the drain (raw, 250 Hz)
    into FILE: aggregate it by function to see where the CPU per message goes."""
    out = os.environ.get("BENCH_PYSPY")
    if not out:
        return None
    return subprocess.Popen([py_spy(), "record", "-p", str(pid), "-r", "250", "-f", "raw",
                             "-o", out, "--nonblocking", "--threads"]
                            + (["--gil"] if os.environ.get("BENCH_PYSPY_GIL") else []), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        profiler.send_signal(2)         # SIGINT: py-spy writes its file and exits
        profiler.wait(30)


def backlog(count: int, window: int, receipts: int, rounds: int = 1) -> None:
    """The drain rate, and the channel alone (this process, a counting sink) through the
    same SMSC process and proxy before and after each drain, so each ratio comes from
    neighbouring runs; with several rounds (alone, drain, alone, drain, ..., alone) the
    median ratio is printed too: on a shared machine the channel alone moves by a third
    from one run to the next, so one ratio says little."""
    if _pinned():       # this process, the channel alone and the daemon it starts
        os.sched_setaffinity(0, {0})
    smsc = SmscProcess(receipts)
    try:
        alone = [alone_run(smsc, window)]
        ratios = []
        for round_no in range(rounds):
            drain = drain_once(smsc, count, window, receipts > 0, tag=f"r{round_no} ")
            alone.append(alone_run(smsc, window))
            (before, before_cpu, before_smsc), (after, after_cpu, after_smsc) = alone[-2:]
            ratios.append(drain / ((before + after) / 2))
            print(f"  the channel alone through the same SMSC and proxy, before/after the drain:"
                  f" {before:.0f}/{after:.0f} submit_sm/s ({before_cpu:.0f}/{after_cpu:.0f} µs"
                  f" CPU each; the SMSC process {(before_smsc + after_smsc) / 2:.0f}"
                  f" µs/message); drain/alone {ratios[-1]:.2f}")
        if rounds > 1:
            print(f"drain/alone over {rounds} rounds: median {statistics.median(ratios):.2f}"
                  f" ({', '.join(f'{r:.2f}' for r in ratios)}); {_cpu_sharing()}")
    finally:
        smsc.stop()


def alone_run(smsc: "SmscProcess", window: int, count: int = 20_000) -> tuple[float, float, float]:
    """The channel alone: (submit_sm/s, its CPU µs each, the SMSC process's CPU µs each)."""
    smsc_cpu0 = cpu_seconds(smsc.proc.pid)
    rate, cpu = run(smsc, window, count, port=smsc.port)
    return rate, cpu, (cpu_seconds(smsc.proc.pid) - smsc_cpu0) / count * 1e6


def drain_once(smsc: "SmscProcess", count: int, window: int, receipts: bool,
               tag: str = "") -> float:
    """A fresh daemon takes `count` messages while the SMSC is unreachable, then the link
    comes back; prints the drain and returns its rate (submit_sm/s)."""
    smsc.down()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_daemon(Path(tmp), smsc.port, window, receipts)
        try:
            accepted = send_batches(port, count, tag)
            profiler = start_profiler(proc.pid)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            cpu_split0 = cpu_split(proc.pid)
            threads0 = thread_cpu(proc.pid)
            commits0 = store_commits(port)
            smsc_cpu0 = cpu_seconds(smsc.proc.pid)
            received0, distinct0 = smsc.counts()     # the channel alone's, before
            smsc.up()
            feed = FeedSampler(port)
            deadline = time.monotonic() + 600
            while smsc.counts()[0] - received0 < accepted and time.monotonic() < deadline:
                time.sleep(0.05)
                feed.sample()
            elapsed, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
            user_sys = [b - a for a, b in zip(cpu_split0, cpu_split(proc.pid))]
            threads = thread_cpu(proc.pid)
            commits = store_commits(port) - commits0
            smsc_cpu = cpu_seconds(smsc.proc.pid) - smsc_cpu0
            stop_profiler(profiler)
            got = smsc.counts()[1] - distinct0
            drain = got / elapsed
            print(f"backlog window {window}: {accepted} queued while down, drained at"
                  f" {drain:.0f} submit_sm/s ({elapsed:.1f}s); lost"
                  f" {max(0, accepted - got)}; daemon CPU {cpu / max(1, got) * 1e6:.0f}"
                  f" µs/message (user {user_sys[0] / max(1, got) * 1e6:.0f},"
                  f" system {user_sys[1] / max(1, got) * 1e6:.0f})")
            per_thread = sorted(((threads[n] - threads0.get(n, 0.0), n) for n in threads),
                                reverse=True)
            names = thread_names(proc.pid)
            print(f"  {commits} store commits ({got / max(1, commits):.0f} messages each);"
                  f" the SMSC process (SMSC and link proxy): {smsc_cpu / max(1, got) * 1e6:.0f}"
                  " µs CPU/message")
            print("  " + feed.summary(window))
            print("  per thread, µs/message: " + ", ".join(
                f"{names.get(n, n)} {t / max(1, got) * 1e6:.0f}"
                for t, n in per_thread if t > 0))
            if receipts:
                while delivered(port) < accepted and time.monotonic() < deadline:
                    time.sleep(0.1)
                elapsed = time.monotonic() - t0
                print(f"  receipts: {delivered(port)} of {accepted} delivered"
                      f" {elapsed:.1f}s after the link came back"
                      f" ({delivered(port) / elapsed:.0f}/s end to end)")
            return drain
        finally:
            proc.terminate()
            proc.wait(30)


def receipt_burst(count: int) -> None:
    """`count` parts submitted through the channel into a real journal, then the SMSC sends
    all their receipts at once; printed: receipts settled per second (until the last
    deliver_sm_resp), the group commits they took, and the CPU per receipt of this process
    (channel, journal writer and the SMSC's Python side)."""
    from appliance.compose import Submission, prepare
    from appliance.store.journal import Journal
    smsc = Smsc().start()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal.open(tmp)
        conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=smsc.smsc_port, username="b",
                          password="b", windowsize=50, messageidbase="hex-decimal")
        channel = SmppChannel(conn, journal)
        channel.start()
        try:
            while channel.state != "bound":
                time.sleep(0.01)
            for start in range(0, count, 1000):
                journal.accept([prepare(Submission(user="admin", recipient=f"+3620{i:07d}",
                                                   text=f"r{i}"))
                                for i in range(start, min(count, start + 1000))])
            parts = journal.due_parts(limit=count)
            journal.claim([(p.id, "SMPP0") for p in parts])
            for start in range(0, count, 100):
                while channel.free_slots() < 100:
                    time.sleep(0.001)
                channel.submit_batch(parts[start:start + 100])
            while journal.stats()["parts_by_state"].get("submitted", 0) < count:
                time.sleep(0.05)
            answered = []
            commits, cpu, t0 = journal.commits, time.process_time(), time.monotonic()
            smsc.receipt_burst(list(smsc.received), lambda record, status: answered.append(1))
            while len(answered) < count:
                time.sleep(0.005)
            elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu
            delivered = journal.stats()["parts_by_state"].get("delivered", 0)
            print(f"receipt burst: {count} deliver_sm, all answered in {elapsed:.2f}s"
                  f" ({count / elapsed:.0f}/s), {journal.commits - commits} commits,"
                  f" {delivered} parts delivered; CPU {cpu / count * 1e6:.0f} µs/receipt"
                  " (channel, store and SMSC together)")
        finally:
            channel.stop()
            journal.close()
            smsc.stop()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--receipts":
        receipt_burst(int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--backlog":
        args = [int(a) for a in sys.argv[2:]]
        count, window, receipts, rounds = (args + [20_000, 10, 0, 1][len(args):])[:4]
        backlog(count, window, receipts, rounds)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--e2e":
        args = [float(a) for a in sys.argv[2:]]
        seconds, clients, window = (args + [10, 8, 10][len(args):])[:3]
        end_to_end(seconds, int(clients), int(window))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--smsc-process":
        serve_smsc(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
        return
    # 30,000 per run: a run of 5,000 lasted under a second at window 10, and its ratio moved
    # between 0.84 and 0.96 from one run of the bench to the next (bind and warm-up inside
    # the timed part); at 30,000 it is the steady state that is compared
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    for peer in (SmscProcess, FastSmscProcess):
        compare_clients(peer, count)


def compare_clients(make_peer, count: int) -> None:
    """Our channel and smpplib alone through one peer, at windows 1, 10 and 50. Each line
    also gives the peer process's CPU per submit_sm with each client: near a whole core,
    the peer and not the client sets the pace, and the ratio compares the peer with itself."""
    peer = make_peer()
    if _pinned():           # the peer on CPU 1 (started first), both clients on CPU 0
        os.sched_setaffinity(0, {0})
    print(f"through {peer.NAME}:")
    try:
        for window in (1, 10, 50):
            n = count if window > 1 else count // 5
            ours, theirs = [], []
            for _ in range(3):              # alternate, so a busy moment hits both
                ours.append(_with_peer_cpu(peer, run, window, n))
                theirs.append(_with_peer_cpu(peer, smpplib_alone, window, n))
            (rate, cpu, peer_cpu), (ref_rate, ref_cpu, ref_peer_cpu) = max(ours), max(theirs)
            print(f"  window {window:>3}: {rate:6.0f} submit_sm/s ({cpu:.0f} µs CPU each, the"
                  f" peer {peer_cpu:.0f} µs); smpplib alone {ref_rate:6.0f} ({ref_cpu:.0f} µs,"
                  f" the peer {ref_peer_cpu:.0f} µs); ratio {rate / ref_rate:.2f}")
    finally:
        peer.stop()
        if _pinned():
            os.sched_setaffinity(0, {0, 1})


def _with_peer_cpu(peer, client, window: int, count: int) -> tuple[float, float, float]:
    """(submit_sm/s, the client's CPU µs each, the peer process's CPU µs each)"""
    before = cpu_seconds(peer.proc.pid)
    rate, cpu = client(peer, window, count)
    return rate, cpu, (cpu_seconds(peer.proc.pid) - before) / count * 1e6

if __name__ == "__main__":
    main()
