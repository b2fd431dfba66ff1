"""Inbound rules end to end: an SMS delivered to a simulated modem (pty, the real worker) is
forwarded to a local SMTP sink and a local webhook, to other phones and answered; STOP and
START maintain the do-not-disturb list; a webhook that is down is retried later."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
import time

import pytest

from appliance import config as cfg
from appliance import demo
from appliance.clock import FakeClock
from appliance.errors import ConfigError, ValidationError
from appliance.integrations import settings
from appliance.web.gate import dnd_list
from fakes.lan import Endpoint
from fakes.providers import SmtpSink

SENDER = "+36209999999"
COLLEAGUE = "+36207777777"


def wait_for(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sinks():
    mail, hook = SmtpSink().start(), Endpoint()
    yield mail, hook
    mail.stop()
    hook.close()


def posted(hook: Endpoint) -> list[dict]:
    """The JSON bodies the rules posted to the webhook, in order."""
    return [json.loads(body) for _, _, _, body in hook.calls]


@pytest.fixture
def demo_daemon(make_config, run_daemon):
    networks = []

    def start(integrations: dict):
        base = make_config(demo=cfg.DemoConfig(enabled=True, modems=1, send_seconds=0.05,
                                               report_seconds=0.05),
                           integrations=settings.parse(integrations))
        config, network, pins = demo.start(base)
        networks.append(network)
        daemon = run_daemon(config, pin_factory=pins)
        wait_for(lambda: daemon.channels.running["GSMModem0"].free_slots(), "modem ready")
        return daemon, network.modem("slot1")
    yield start
    for network in networks:
        network.close()


def outbox(daemon) -> list[tuple[str, str]]:
    rows = daemon.journal.query("SELECT recipient, body FROM messages WHERE direction='out'"
                                " ORDER BY rowid")
    return [(r["recipient"], r["body"]) for r in rows]


def test_matching_sms_is_forwarded_by_mail_webhook_and_sms_and_answered(demo_daemon, sinks):
    mail, hook = sinks
    daemon, modem = demo_daemon({
        "relay": {"host": "127.0.0.1", "port": mail.port, "mail_from": "sms@appliance.lan"},
        "rules": [{"name": "acks", "keyword": "ack", "forward_email": ["ops@lan"],
                   "forward_url": hook.url + "/sms", "forward_to": [COLLEAGUE],
                   "autoreply": "Thanks, {{keyword}} noted"},
                  {"name": "never", "sender": "+44*", "forward_to": [COLLEAGUE]}]})
    modem.deliver_inbound(SENDER, "ACK disk alert on nas1")
    wait_for(lambda: mail.mails, "the forwarded mail")
    _, to, forwarded = mail.mails[0]
    assert to == ["ops@lan"] and "ACK disk alert on nas1" in forwarded.get_content()
    assert forwarded["Subject"] == "SMS from +36209999999"
    wait_for(lambda: posted(hook), "the webhook call")
    assert posted(hook)[0]["text"] == "ACK disk alert on nas1"
    assert posted(hook)[0]["sender"] == SENDER and posted(hook)[0]["event"] == "inbound_sms"
    wait_for(lambda: len(outbox(daemon)) == 2, "forward and autoreply SMS")
    assert outbox(daemon) == [(COLLEAGUE, f"SMS from {SENDER}: ACK disk alert on nas1"),
                              (SENDER, "Thanks, ACK noted")]
    status = daemon.status()["integrations"]["inbound"]
    assert [r["matches"] for r in status["rules"]] == [1, 0]
    modem.deliver_inbound(SENDER, "ack again")               # no second autoreply so soon
    wait_for(lambda: len(mail.mails) == 2, "the second mail")
    wait_for(lambda: len(outbox(daemon)) == 3, "the second forward")
    assert [r for r, _ in outbox(daemon)].count(SENDER) == 1


def test_stop_and_start_maintain_the_do_not_disturb_list(demo_daemon):
    daemon, modem = demo_daemon({})
    dnd = dnd_list(daemon.services)
    modem.deliver_inbound(SENDER, "Stop")
    wait_for(lambda: daemon.rules.counters["stop"], "STOP handled")
    with pytest.raises(ValidationError):
        dnd.check(SENDER)
    modem.deliver_inbound(SENDER, "START please")
    wait_for(lambda: daemon.rules.counters["start"], "START handled")
    dnd.check(SENDER)                                         # allowed again


def test_a_stop_after_the_inbox_was_purged_is_still_honoured(demo_daemon):
    """Found by a helper: the rules followed the inbox by rowid; purging the newest rows
    let new SMS take rowids the rules had passed, so a STOP (and every forward) after a
    purge was skipped and the number kept getting messages."""
    daemon, modem = demo_daemon({})
    for n in range(3):
        modem.deliver_inbound("+36305550000", f"hello {n}")
    wait_for(lambda: daemon.rules.counters["inbound"] == 3, "three read by the rules")
    inbox = [m["id"] for m in daemon.journal.folder(None, "inbox")]
    daemon.journal.delete_messages(inbox)
    daemon.journal.purge_deleted(None, "deleted")
    assert daemon.journal.query("SELECT count(*) AS n FROM messages")[0]["n"] == 0
    modem.deliver_inbound(SENDER, "STOP")
    wait_for(lambda: daemon.rules.counters["stop"], "STOP handled after the purge")
    with pytest.raises(ValidationError):
        dnd_list(daemon.services).check(SENDER)


def test_the_rules_cursor_is_one_the_previous_release_can_start_from(demo_daemon):
    """Found by the upgrade check: the cursor was saved as an inbound_log seq alone. The
    release before, started on the same state dir by an Ansible rollback, reads its `rowid`:
    without one it stopped at start (KeyError), and with the one it had saved before the
    upgrade (a stored document is updated, not replaced) it handled every SMS this release had
    handled again, forwards included. It now also holds the last handled SMS's inbox rowid."""
    daemon, modem = demo_daemon({})
    modem.deliver_inbound("+36305550000", "hello")
    modem.deliver_inbound(SENDER, "STOP")
    wait_for(lambda: daemon.rules.counters["stop"], "STOP handled")
    wait_for(lambda: daemon.rules._saved_cursor == daemon.rules._cursor, "cursor saved")
    stop_rowid = daemon.journal.query("SELECT rowid AS r FROM messages WHERE direction='in'"
                                      " AND body='STOP'")[0]["r"]
    saved = daemon.rules._documents().get("integration_state", "rules_cursor")
    assert (saved["seq"], saved.get("rowid")) == (daemon.rules._cursor, stop_rowid)


