"""The reliability suite (`make test-reliability`, run by .ci/run; not in the default run).
Each test prints its figures. Real processes, a real SQLite file, the smpp34 SMSC on
127.0.0.1, the pty modem simulator; power loss through tests/reliability/powercut.c.

- kill -9 under load: N kills of the daemon while clients send; accepted, lost (0),
  duplicates at the SMSC, refused connections, time to first answer after each restart.
- power loss: only fsync'ed data survives each cut; every message answered with success is
  there afterwards and the database is consistent.
- soak: modems with random faults and SMPP link drops under steady load; every message ends
  delivered or in notsent with a reason; RSS growth per hour.
- full disk: accepts refused with the dialect's error, nothing accepted lost, recovery when
  space returns.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fakes.smsc import Smsc
from reliability.kit import (Clients, DaemonProcess, build_shim, copy_state, free_port,
                             integrity, journal_rows, robust_smsc, send_one, wait_answering,
                             write_config)

pytestmark = pytest.mark.reliability

KILLS = int(os.environ.get("RELIABILITY_KILLS", "8"))
CUTS = int(os.environ.get("RELIABILITY_CUTS", "4"))
CLIENTS = int(os.environ.get("RELIABILITY_CLIENTS", "6"))
SEED = int(os.environ.get("RELIABILITY_SEED", "17"))
ACTIVE = ("scheduled", "queued", "sending")


def _figures(name: str, **values) -> None:
    print(f"\n[reliability] {name}: " + ", ".join(f"{k} {v}" for k, v in values.items()),
          flush=True)


def _smsc_counts(smsc: Smsc) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in smsc.received:
        text = record.short_message.decode("latin-1")
        counts[text] = counts.get(text, 0) + 1
    return counts


def _wait_settled(state_dir: Path, timeout: float = 240) -> int:
    """Wait until no message is waiting or sending; returns how many still are."""
    deadline = time.monotonic() + timeout
    left = -1
    while time.monotonic() < deadline:
        left = journal_rows(state_dir, "SELECT count(*) FROM messages WHERE direction='out'"
                            f" AND state IN {ACTIVE}")[0][0]
        if left == 0:
            return 0
        time.sleep(0.5)
    return left


def test_kill_9_under_load_loses_nothing(tmp_path):
    rng = random.Random(SEED)
    smsc = robust_smsc(receipts=True)
    state = tmp_path / "state"
    port = free_port()
    daemon = DaemonProcess(write_config(tmp_path / "config.toml", state, port, smsc.port),
                           tmp_path / "daemon.log")
    clients = None
    first_answers: list[float] = []
    try:
        daemon.start()
        assert wait_answering(port), (tmp_path / "daemon.log").read_text()[-2000:]
        clients = Clients(port, CLIENTS, prefix="kill").start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.5, 3.5))
            daemon.kill9()
            before = len(clients.tally.successes)
            restarted = daemon.start()
            deadline = time.monotonic() + 60
            while len(clients.tally.successes) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            after = [t for t in clients.tally.successes[before:]]
            assert after, "no answer within 60 s of a restart"
            first_answers.append(min(after) - restarted)
        time.sleep(1)
        tally = clients.stop()
        clients = None
        left = _wait_settled(state)
        stored = dict(journal_rows(state, "SELECT id, body FROM messages WHERE direction='out'"))
        lost = [text for text, mid in tally.accepted.items() if stored.get(mid) != text]
        counts = _smsc_counts(smsc)
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        unaccepted_sent = sum(1 for text in counts if text not in tally.accepted)
        _figures("kill -9", kills=KILLS, clients=CLIENTS, accepted=len(tally.accepted),
                 lost=len(lost), duplicates=duplicates,
                 refused_connections=tally.refused_connections,
                 other_errors=len(tally.errors),
                 first_answer_s=f"min {min(first_answers):.2f} / max {max(first_answers):.2f}"
                 f" / mean {sum(first_answers) / len(first_answers):.2f}",
                 still_waiting=left, sent_but_unanswered=unaccepted_sent)
        assert lost == []
        assert left == 0
        assert all(text in counts for text in tally.accepted)        # every one went out
        assert integrity(state) == "ok"
        assert daemon.stop() == 0
    finally:
        if clients:
            clients.stop()
        daemon.kill9()
        smsc.stop()


def _consistency_problems(state_dir: Path) -> list[str]:
    """Each message's state is what its parts add up to; every part and event has its message."""
    from appliance.store.message_state import aggregate
    problems = []
    parts: dict[str, list[str]] = {}
    for message_id, state in journal_rows(state_dir, "SELECT message_id, state FROM parts"):
        parts.setdefault(message_id, []).append(state)
    for message_id, state, total in journal_rows(
            state_dir, "SELECT id, state, parts_total FROM messages WHERE direction='out'"):
        states = parts.pop(message_id, [])
        if len(states) != total:
            problems.append(f"{message_id}: {len(states)} parts of {total}")
        elif aggregate(states).value != state:
            problems.append(f"{message_id}: state {state} but parts {states}")
    problems += [f"parts without a message: {m}" for m in parts]
    orphans = journal_rows(state_dir, "SELECT count(*) FROM events WHERE message_id NOT IN"
                           " (SELECT id FROM messages)")[0][0]
    if orphans:
        problems.append(f"{orphans} events without a message")
    return problems


