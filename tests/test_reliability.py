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