def test_sms_forwards_from_one_sender_stop_after_a_burst_so_two_appliances_cannot_loop(
        demo_daemon):
    """Found by a helper: two appliances forwarding to each other's SIMs from their other
    SIMs (the sender is never the target) ping-ponged for ever, 69 paid SMS in 30 s. A
    sender's SMS forwards stop after a burst until it has been quiet for the window."""
    from appliance.integrations import rules
    daemon, modem = demo_daemon({"rules": [{"forward_to": [COLLEAGUE]}]})
    for n in range(rules.FORWARD_BURST + 2):
        modem.deliver_inbound(SENDER, f"alert {n}")
    wait_for(lambda: daemon.rules.counters["inbound"] == rules.FORWARD_BURST + 2, "all read")
    assert [r for r, _ in outbox(daemon)].count(COLLEAGUE) == rules.FORWARD_BURST
    assert daemon.rules.counters["forward_limited"] == 2


def test_a_webhook_that_is_down_is_retried(demo_daemon, sinks):
    _, hook = sinks
    hook.status = 500                                         # the webhook is down
    daemon, modem = demo_daemon({"rules": [{"regex": "(?i)fire", "forward_url": hook.url + "/sms"}]})
    clock = daemon.rules.forwarder.clock = FakeClock()        # the forwards' retry time only
    modem.deliver_inbound(SENDER, "Fire alarm in room 2")
    wait_for(lambda: daemon.rules.status()["retrying"] == 1, "a queued retry")
    refused = len(hook.calls)                                 # the attempt answered 500
    hook.status = 200
    clock.advance(31)
    wait_for(lambda: len(hook.calls) > refused, "the retried webhook call")
    assert posted(hook)[refused]["text"] == "Fire alarm in room 2"
    wait_for(lambda: daemon.rules.status()["retrying"] == 0, "the retry settled")