def test_power_loss_keeps_every_answered_message(tmp_path):
    """Each round runs the daemon under the power-cut shim, cuts the power (kill -9) at a
    random moment, and the next round starts on what the shim kept: only fsync'ed data."""
    rng = random.Random(SEED + 1)
    shim = build_shim(tmp_path)
    smsc = robust_smsc(receipts=True)
    port = free_port()
    disk = tmp_path / "disk0"
    disk.mkdir()
    accepted: dict[str, str] = {}
    dropped_bytes, live_counts = [], []
    daemon = clients = None
    try:
        for cut in range(CUTS):
            live, survived = (tmp_path / f"live{cut}").resolve(), (tmp_path / f"disk{cut + 1}")
            copy_state(disk, live)
            copy_state(disk, survived)
            daemon = DaemonProcess(
                write_config(tmp_path / f"config{cut}.toml", live, port, smsc.port),
                tmp_path / "daemon.log",
                env={"LD_PRELOAD": str(shim), "POWERCUT_WATCH": str(live),
                     "POWERCUT_SHADOW": str(survived.resolve())})
            daemon.start()
            assert wait_answering(port), (tmp_path / "daemon.log").read_text()[-2000:]
            clients = Clients(port, CLIENTS, prefix=f"cut{cut}").start()
            time.sleep(rng.uniform(2.0, 5.0))
            daemon.kill9()                                  # the power goes
            live_counts.append(journal_rows(live, "SELECT count(*) FROM messages")[0][0])
            accepted.update(clients.stop().accepted)
            clients = None
            dropped_bytes.append(_differing_bytes(live, survived))
            disk = survived
            assert integrity(disk) == "ok"
            stored = dict(journal_rows(disk, "SELECT id, body FROM messages"))
            lost = [t for t, mid in accepted.items() if stored.get(mid) != t]
            assert lost == [], f"cut {cut}: {len(lost)} answered messages lost: {lost[:5]}"

        final = (tmp_path / "final").resolve()
        copy_state(disk, final)
        daemon = DaemonProcess(write_config(tmp_path / "final.toml", final, port, smsc.port),
                               tmp_path / "daemon.log")
        started = daemon.start()
        assert wait_answering(port)
        outcome, _ = send_one(port, "after the last cut")
        first_answer = time.monotonic() - started
        left = _wait_settled(final)
        assert daemon.stop() == 0
        stored = dict(journal_rows(final, "SELECT id, body FROM messages"))
        lost = [t for t, mid in accepted.items() if stored.get(mid) != t]
        problems = _consistency_problems(final)
        counts = _smsc_counts(smsc)
        _figures("power loss", cuts=CUTS, accepted=len(accepted), lost=len(lost),
                 unsynced_bytes_lost_per_cut=dropped_bytes,
                 live_messages_at_cuts=live_counts,
                 duplicates=sum(n - 1 for n in counts.values() if n > 1),
                 first_answer_s=f"{first_answer:.2f}", still_waiting=left,
                 integrity=integrity(final), inconsistencies=len(problems))
        assert outcome == "ok" and lost == [] and left == 0
        assert problems == [] and integrity(final) == "ok"
    finally:
        if clients:
            clients.stop()
        if daemon:
            daemon.kill9()
        smsc.stop()


def _differing_bytes(live: Path, survived: Path) -> int:
    """Bytes the page cache had that the disk did not (the -shm index is not counted)."""
    total = 0
    for path in live.iterdir():
        if not path.is_file() or path.name.endswith("-shm"):
            continue
        a = path.read_bytes()
        other = survived / path.name
        b = other.read_bytes() if other.exists() else b""
        total += abs(len(a) - len(b)) + sum(x != y for x, y in zip(a, b))
    return total


