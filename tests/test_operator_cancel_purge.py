"""Issue 12 (1, 3, 8): purging or deleting messages while a modem holds their parts.

A real Journal (SQLite file) is the sink of a real ModemWorker on the pty simulator, so the
worker reports into a store whose message was purged under it.
"""

from __future__ import annotations

import dataclasses
import logging

from appliance.compose import Submission, prepare
from appliance.store.journal import Journal
from test_modem_kit import network, rig, wait_until  # noqa: F401 (fixtures)


def _accept(journal, recipient="+36701234567", text="hello", **extra):
    [message_id] = journal.accept([prepare(Submission(user="admin", recipient=recipient,
                                                      text=text, **extra))])
    return message_id


def test_result_of_a_purged_message_is_dropped_and_the_modem_is_not_reset(
        rig, network, tmp_path, caplog):
    journal = Journal.open(tmp_path)
    try:
        sim = network.add_modem("slot1", "+36201111111")
        worker = rig.ready(rig.worker(sim, journal))
        message_id = _accept(journal)
        [part] = journal.due_parts()
        assert journal.claim([(part.id, worker.name)]) == [part.id]
        # deletemessagelist folder=outbox, then deletefolderitems folder=deleted
        assert journal.purge_deleted("admin", "outbox") == 1
        assert journal.purge_deleted("admin", "deleted") == 1
        assert journal.get_message(message_id) is None
        with caplog.at_level(logging.INFO, logger="appliance"):
            worker.submit(part)           # the part was already on the modem's queue
            wait_until(lambda: "result dropped" in caplog.text, what="dropped result logged")
            # the modem still sends the next message, and was never reset
            other = _accept(journal, text="after the purge")
            [next_part] = journal.due_parts()
            journal.claim([(next_part.id, worker.name)])
            worker.submit(next_part)
            wait_until(lambda: journal.get_message(other)["state"] in ("submitted", "delivered"),
                       what="next message submitted")
        status = worker.status()
        assert status["resets_last_hour"] == 0
        assert status["recoveries"] == {} or not any(status["recoveries"].values())
        assert "unexpected error" not in caplog.text
        assert caplog.text.count("result dropped") == 1
    finally:
        journal.close()


def test_retry_of_a_purged_part_is_dropped(tmp_path, caplog):
    journal = Journal.open(tmp_path)
    try:
        _accept(journal)
        [part] = journal.due_parts()
        journal.claim([(part.id, "GSMModem0")])
        journal.purge_deleted(None, "outbox")
        journal.purge_deleted(None, "deleted")
        with caplog.at_level(logging.INFO, logger="appliance"):
            journal.part_failed(part.id, "GSMModem0", "timeout", "no answer", True)
        assert "result dropped" in caplog.text
        assert journal.due_parts() == []
    finally:
        journal.close()


def test_deleting_the_outbox_cancels_unsent_parts_and_lets_inflight_ones_finish(tmp_path):
    journal = Journal.open(tmp_path)
    try:
        ids = [_accept(journal, recipient=f"+3670123456{i}") for i in range(5)]
        due = journal.due_parts()
        inflight = due[0]
        journal.claim([(inflight.id, "GSMModem0")])
        assert journal.purge_deleted("admin", "outbox") == 5
        # nothing is left for the dispatcher
        assert journal.due_parts() == []
        for message_id in ids[1:]:
            message = journal.get_message(message_id)
            assert message["state"] == "deleted" and message["deleted"] == 1
            assert journal.get_parts(message_id)[0]["state"] == "deleted"
        # the in-flight part finishes and is recorded
        journal.part_submitted(inflight.id, "GSMModem0", "17")
        assert journal.get_message(ids[0])["state"] == "submitted"
        # a transient failure of an in-flight part of a deleted message is not retried
        other = _accept(journal, recipient="+36701234599")
        [part] = journal.due_parts()
        journal.claim([(part.id, "GSMModem0")])
        journal.delete_messages([other])
        journal.part_failed(part.id, "GSMModem0", "timeout", "no answer", True)
        assert journal.due_parts() == []
        assert journal.get_message(other)["state"] == "deleted"
    finally:
        journal.close()


def test_a_channel_that_sees_validity_end_marks_the_message_expired(tmp_path):
    journal = Journal.open(tmp_path)
    try:
        message_id = _accept(journal)
        [part] = journal.due_parts()
        journal.claim([(part.id, "GSMModem0")])
        journal.part_failed(part.id, "GSMModem0", "expired", "validity ended before sending",
                            False)
        assert journal.get_message(message_id)["state"] == "expired"
    finally:
        journal.close()


def test_report_for_a_purged_part_is_dropped_not_kept_for_the_next_part(tmp_path, caplog):
    from appliance.model import Report, ReportStatus
    journal = Journal.open(tmp_path)
    try:
        _accept(journal)
        [part] = journal.due_parts()
        journal.claim([(part.id, "GSMModem0")])
        journal.part_submitted(part.id, "GSMModem0", "17")
        journal.purge_deleted(None, "sent")
        journal.purge_deleted(None, "deleted")
        with caplog.at_level(logging.INFO, logger="appliance"):
            journal.report(Report("GSMModem0", "17", ReportStatus.DELIVERED))
        assert "purged message dropped" in caplog.text
        # modem references wrap: a later part gets 17 again and must not inherit that report
        later = _accept(journal, text="later")
        [next_part] = journal.due_parts()
        journal.claim([(next_part.id, "GSMModem0")])
        journal.part_submitted(next_part.id, "GSMModem0", "17")
        assert journal.get_message(later)["state"] == "submitted"
    finally:
        journal.close()


