"""messageidbase = "auto" that learns: an SMSC that answers submit_sm_resp in one base and
writes receipts in the other (hex-decimal, decimal-hex) has every receipt matched, also for
ids with no hex letter; the connection learns the convention, keeps it across a restart, and
explicit settings never guess. Real smpp34 SMSC on 127.0.0.1, real SQLite journal."""

from __future__ import annotations

import logging

import pytest

from appliance.compose import Submission, prepare
from appliance.config import SMPPConfig
from appliance.model import Report, ReportStatus
from appliance.store.journal import Journal
from appliance.store.receipt_match import other_readings
from appliance.uplink.smpp import SmppChannel
from fakes.smsc import Smsc
from test_smpp import wait_until

CALLBACK = {"kind": "ozeki_reporturl", "url": "http://127.0.0.1:1/report"}
COUNT = 14


def make_channel(smsc, journal, idbase: str) -> SmppChannel:
    conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=smsc.port, username="esme",
                      password="secret", windowsize=10, messageidbase=idbase,
                      reconnectdelay=0.05, reconnectmaxdelay=0.2)
    channel = SmppChannel(conn, journal)
    channel.start()
    wait_until(lambda: channel.state == "bound", what="bind")
    return channel


def send(journal, channel, count: int, text: str, recipient: str = "") -> None:
    """Accept `count` messages that want a report and hand them to the channel as the
    dispatcher does (to `recipient`, else each to its own number)."""
    journal.accept([prepare(Submission(user="admin", recipient=recipient or f"+3620{i:07d}",
                                       text=f"{text} {i}", callback=CALLBACK))
                    for i in range(count)])
    parts = journal.due_parts(limit=count)
    journal.claim([(p.id, "SMPP0") for p in parts])
    channel.submit_batch(parts)


def states(journal) -> dict:
    return journal.stats()["parts_by_state"]


def orphans(journal) -> int:
    return journal.query("SELECT count(*) AS n FROM orphan_reports")[0]["n"]


@pytest.mark.parametrize("style,first_id,letterless", [
    # resp 000000FC..00000109, receipts 252..265: 00000100..00000109 have no hex letter
    ("hex-decimal", 0xFC, "00000100"),
    # resp 250..263, receipts fa..107: 100..107 have no hex letter
    ("decimal-hex", 250, "256"),
])
def test_auto_maps_every_receipt_of_a_mixed_base_smsc_and_learns_it(
        journal, style, first_id, letterless, caplog):
    smsc = Smsc(receipts=True, id_style=style, first_id=first_id).start()
    channel = make_channel(smsc, journal, "auto")
    try:
        with caplog.at_level(logging.INFO, logger="appliance.uplink"):
            send(journal, channel, COUNT, "mixed")
            wait_until(lambda: states(journal) == {"delivered": COUNT}, timeout=30,
                       what="every part delivered")
        assert letterless in [r.message_id for r in smsc.received]   # the case that failed
        assert orphans(journal) == 0
        assert channel.status()["messageidbase_learned"] == style
        assert channel.status()["messageidbase"] == "auto"
        learned = [r.getMessage() for r in caplog.records if "receipts use" in r.getMessage()]
        assert len(learned) == 1 and learned[0].startswith("SMPP0: receipts use ")
        row = journal.query("SELECT setting, learned FROM smsc_id_bases"
                            " WHERE connection='SMPP0'")[0]
        assert (row["setting"], row["learned"]) == ("auto", style)
    finally:
        channel.stop()
        smsc.stop()


def test_an_explicit_setting_never_guesses(journal):
    """`decimal` against a hex-decimal SMSC: what the setting says, so every receipt stays
    an orphan (and nothing is learned)."""
    smsc = Smsc(receipts=True, id_style="hex-decimal", first_id=0xFC).start()
    channel = make_channel(smsc, journal, "decimal")
    try:
        send(journal, channel, COUNT, "explicit")
        # A receipt may overtake its own submit_sm_resp on the wire; the channel then holds
        # that result for up to RESULT_HOLD (20 ms), so both are waited for, not one.
        wait_until(lambda: orphans(journal) == COUNT and states(journal) == {"submitted": COUNT},
                   timeout=30, what="every receipt kept, every part submitted")
        assert channel.status()["messageidbase_learned"] == ""
        assert journal.query("SELECT learned FROM smsc_id_bases")[0]["learned"] == ""
    finally:
        channel.stop()
        smsc.stop()