def test_the_power_cut_shim_drops_what_was_not_fsynced(tmp_path):
    """The shim can fail a test: SQLite with synchronous=OFF loses committed rows in a cut,
    with synchronous=FULL (the journal's setting) it keeps every one."""
    shim = build_shim(tmp_path)
    script = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1] + '/db.sqlite3', isolation_level=None)\n"
        "c.execute('PRAGMA journal_mode=WAL')\n"
        "c.execute('PRAGMA synchronous=' + sys.argv[2])\n"
        "c.execute('CREATE TABLE t(x)')\n"
        "[c.execute('INSERT INTO t VALUES (?)', (i,)) for i in range(300)]\n"
        "os.kill(os.getpid(), 9)\n")
    survived = {}
    for mode in ("OFF", "FULL"):
        live, disk = (tmp_path / f"live-{mode}").resolve(), (tmp_path / f"disk-{mode}").resolve()
        live.mkdir()
        disk.mkdir()
        subprocess.run(["python3", "-c", script, str(live), mode], check=False,
                       env={**os.environ, "LD_PRELOAD": str(shim), "POWERCUT_WATCH": str(live),
                            "POWERCUT_SHADOW": str(disk)})
        try:
            survived[mode] = journal_rows_file(disk / "db.sqlite3", "SELECT count(*) FROM t")
        except Exception:
            survived[mode] = 0
    _figures("power-cut shim", rows_committed=300, kept_sync_off=survived["OFF"],
             kept_sync_full=survived["FULL"])
    assert survived["FULL"] == 300 and survived["OFF"] < 300


def journal_rows_file(path: Path, sql: str) -> int:
    import sqlite3
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


class SmallDisk:
    """A small filesystem for the state: a real tmpfs when this process may mount (root),
    else the shim's injected ENOSPC (writes that would grow a file fail) while a flag exists."""

    def __init__(self, tmp_path: Path, size_kib: int):
        self.path = (tmp_path / "small-disk").resolve()
        self.path.mkdir()
        self.flag = tmp_path / "disk-full.flag"
        self.size_kib = size_kib
        self.env: dict = {}
        self.kind = "tmpfs"
        if os.environ.get("RELIABILITY_DISK") == "shim" or subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(self.path)],
                capture_output=True).returncode != 0:
            self.kind = "shim ENOSPC"
            self.env = {"LD_PRELOAD": str(build_shim(tmp_path)),
                        "POWERCUT_WATCH": str(self.path),
                        "POWERCUT_SHADOW": str((tmp_path / "unused-shadow").resolve()),
                        "POWERCUT_FULL": str(self.flag)}
            (tmp_path / "unused-shadow").mkdir()

    def fill(self) -> None:
        """tmpfs: the size limit does it as the journal grows; shim: from now on."""
        if self.kind != "tmpfs":
            self.flag.write_text("full")

    def free(self) -> None:
        if self.kind == "tmpfs":
            subprocess.run(["mount", "-o", "remount,size=256m", str(self.path)], check=True)
        else:
            self.flag.unlink()

    def close(self) -> None:
        if self.kind == "tmpfs":
            subprocess.run(["umount", "-l", str(self.path)], check=False)


def test_full_disk_refuses_with_the_dialects_error_and_recovers(tmp_path):
    disk = SmallDisk(tmp_path, size_kib=1536)
    port = free_port()
    daemon = DaemonProcess(write_config(tmp_path / "config.toml", disk.path, port),
                           tmp_path / "daemon.log", env=disk.env)
    clients = None
    try:
        daemon.start()
        assert wait_answering(port), (tmp_path / "daemon.log").read_text()[-2000:]
        assert send_one(port, "before the disk filled")[0] == "ok"
        disk.fill()
        clients = Clients(port, 4, prefix="full").start()
        deadline = time.monotonic() + 120
        while len(clients.tally.errors) < 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        full_errors = list(clients.tally.errors)
        accepted_while_full = len(clients.tally.accepted)
        assert daemon.alive(), (tmp_path / "daemon.log").read_text()[-3000:]
        assert len(full_errors) >= 50, "the disk never filled"
        disk.free()
        recovered_at = time.monotonic()
        before = len(clients.tally.successes)
        while len(clients.tally.successes) < before + 50 and time.monotonic() < deadline + 60:
            time.sleep(0.05)
        recovery = time.monotonic() - recovered_at
        tally = clients.stop()
        clients = None
        assert daemon.stop() == 0
        stored = dict(journal_rows(disk.path, "SELECT id, body FROM messages"))
        lost = [t for t, mid in tally.accepted.items() if stored.get(mid) != t]
        kinds = sorted({_error_kind(e) for e in full_errors})
        _figures("full disk", filesystem=disk.kind, accepted=len(tally.accepted),
                 accepted_while_filling=accepted_while_full, refused=len(full_errors),
                 refusal_kinds=kinds, lost=len(lost),
                 recovery_s=f"{recovery:.2f}", integrity=integrity(disk.path))
        assert len(tally.successes) >= before + 50             # accepting again
        assert lost == [] and integrity(disk.path) == "ok"
        assert all(k.startswith("ozeki errorcode") for k in kinds), full_errors[:3]
    finally:
        if clients:
            clients.stop()
        daemon.kill9()
        disk.close()


def _error_kind(answer: str) -> str:
    import re
    code = re.search(r"<errorcode>(\d+)</errorcode>", answer)
    message = re.search(r"<errormessage>([^<]*)</errormessage>", answer)
    if code:
        return f"ozeki errorcode {code.group(1)}: {message.group(1) if message else ''}"[:80]
    return answer[:80]
