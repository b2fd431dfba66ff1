"""Refunds give back what was charged at acceptance, not what the user's current setting
would charge (store/refunds.py). Before, a user switched from unlimited to metered was
credited for parts never charged, and the reverse got nothing back. A real journal file on
the fake clock; messages scheduled an hour ahead, deleted before they are sent."""

import sqlite3

import pytest

from appliance.compose import Submission, prepare
from appliance.store.journal import Journal


def _scheduled(journal, clock, user, text="x" * 300):       # 300 GSM characters: two parts
    msg = prepare(Submission(user=user, recipient="+36201234567", text=text,
                             send_at=clock.now() + 3600))
    [accepted] = journal.accept([msg])
    assert accepted == msg.id
    return msg.id


def _refunds(journal, user):
    return [r["delta"] for r in journal.query(
        "SELECT delta FROM ledger WHERE user=? AND reason LIKE 'refund%'", (user,))]


@pytest.mark.parametrize("together", [True, False])     # the batched and the one-by-one path
def test_a_refund_follows_what_was_charged_not_the_current_setting(journal, clock, together):
    journal.set_balance("alice", 5)
    journal.set_unlimited("alice", True)
    journal.set_balance("bob", 5)
    if not together:            # a duplicate window sends a call message by message
        journal.dedupe_window = 60
    free = _scheduled(journal, clock, "alice")
    paid = _scheduled(journal, clock, "bob")
    assert (journal.balance("alice"), journal.balance("bob")) == (5, 3)
    assert journal.query("SELECT dedupe FROM messages WHERE id=?", (paid,))[0][0] == \
        int(not together)

    journal.set_unlimited("alice", False)       # metered now: the message cost nothing
    journal.set_unlimited("bob", True)          # unlimited now: the message cost 2
    journal.delete_messages([free, paid])
    assert journal.balance("alice") == 5 and _refunds(journal, "alice") == []
    assert journal.balance("bob") == 5 and _refunds(journal, "bob") == [2]


def test_a_message_from_before_the_record_follows_the_setting_as_before(tmp_path, clock):
    journal = Journal.open(tmp_path, clock=clock)
    journal.set_balance("bob", 5)
    old = _scheduled(journal, clock, "bob")
    journal.close()
    with sqlite3.connect(tmp_path / "journal.sqlite3") as conn:      # a journal from before
        conn.execute("ALTER TABLE messages DROP COLUMN charged")
    conn.close()
    journal = Journal.open(tmp_path, clock=clock)
    try:
        assert journal.query("SELECT charged FROM messages WHERE id=?", (old,))[0][0] is None
        journal.delete_messages([old])
        assert journal.balance("bob") == 5 and _refunds(journal, "bob") == [2]
    finally:
        journal.close()