def test_outbox_delete_and_purge_through_the_api_while_two_modems_send(make_config,
                                                                         run_daemon):
    """The report's scenario: one message to 20 recipients, then deletemessagelist
    folder=outbox (and deletefolderitems folder=deleted), on a demo appliance with two modems."""
    from appliance import config as cfg
    from appliance import demo
    from conftest import Api, xml_values
    base = make_config(demo=cfg.DemoConfig(enabled=False, modems=2, send_seconds=1.0,
                                           report_seconds=0.1))
    config, network, pin_factory = demo.start(base)
    try:
        daemon = run_daemon(config, pin_factory=pin_factory)
        journal = daemon.journal
        modems = [daemon.channels.running[f"GSMModem{i}"] for i in range(2)]
        for modem in modems:
            wait_until(lambda: modem.free_slots() > 0, timeout=30, what="modem ready")
        api = Api(daemon.port)

        def send_twenty(text):
            recipients = ",".join(f"+367012345{i:02d}" for i in range(20))
            return xml_values(api.action("sendmessage", recipient=recipients,
                                         messagedata=text), "messageid")

        def settled():
            return not journal.query("SELECT 1 FROM parts WHERE state IN ('sending','queued')")

        ids = send_twenty("to twenty")
        wait_until(lambda: network.submits, what="first part on the air")
        moved = api.action("deletemessagelist", folder="outbox")
        assert int(xml_values(moved, "count")[0]) >= 1
        wait_until(settled, timeout=30, what="in-flight parts settled")
        states = [journal.get_message(i)["state"] for i in ids]
        cancelled = states.count("deleted")
        # what was in flight went out and is recorded; nothing else left
        assert cancelled >= 1
        # the simulated network logs a submit on its own timer, next to the modem's answer
        wait_until(lambda: len(network.submits) == 20 - cancelled,
                   what=f"{20 - cancelled} SMS on the air, as many as were in flight")
        assert all(s in ("deleted", "submitted", "delivered") for s in states)
        assert {api.state(i) for i in ids if journal.get_message(i)["state"] == "deleted"} == {15}

        # the same with the deleted folder purged while parts are on the modems
        send_twenty("again")
        before = len(network.submits)
        wait_until(lambda: len(network.submits) > before, what="a part on the air")
        api.action("deletemessagelist", folder="outbox")
        api.action("deletefolderitems", folder="deleted")
        wait_until(lambda: all(m.free_slots() > 0 for m in modems), timeout=30,
                   what="modems idle again")
        for modem in modems:
            status = modem.status()
            assert status["state"] == "ready" and status["resets_last_hour"] == 0
            assert "internal error" not in (status["last_error"] or "")
        after = api.send("+36701234599", "still working")
        api.wait_state(after, 10, timeout=30)
    finally:
        network.close()


def test_a_modem_that_sees_validity_ended_records_expired_14(rig, network, tmp_path):
    import time
    journal = Journal.open(tmp_path)
    try:
        sim = network.add_modem("slot1", "+36201111111")
        worker = rig.ready(rig.worker(sim, journal))
        # accepted while valid; its validity ends while it waits on the modem's queue
        message_id = _accept(journal, valid_until=time.time() + 3600)
        [part] = journal.due_parts()
        journal.claim([(part.id, worker.name)])
        worker.submit(dataclasses.replace(part, valid_until=time.time() - 1))
        wait_until(lambda: journal.get_message(message_id)["state"] != "sending",
                   what="worker result")
        assert journal.get_message(message_id)["state"] == "expired"
        assert not network.submits
    finally:
        journal.close()



def test_a_large_purge_goes_a_batch_per_transaction_and_spares_what_came_after_it_began(
        tmp_path, monkeypatch):
    """One transaction for a million messages held the writer, and every API request, for
    54 s (deletemessagelist) and 28 s (deletefolderitems); now accepts go between batches.
    A message accepted after the purge began is not part of it."""
    from appliance.store import accepting, inbox
    monkeypatch.setattr(inbox, "PURGE_BATCH", 3)
    journal = Journal.open(tmp_path)
    try:
        old = [_accept(journal, text=f"queued {i}") for i in range(10)]
        batches: list[int] = []
        late: list[str] = []
        real_batch = inbox.purge_batch

        def batch_and_count(conn, *args):
            count, more = real_batch(conn, *args)
            batches.append(count)
            if len(batches) == 1:       # accepted between two batches of the purge
                new = prepare(Submission(user="admin", recipient="+36701234567",
                                         text="an alert while the outbox is purged"))
                late.extend(accepting.Accept([new], journal.clock.now(), 0)(conn))
            return count, more

        monkeypatch.setattr(inbox, "purge_batch", batch_and_count)
        commits = journal.stats()["commits"]
        assert journal.purge_deleted("admin", "outbox") == 10
        assert batches == [3, 3, 3, 1]
        assert journal.stats()["commits"] - commits >= 4      # a transaction each
        assert all(journal.get_message(m)["deleted"] == 1 for m in old)
        assert journal.get_message(late[0])["deleted"] == 0
        batches.clear()
        assert journal.purge_deleted("admin", "deleted") == 10
        assert all(journal.get_message(m) is None for m in old)
        assert journal.get_message(late[0]) is not None
    finally:
        journal.close()