def test_a_webhook_that_hangs_does_not_hold_back_stop_words(demo_daemon):
    """Found by a helper: forwards ran on the rules thread, so a webhook that took 30 s held
    up the STOP of the next SMS, and a message sent meanwhile reached a person who had
    opted out."""
    import socket
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)                  # accepts, never answers: each call waits its 10 s timeout
    try:
        url = f"http://127.0.0.1:{hang.getsockname()[1]}/sms"
        daemon, modem = demo_daemon({"rules": [{"regex": "(?i)alarm", "forward_url": url}]})
        for i in range(3):
            modem.deliver_inbound(SENDER, f"alarm {i}")
        wait_for(lambda: daemon.rules.counters["inbound"] == 3, "the alarms handled")
        modem.deliver_inbound(SENDER, "Stop")
        wait_for(lambda: daemon.rules.counters["stop"], "STOP handled", timeout=8)
        assert daemon.rules.counters["forwarded"] == 0     # still waiting on the webhook
        with pytest.raises(ValidationError):
            dnd_list(daemon.services).check(SENDER)
    finally:
        hang.close()


def test_a_hung_webhook_neither_delays_the_mails_nor_loses_its_forwards_in_a_crash(
        demo_daemon, sinks):
    """Found by a helper: forwards ran one after another, so each call to a webhook that
    hung (10 s) held up every e-mail forward; and a forward not yet tried was in memory
    only while the rules cursor had moved past its SMS: kill -9 lost it. Each destination
    has its own thread now, and the pending forwards are written before the cursor moves
    (the documents file below is what a kill -9 at that moment leaves)."""
    import socket
    mail, _ = sinks
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    try:
        url = f"http://127.0.0.1:{hang.getsockname()[1]}/sms"
        daemon, modem = demo_daemon({
            "relay": {"host": "127.0.0.1", "port": mail.port, "mail_from": "sms@lan"},
            "rules": [{"regex": "(?i)disk", "forward_email": ["ops@lan"], "forward_url": url}]})
        for i in range(3):
            modem.deliver_inbound(SENDER, f"disk crash {i}")
        wait_for(lambda: len(mail.mails) == 3, "three mails past the hung webhook", timeout=8)
        documents = Path(daemon.config.state_dir) / "documents.json"

        def kept_webhook_forwards() -> list[str]:
            tables = json.loads(documents.read_text())
            return sorted(job["context"]["text"]
                          for doc in tables["integration_state"].values()
                          if doc["name"] == "rules_forwards"
                          for job in doc["jobs"] if job["kind"] == "url")
        # the cursor is past all three: their forwards must be in the file by now
        wait_for(lambda: daemon.rules._saved_cursor == daemon.rules._cursor, "cursor saved")
        assert kept_webhook_forwards() == ["disk crash 0", "disk crash 1", "disk crash 2"]
    finally:
        hang.close()


def webhook_demo(make_config, hook):
    """A config with one simulated modem and a rule that forwards every SMS to `hook`."""
    base = make_config(demo=cfg.DemoConfig(enabled=True, modems=1, send_seconds=0.05,
                                           report_seconds=0.05),
                       integrations=settings.parse({"rules": [{"forward_url": hook.url + "/sms"}]}))
    return demo.start(base)


def test_a_forward_waiting_for_its_retry_survives_a_restart(make_config, run_daemon, sinks):
    """Found by a helper: retries lived in memory while the cursor had moved past their
    SMS, so a restart dropped them without a word."""
    _, hook = sinks
    hook.status = 500
    config, network, pins = webhook_demo(make_config, hook)
    try:
        daemon = run_daemon(config, pin_factory=pins)
        wait_for(lambda: daemon.channels.running["GSMModem0"].free_slots(), "modem ready")
        network.modem("slot1").deliver_inbound(SENDER, "raid degraded")
        wait_for(lambda: daemon.rules.status()["retrying"] == 1, "a queued retry")
        daemon.stop()
        hook.status = 200
        again = run_daemon(dataclasses.replace(config), pin_factory=pins)
        assert again.rules.status()["retrying"] == 1
        again.rules.forwarder.clock = FakeClock(start=time.time() + 31)   # its retry is due
        again.rules.forwarder._wake.set()
        wait_for(lambda: any(p["text"] == "raid degraded" for p in posted(hook)[1:]),
                 "the retried forward after the restart")
        wait_for(lambda: again.rules.status()["retrying"] == 0, "the retry settled")
    finally:
        network.close()