def test_the_learned_convention_survives_a_restart(tmp_path, clock):
    smsc = Smsc(receipts=True, id_style="hex-decimal", first_id=0xFC).start()
    journal = Journal.open(tmp_path, clock=clock)
    channel = make_channel(smsc, journal, "auto")
    try:
        send(journal, channel, COUNT, "before")
        wait_until(lambda: states(journal) == {"delivered": COUNT}, timeout=30,
                   what="learned before the restart")
    finally:
        channel.stop()
        journal.close()
    journal = Journal.open(tmp_path, clock=clock)
    channel = make_channel(smsc, journal, "auto")
    try:
        # read the learned way from the start: resp ids as hex, with or without letters
        assert channel.status()["messageidbase_learned"] == "hex-decimal"
        sent = len(smsc.received)
        send(journal, channel, COUNT, "after")
        wait_until(lambda: states(journal) == {"delivered": 2 * COUNT}, timeout=30,
                   what="every part delivered after the restart")
        after = smsc.received[sent:]
        refs = {row["reference"] for row in journal.query(
            "SELECT reference FROM parts"
            " WHERE text LIKE 'after%'")}
        assert refs == {str(int(r.message_id, 16)) for r in after}
        assert orphans(journal) == 0
    finally:
        channel.stop()
        journal.close()
        smsc.stop()


def test_an_early_receipt_waits_and_is_matched_by_the_other_reading(journal):
    """A receipt that comes before its submit_sm_resp is recorded waits as an orphan; the
    later resp finds it under the other reading, and the connection learns."""
    learned = []
    assert journal.register_id_base("SMPP0", "auto", learned.append) == ""
    journal.id_letters_seen("SMPP0", "resp")        # e.g. 000000FC: resp ids are hex
    journal.accept([prepare(Submission(user="admin", recipient="+36201234567", text="x",
                                       callback=CALLBACK))])
    part = journal.due_parts(limit=1)[0]
    journal.claim([(part.id, "SMPP0")])
    journal.report(Report("SMPP0", "256", ReportStatus.DELIVERED))      # decimal receipt
    assert orphans(journal) == 1
    journal.part_submitted(part.id, "SMPP0", "100")     # resp 00000100 read as decimal
    assert orphans(journal) == 0
    assert states(journal) == {"delivered": 1}
    assert learned == ["hex-decimal"]
    assert journal.register_id_base("SMPP0", "auto") == "hex-decimal"      # durable
    assert journal.register_id_base("SMPP0", "hex") == ""       # explicit: no guessing
    assert journal.register_id_base("SMPP0", "auto") == ""      # a new setting forgets


@pytest.mark.parametrize("letters,learned", [((), ""), (("resp", "receipt"), "hex")])
def test_an_smsc_with_one_base_throughout_is_never_guessed_about(journal, letters, learned):
    """Hex letters on neither side (all decimal) or on both (all hex, learned as "hex"): an
    early receipt for 256 must not settle the part in flight with reference 100 (256 in hex
    digits)."""
    journal.register_id_base("SMPP0", "auto")
    for side in letters:
        journal.id_letters_seen("SMPP0", side)
    submitted_100_then_receipt_256(journal, "SMPP0")
    assert states(journal) == {"submitted": 1} and orphans(journal) == 1
    assert journal.register_id_base("SMPP0", "auto") == learned


