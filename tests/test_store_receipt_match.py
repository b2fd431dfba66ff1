"""Receipts matched across the binds of one SMSC account, in a real SQLite journal
(issue 13 item 1): a transmitter sends, a receiver gets the receipt."""

from __future__ import annotations

import sqlite3


from appliance.clock import FakeClock
from appliance.model import Report, ReportStatus
from appliance.store.journal import Journal
from test_store import new, state


def sent_on(journal, connection: str, reference: str, text: str = "hello") -> str:
    [mid] = journal.accept([new(text)])
    [part] = journal.due_parts()
    journal.claim([(part.id, connection)])
    journal.part_submitted(part.id, connection, reference)
    return mid


def delivered(connection: str, reference: str) -> Report:
    return Report(connection, reference, ReportStatus.DELIVERED)


def test_a_receipt_on_the_receiver_bind_settles_a_part_sent_on_the_transmitter(journal):
    journal.register_smsc_account("TX", "esme@smsc")
    journal.register_smsc_account("RX", "esme@smsc")
    mid = sent_on(journal, "TX", "160")
    journal.report(delivered("RX", "160"))
    assert state(journal, mid) == "delivered"
    message = journal.get_message(mid)
    assert message["connection"] == "TX"             # the sender, not the receipt's bind
    assert journal.query("SELECT count(*) AS n FROM orphan_reports")[0]["n"] == 0


def test_other_accounts_and_unregistered_connections_stay_apart(journal):
    journal.register_smsc_account("TX", "esme@smsc")
    journal.register_smsc_account("OTHER", "someone@smsc")
    mid = sent_on(journal, "TX", "7")
    journal.report(delivered("OTHER", "7"))          # another account's id 7
    journal.report(delivered("MODEM0", "7"))         # a modem: an account of its own
    assert state(journal, mid) == "submitted"
    assert journal.query("SELECT count(*) AS n FROM orphan_reports")[0]["n"] == 2


def test_after_the_smscs_ids_start_again_a_receipt_settles_the_newest_part(journal):
    """Two transceiver binds of one account; the SMSC restarted and its ids began again, so
    an old part on TRX1 still waiting for its receipt shares id 42 with a new part sent on
    TRX2. The receipt that comes on TRX1 is the new part's: the first bind asked used to
    win (found by a helper, who saw a receipt settle another connection's old message)."""
    journal.register_smsc_account("TRX1", "esme@smsc")
    journal.register_smsc_account("TRX2", "esme@smsc")
    old = sent_on(journal, "TRX1", "42", "before the SMSC restarted")
    journal.clock.advance(3600)
    new_mid = sent_on(journal, "TRX2", "42", "after it")
    journal.report(delivered("TRX1", "42"))
    assert (state(journal, new_mid), state(journal, old)) == ("delivered", "submitted")


def test_an_orphan_on_the_receiver_is_applied_when_the_transmitter_records_its_part(journal):
    journal.register_smsc_account("TX", "esme@smsc")
    journal.register_smsc_account("RX", "esme@smsc")
    [mid] = journal.accept([new("quick receipt")])
    [part] = journal.due_parts()
    journal.claim([(part.id, "TX")])
    journal.report(delivered("RX", "99"))            # before the submit_sm_resp was recorded
    assert state(journal, mid) == "sending"
    journal.part_submitted(part.id, "TX", "99")
    assert state(journal, mid) == "delivered"


def test_the_account_survives_a_restart(tmp_path, clock):
    first = Journal.open(tmp_path, clock=clock)
    first.register_smsc_account("TX", "esme@smsc")
    first.register_smsc_account("RX", "esme@smsc")
    mid = sent_on(first, "TX", "300")
    first.close()
    again = Journal.open(tmp_path, clock=clock)      # nothing registered yet after the start
    try:
        again.report(delivered("RX", "300"))
        assert state(again, mid) == "delivered"
    finally:
        again.close()


def test_regrouping_a_connection_moves_it_to_the_new_account(journal):
    journal.register_smsc_account("TX", "esme@smsc")
    journal.register_smsc_account("RX", "other@smsc")
    mid = sent_on(journal, "TX", "5")
    journal.report(delivered("RX", "5"))
    assert state(journal, mid) == "submitted"
    journal.register_smsc_account("RX", "esme@smsc")
    journal.report(delivered("RX", "5"))
    assert state(journal, mid) == "delivered"


def test_orphans_older_than_the_report_timeout_are_dropped_and_counted(journal, clock):
    journal.report(delivered("RX", "1"))
    clock.advance(50)
    journal.report(delivered("RX", "2"))
    journal.report(delivered("TX", "3"))             # another bind's orphans are its own
    assert journal.drop_orphan_reports("RX", 100) == (0, 2)
    commits = journal.commits
    assert journal.drop_orphan_reports("RX", 100) == (0, 2)
    assert journal.commits == commits                # nothing stale: a read, no fsync
    clock.advance(60)
    assert journal.drop_orphan_reports("RX", 100) == (1, 1)
    left = journal.query("SELECT connection, reference FROM orphan_reports ORDER BY reference")
    assert [tuple(r) for r in left] == [("RX", "2"), ("TX", "3")]


def test_the_migration_adds_to_an_existing_journal(tmp_path, clock):
    Journal.open(tmp_path, clock=clock).close()
    conn = sqlite3.connect(tmp_path / "journal.sqlite3")
    conn.execute("DROP TABLE smsc_accounts")         # a journal from before this change
    conn.commit()
    conn.close()
    again = Journal.open(tmp_path, clock=clock)
    try:
        again.register_smsc_account("TX", "esme@smsc")
        assert again.query("SELECT account FROM smsc_accounts")[0]["account"] == "esme@smsc"
    finally:
        again.close()


def test_a_report_naming_the_recipient_in_national_form_settles_its_part(journal, clock):
    """Found by a helper: a modem report whose recipient was 06201230077 for a message to
    +36201230077 was never matched (it waited for the 48 h report timeout); the recipient
    still tells apart two parts that share a wrapped 8-bit reference."""
    from appliance.compose import Submission, prepare

    def sent(recipient: str) -> str:
        [mid] = journal.accept([prepare(Submission(user="admin", recipient=recipient,
                                                   text="hi"))])
        [part] = journal.due_parts()
        journal.claim([(part.id, "GSMModem0")])
        journal.part_submitted(part.id, "GSMModem0", "77")
        clock.advance(1)
        return mid
    ours, other = sent("+36201230077"), sent("+36209999999")      # the same MR, newer
    journal.report(Report("GSMModem0", "77", ReportStatus.DELIVERED, recipient="06201230077"))
    assert (state(journal, ours), state(journal, other)) == ("delivered", "submitted")
