"""Tools of the reliability suite (tests/test_reliability.py, `make test-reliability`):
the daemon as a real process on a state directory, HTTP clients that remember every message
the appliance answered with success, and the power-cut shim (powercut.c) built with cc."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "reliability-admin-1"
_MESSAGE_ID = re.compile(r"<messageid>([^<]+)</messageid>")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_shim(out_dir: Path) -> Path:
    """Compile powercut.c into a shared object (cc from build-essential)."""
    target = out_dir / "powercut.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(target),
                    str(Path(__file__).with_name("powercut.c")), "-ldl", "-lpthread"],
                   check=True)
    return target


def write_config(path: Path, state_dir: Path, port: int, smsc_port: int | None = None,
                 extra: str = "") -> Path:
    text = (f'[http]\nhost = "127.0.0.1"\nport = {port}\n'
            f'[store]\nstate_dir = "{state_dir}"\n')
    if smsc_port:
        text += (f'[connections.SMPP0]\ntype = "SMPP"\nhost = "127.0.0.1"\nport = {smsc_port}\n'
                 'username = "rel"\npassword = "rel"\nwindowsize = 10\n')
    path.write_text(text + extra)
    return path


class DaemonProcess:
    """`sms-appliance run` in its own process; kill -9 and start again on the same state."""

    def __init__(self, config: Path, log: Path, env: dict | None = None):
        self.config = config
        self.log = log
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start; returns time.monotonic() at the start."""
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "appliance", "run", "--config", str(self.config),
                 "--admin-password", PASSWORD], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env})
        return started

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode if self.proc else None

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)


@dataclass
class Tally:
    accepted: dict = field(default_factory=dict)      # text -> message id
    refused_connections: int = 0                      # nobody listening (the daemon was down)
    errors: list = field(default_factory=list)        # answers that were not a success
    successes: list = field(default_factory=list)     # monotonic times of success answers
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_one(port: int, text: str, recipient: str = "+36201234567",
             timeout: float = 30) -> tuple[str, str]:
    """('ok', id) | ('refused', '') | ('error', what)."""
    query = urllib.parse.urlencode({"action": "sendmessage", "username": "admin",
                                    "password": PASSWORD, "recipient": recipient,
                                    "messagedata": text})
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api?{query}",
                                    timeout=timeout) as answer:
            body = answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return "error", f"HTTP {exc.code}: {exc.read()[:200]!r}"
    except ConnectionRefusedError:
        return "refused", ""
    except http.client.HTTPException as exc:        # the answer was cut off by the kill
        return "error", f"{type(exc).__name__}"
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ConnectionRefusedError):
            return "refused", ""
        return "error", f"{type(reason).__name__}: {reason}"
    ids = _MESSAGE_ID.findall(body)
    return ("ok", ids[0]) if ids else ("error", body[:300])


class Clients:
    """`count` threads sending unique texts as fast as the appliance answers."""

    def __init__(self, port: int, count: int, prefix: str = "rel"):
        self.port = port
        self.count = count
        self.prefix = prefix
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "Clients":
        for n in range(self.count):
            thread = threading.Thread(target=self._client, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> Tally:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        return self.tally

    def _client(self, n: int) -> None:
        seq = 0
        while not self._stop.is_set():
            text = f"{self.prefix} {n}-{seq}"
            seq += 1
            outcome, value = send_one(self.port, text)
            with self.tally.lock:
                if outcome == "ok":
                    self.tally.accepted[text] = value
                    self.tally.successes.append(time.monotonic())
                elif outcome == "refused":
                    self.tally.refused_connections += 1
                else:
                    self.tally.errors.append(value)
            if outcome == "refused":
                time.sleep(0.05)       # the daemon is restarting; do not spin


def wait_answering(port: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def journal_rows(state_dir: Path, sql: str, params=()) -> list:
    conn = sqlite3.connect(f"file:{state_dir / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def integrity(state_dir: Path) -> str:
    return journal_rows(state_dir, "PRAGMA integrity_check")[0][0]


def copy_state(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def robust_smsc(**kwargs):
    """The test SMSC, made to survive its client being killed: a receipt for a session that
    died with the daemon is dropped (the fake's serve loop would otherwise end)."""
    import smpp34

    from fakes.smsc import Smsc

    class KillProofSmsc(Smsc):
        async def _receipt(self, session, record):
            try:
                await super()._receipt(session, record)
            except (smpp34.SmppError, KeyError, OSError, ConnectionError):
                self.lost_receipts = getattr(self, "lost_receipts", 0) + 1

    return KillProofSmsc(**kwargs).start()
