"""Delivery receipts at the SMSC's rate (issue 15): a burst of receipts through the real
smpp34 SMSC is settled in a few group commits; no deliver_sm_resp leaves before its receipt
is durable in the journal file, and submit_sm keep leaving while those commits wait.
Real SQLite journal, real sockets on 127.0.0.1."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from appliance.compose import Submission, prepare
from appliance.config import SMPPConfig
from appliance.uplink.smpp import SmppChannel
from fakes.smsc import Smsc
from test_smpp import wait_until

BURST = 2000


@pytest.fixture
def smsc():
    server = Smsc(receipts=False).start()
    yield server
    server.stop()


@pytest.fixture
def channel(smsc, journal):
    conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=smsc.port, username="esme",
                      password="secret", windowsize=50, messageidbase="hex-decimal",
                      reconnectdelay=0.05, reconnectmaxdelay=0.2)
    channel = SmppChannel(conn, journal)
    channel.start()
    wait_until(lambda: channel.state == "bound", what="bind")
    yield channel
    channel.stop()


CALLBACK = {"kind": "ozeki_reporturl", "url": "http://127.0.0.1:1/report"}


def send_through(journal, channel, count: int, text: str) -> list:
    """Accept `count` messages (each with a report callback) and hand them to the channel
    as the dispatcher does."""
    journal.accept([prepare(Submission(user="admin", recipient=f"+3620{i:07d}",
                                       text=f"{text} {i}", callback=CALLBACK))
                    for i in range(count)])
    parts = journal.due_parts(limit=count)
    journal.claim([(p.id, "SMPP0") for p in parts])
    for start in range(0, len(parts), 100):
        wait_until(lambda: channel.free_slots() >= 100, what="room in the channel")
        channel.submit_batch(parts[start:start + 100])
    return parts


class DurableAtAnswer:
    """At each deliver_sm_resp, what a separate reader of the journal file sees."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.answers: list[tuple[int, str | None]] = []     # (resp status, part state)
        self._db = None

    def __call__(self, record, status: int) -> None:
        if self._db is None:           # on the SMSC's thread
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                       check_same_thread=False)
        reference = str(int(record.message_id, 16))
        row = self._db.execute("SELECT state FROM parts WHERE reference=?",
                               (reference,)).fetchone()
        with self.lock:
            self.answers.append((status, row[0] if row else None))


def test_a_burst_of_receipts_is_settled_in_few_commits_and_answered_only_when_durable(
        smsc, channel, journal):
    send_through(journal, channel, BURST, "burst")
    wait_until(lambda: journal.stats()["parts_by_state"] == {"submitted": BURST},
               timeout=60, what="all submitted")
    more = journal.accept([prepare(Submission(user="admin", recipient="+36209999999",
                                              text=f"later {i}")) for i in range(100)])
    later = journal.due_parts(limit=100)
    journal.claim([(p.id, "SMPP0") for p in later])
    assert len(later) == len(more) == 100

    gate = threading.Event()
    journal._writer.submit(lambda conn: gate.wait(60))      # the next commit waits for us
    observed = DurableAtAnswer(journal.path)
    try:
        smsc.receipt_burst(list(smsc.received), observed)
        wait_until(lambda: channel.counts["receipts"] == BURST, timeout=60,
                   what="every receipt read")
        # the receipts wait for their commit; the submit side does not wait for them
        channel.submit_batch(later)
        wait_until(lambda: len(smsc.received) == BURST + 100, timeout=30,
                   what="later submit_sm sent while the receipts' commit waits")
        assert observed.answers == []          # no deliver_sm_resp before the commit
        commits = journal.commits
    finally:
        gate.set()
    wait_until(lambda: len(observed.answers) == BURST, timeout=60, what="every answer")
    assert set(observed.answers) == {(0, "delivered")}     # durable when it was answered
    # read into a handful of write_many calls; the writer commits up to 512 at once
    assert journal.commits - commits <= BURST // 512 + 2
    wait_until(lambda: journal.stats()["parts_by_state"].get("submitted") == 100,
               what="the later parts recorded")
    assert journal.stats()["parts_by_state"] == {"delivered": BURST, "submitted": 100}
    assert journal.query("SELECT count(*) AS n FROM orphan_reports")[0]["n"] == 0
    # each receipt's callback is queued in the receipt's own commit, for the notifier
    assert journal.query("SELECT count(*) AS n FROM events WHERE kind='delivered'"
                         " AND state='pending'")[0]["n"] == BURST


def test_receipts_answered_by_a_worker_that_waits_for_each_commit_are_durable_too(
        smsc, journal):
    """The sink without `then` (a store that only commits while the caller waits): the
    answer still leaves after the commit."""
    class WaitingJournal:
        def __init__(self, journal):
            self._j = journal

        def __getattr__(self, name):
            return getattr(self._j, name)

        def write_many(self, calls, *, wait=True):
            return self._j.write_many(calls, wait=wait)

    conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=smsc.port, username="esme",
                      password="secret", windowsize=10, messageidbase="hex-decimal")
    channel = SmppChannel(conn, WaitingJournal(journal))
    channel.start()
    try:
        wait_until(lambda: channel.state == "bound", what="bind")
        send_through(journal, channel, 200, "wait")
        wait_until(lambda: journal.stats()["parts_by_state"] == {"submitted": 200},
                   timeout=30, what="all submitted")
        observed = DurableAtAnswer(journal.path)
        smsc.receipt_burst(list(smsc.received), observed)
        wait_until(lambda: len(observed.answers) == 200, timeout=30, what="every answer")
        assert set(observed.answers) == {(0, "delivered")}
    finally:
        channel.stop()