def test_hex_ids_throughout_are_learned_and_two_waiting_receipts_never_swap(journal, clock,
                                                                            caplog):
    """Found last session (docs/smpp.md said it): an SMSC writing hex on both sides with a
    counter from 1 (a new account, a simulator) gave `0000002A` and `00000042` one reading
    under "auto" (42, the second read as decimal); while both waited, each receipt settled
    the other's message, delivered for failed. Letters on both sides now teach the account
    "hex", which reads every id as hex."""
    smsc = Smsc(receipts=False, id_style="hex", first_id=1).start()
    channel = make_channel(smsc, journal, "auto")
    try:
        with caplog.at_level(logging.INFO, logger="appliance.uplink"):
            send(journal, channel, 12, "first")              # ids 01..0C: 0A has a letter
            wait_until(lambda: states(journal) == {"submitted": 12}, what="12 submitted")
            for record in list(smsc.received):
                smsc.send_receipt(record)
            wait_until(lambda: states(journal) == {"delivered": 12}, what="12 delivered")
        assert channel.status()["messageidbase_learned"] == "hex"
        said = [r.getMessage() for r in caplog.records if "receipts use" in r.getMessage()]
        assert said == ["SMPP0: receipts use hex ids throughout; reading them so"]

        # 0D..45 to one number (else the recipient tells two parts apart): 2A and 42 wait,
        # 42 sent later (a receipt settles the newest part with its reference)
        send(journal, channel, 0x41 - 12, "second", recipient="+36201234567")
        wait_until(lambda: states(journal).get("submitted") == 0x41 - 12, what="0D..41")
        clock.advance(1.0)
        send(journal, channel, 4, "second 42..", recipient="+36201234567")
        wait_until(lambda: states(journal) == {"delivered": 12, "submitted": 0x45 - 12},
                   what="the second batch submitted")
        later = {r.message_id: r for r in smsc.received[12:]}
        assert {"0000002A", "00000042"} <= set(later)
        for message_id in ("0000002A", "00000042"):          # one fails, one is delivered
            smsc.receipt_stat = "UNDELIV" if message_id == "0000002A" else "DELIVRD"
            smsc.send_receipt(later[message_id])
        wait_until(lambda: states(journal).get("delivered") == 13, what="the two receipts")
        by_text = {row["body"]: row["state"] for row in journal.query(
            "SELECT body, state FROM messages WHERE body LIKE 'second%'")}
        assert by_text[later["0000002A"].short_message.decode()] == "undelivered"
        assert by_text[later["00000042"].short_message.decode()] == "delivered"
        assert orphans(journal) == 0
    finally:
        channel.stop()
        smsc.stop()


def test_a_modem_or_unregistered_connection_never_guesses(journal):
    submitted_100_then_receipt_256(journal, "GSM1")
    assert states(journal) == {"submitted": 1} and orphans(journal) == 1


def submitted_100_then_receipt_256(journal, connection: str) -> None:
    """One part submitted on `connection` with reference 100, then a receipt for 256."""
    journal.accept([prepare(Submission(user="admin", recipient="+36201234567", text="x",
                                       callback=CALLBACK))])
    part = journal.due_parts(limit=1)[0]
    journal.claim([(part.id, connection)])
    journal.part_submitted(part.id, connection, "100")
    journal.report(Report(connection, "256", ReportStatus.DELIVERED))


def test_other_readings():
    assert other_readings("256") == [("hex-decimal", "100"), ("decimal-hex", "598")]
    assert other_readings("256", "decimal-hex")[0] == ("decimal-hex", "598")
    assert other_readings("100") == [("hex-decimal", "64"), ("decimal-hex", "256")]
    assert other_readings("250") == [("decimal-hex", "592")]        # fa: not digits
    assert other_readings("7") == []                                 # the same either way
    assert other_readings("3f2504e0-4f89") == []


def test_parts_sent_before_hex_was_learned_still_get_their_receipts(journal, clock):
    """`00000011`, sent before the account learned "hex", was recorded as 11 (read as
    decimal then); its receipt, read as hex after the learning, is 17 and is found by the
    reading the part was recorded with."""
    smsc = Smsc(receipts=False, id_style="hex", first_id=0x10).start()
    channel = make_channel(smsc, journal, "auto")
    try:
        send(journal, channel, 12, "x")                      # 10..1B: 1A has a letter
        wait_until(lambda: states(journal) == {"submitted": 12}, what="12 submitted")
        clock.advance(1.0)
        records = {r.message_id: r for r in smsc.received}
        smsc.send_receipt(records["0000001A"])               # a letter in a receipt: hex
        wait_until(lambda: channel.status()["messageidbase_learned"] == "hex", what="hex")
        for message_id, record in records.items():
            if message_id != "0000001A":
                smsc.send_receipt(record)
        wait_until(lambda: states(journal) == {"delivered": 12}, what="every receipt mapped")
        assert orphans(journal) == 0
    finally:
        channel.stop()
        smsc.stop()