def test_a_restart_neither_repeats_nor_skips(make_config, run_daemon, sinks):
    _, hook = sinks
    config, network, pins = webhook_demo(make_config, hook)
    try:
        daemon = run_daemon(config, pin_factory=pins)
        modem = network.modem("slot1")
        wait_for(lambda: daemon.channels.running["GSMModem0"].free_slots(), "modem ready")
        modem.deliver_inbound(SENDER, "first")
        wait_for(lambda: len(posted(hook)) == 1, "first forward")
        daemon.stop()
        modem.deliver_inbound(SENDER, "while stopped")       # waits on the SIM / network
        daemon = run_daemon(dataclasses.replace(config), pin_factory=pins)
        wait_for(lambda: len(posted(hook)) == 2, "the SMS that came in while stopped")
        modem.deliver_inbound(SENDER, "after")
        wait_for(lambda: len(posted(hook)) == 3, "the next one")
        time.sleep(1.5)                                       # a repeat would show up here
        assert [p["text"] for p in posted(hook)] == ["first", "while stopped", "after"]
    finally:
        network.close()


@pytest.mark.parametrize("rules, message", [
    ([{"keyword": "x"}], "needs an action"),
    ([{"regex": "(", "autoreply": "x"}], "regex"),
    ([{"forward_email": ["a@b"]}], "needs a \\[relay\\] host"),
    ([{"forward_url": "ftp://x", "autoreply": ""}], "http:// or https://"),
    ([{"autoreply": "{{#x}}"}], "never closed"),
])
def test_rule_config_errors(rules, message):
    with pytest.raises(ConfigError, match=message):
        cfg.from_dict({"rules": rules})


def test_a_forward_that_cannot_be_made_is_given_up_at_once_and_a_line_break_is_no_header(
        tmp_path):
    """Found by a helper: an SMS whose sender held a line break made the mail forward raise
    ValueError ("Header values may not contain linefeed"), retried seven times over an
    hour. The sender is folded into the subject; a ValueError (the job's own fault) is
    not retried."""
    from appliance.integrations.forwarding import Forwarder
    from appliance.integrations.rules import send_mail
    from appliance.store.documents import Documents
    mail = SmtpSink().start()
    try:
        relay = settings.parse({"relay": {"host": "127.0.0.1", "port": mail.port,
                                          "mail_from": "sms@lan"}}).relay
        context = {"id": "m1", "sender": "ACME\nBANK", "recipient": "+36200000000",
                   "text": "hello", "connection": "HTTPServer0"}
        send_mail(relay, ["ops@lan"], context)
        wait_for(lambda: mail.mails, "the mail")
        assert mail.mails[0][2]["Subject"] == "SMS from ACME BANK"
    finally:
        mail.stop()
    calls = []

    def refuse(kind, target, job_context):
        calls.append(kind)
        raise ValueError("no [relay] host configured")
    documents = Documents(tmp_path)
    counters = {"forwarded": 0, "failed": 0}
    forwarder = Forwarder(refuse, lambda: documents, counters)
    forwarder.start()
    try:
        forwarder.add("mail", ["ops@lan"], context)
        wait_for(lambda: counters["failed"] == 1, "given up")
        assert calls == ["mail"] and forwarder.retrying() == 0
    finally:
        forwarder.stop()


def test_the_forwarder_sleeps_while_a_destination_hangs(tmp_path):
    """A job its lane is trying is due, and counting it made the forwarder's loop wait 0 s
    over and over while the webhook hung (a whole core for the timeout's 10 s)."""
    import threading
    from appliance.integrations.forwarding import Forwarder
    from appliance.store.documents import Documents
    release = threading.Event()
    documents = Documents(tmp_path)
    forwarder = Forwarder(lambda kind, target, context: release.wait(10), lambda: documents,
                          {"forwarded": 0, "failed": 0})
    rounds = []
    real = forwarder._attempt_due
    forwarder._attempt_due = lambda: (rounds.append(1), real())[1]
    forwarder.start()
    try:
        forwarder.add("url", "http://10.0.0.9/hook", {"id": "m1", "text": "x"})
        wait_for(lambda: forwarder._lanes, "the lane trying the hung webhook")
        before = len(rounds)
        time.sleep(1.0)
        assert len(rounds) - before < 5, f"{len(rounds) - before} rounds in a second"
    finally:
        release.set()
        forwarder.stop()
