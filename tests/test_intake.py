"""The one intake (appliance/intake.py): a submission is never changed, one batch keeps its
order, and the appliance's own alert SMS take the same path (default validity, dispatcher
wake), past the do-not-disturb list on purpose. A real daemon (not started) on a real
SQLite file and a fake clock."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys

import pytest

from appliance import config as cfg
from appliance import intake
from appliance.clock import FakeClock
from appliance.daemon import Daemon
from appliance.errors import ValidationError
from appliance.integrations import intake as integrations
from appliance.model import Priority, Submission
from appliance.web.gate import dnd_list
from conftest import ADMIN_PASSWORD

HOUR = 3600.0
ADMIN_PHONE = "+36301112233"


@pytest.fixture
def daemon(make_config):
    config = make_config(admin=cfg.AdminConfig(phone=ADMIN_PHONE))
    config = dataclasses.replace(config, store=dataclasses.replace(
        config.store, default_validity_hours=2.0))
    d = Daemon(config, clock=FakeClock(), admin_password=ADMIN_PASSWORD)
    yield d
    d.journal.close()


def test_prepare_answers_a_new_effective_submission_and_leaves_the_callers_alone(daemon):
    now = daemon.clock.now()
    sub = Submission(user="admin", recipient="+36 (20) 123-4567", text="hello",
                     originator=" 12345 ", messagetype=" SMS:TEXT ")
    before = dataclasses.asdict(sub)
    message = intake.prepare(daemon.services, sub)
    assert dataclasses.asdict(sub) == before              # the caller's value is untouched
    effective = message.submission
    assert effective is not sub
    assert (effective.recipient, effective.originator, effective.messagetype) == \
        ("+36201234567", "12345", "SMS:TEXT")
    assert effective.valid_until == now + 2 * HOUR        # [store] default_validity_hours
    with pytest.raises(dataclasses.FrozenInstanceError):
        sub.recipient = "+36209999999"                    # nothing downstream can change it


def test_default_validity_counts_from_the_send_time_and_an_own_validity_wins(daemon):
    now = daemon.clock.now()
    later = intake.prepare(daemon.services, Submission(user="admin", recipient="+36201234567",
                                                       text="x", send_at=now + 10 * HOUR))
    assert later.submission.valid_until == now + 12 * HOUR
    own = intake.prepare(daemon.services, Submission(user="admin", recipient="+36201234567",
                                                     text="x", valid_until=now + 60))
    assert own.submission.valid_until == now + 60
    with pytest.raises(ValidationError) as refused:
        intake.prepare(daemon.services, Submission(user="admin", recipient="+36201234567",
                                                   text="x", valid_until=now - 1))
    assert refused.value.code == "bad_validity"


def test_submit_batch_answers_in_order_and_stores_only_the_good_ones_in_one_commit(daemon):
    dnd_list(daemon.services).add("+36207777777")
    built_wrong = ValidationError("bad_parameter", "the dialect could not build this", "x")
    items = [Submission(user="admin", recipient="+36201111111", text="one", message_id="m-1"),
             built_wrong,
             Submission(user="admin", recipient="not a number", text="two"),
             Submission(user="admin", recipient="+36207777777", text="dnd"),
             Submission(user="admin", recipient="+36202222222", text="again", message_id="m-1"),
             Submission(user="admin", recipient="+36203333333", text="three")]
    commits = daemon.journal.commits
    results = intake.submit_batch(daemon.services, items)
    assert daemon.journal.commits == commits + 1          # one durable commit for the batch
    assert results[0].id == "m-1"
    assert results[1] is built_wrong
    assert [r.code for r in results[2:5]] == ["bad_recipient", "dnd_explicit", "duplicate_id"]
    assert results[5].submission.recipient == "+36203333333"
    stored = daemon.journal.get_message(results[5].id)
    assert stored["recipient"] == "+36203333333" and stored["body"] == "three"
    assert daemon.journal.get_message("m-1")["body"] == "one"


def test_an_alert_sms_gets_the_default_validity_the_alert_priority_and_wakes_the_dispatcher(
        daemon):
    daemon.dispatcher._wake.clear()          # the dispatcher thread is not running: nobody else
    daemon.alert("GSMModem1", "SIM card removed")
    (message,) = daemon.journal.folder("admin", "outbox", 10)
    assert message["recipient"] == ADMIN_PHONE
    assert message["body"] == "sms-appliance GSMModem1: SIM card removed"
    assert message["valid_until"] == daemon.clock.now() + 2 * HOUR
    assert message["priority"] == Priority.ALERT
    assert daemon.dispatcher._wake.is_set()


def test_an_alert_reaches_the_on_call_phone_on_the_dnd_list_other_senders_do_not(daemon, caplog):
    dnd_list(daemon.services).add(ADMIN_PHONE)
    with caplog.at_level(logging.WARNING, logger="appliance.intake"):
        daemon.alert("GSMModem0", "balance low")
    assert [m["recipient"] for m in daemon.journal.folder("admin", "outbox", 10)] == [ADMIN_PHONE]
    assert any("do-not-disturb" in r.getMessage() and ADMIN_PHONE not in r.getMessage()
               for r in caplog.records)                   # said, and the number masked
    outcome = integrations.submit(daemon.services, user="admin", recipients=[ADMIN_PHONE],
                                  text="from a webhook", priority="normal", dialect="webhook")
    assert outcome.ids == [] and outcome.refused[0][0] == ADMIN_PHONE


def test_a_refused_alert_sms_is_logged_and_raises_nothing(daemon, caplog):
    with caplog.at_level(logging.ERROR, logger="appliance.intake"):
        assert intake.alert_sms(daemon.services, "not a phone", "x") is None
    assert any("cannot send alert SMS" in r.getMessage() for r in caplog.records)


def test_the_store_does_not_import_compose():
    code = ("import sys, appliance.store.journal, appliance.store.writer; "
            "print('appliance.compose' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_no_sender_but_intake_reaches_compose_prepare_or_journal_accept():
    """The one path: a new sender that skips the policy (DND, validity, wake) fails here."""
    import pathlib
    import re
    import appliance
    root = pathlib.Path(appliance.__file__).parent
    bypass = re.compile(r"compose\.prepare\(|from appliance\.compose import [^\n]*\bprepare\b|"
                        r"journal\.accept\(")
    offenders = [str(path.relative_to(root)) for path in root.rglob("*.py")
                 if path.name != "intake.py" or path.parent != root
                 if bypass.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_dnd_list_matches_numbers_by_their_digits_and_ranges_by_prefix():
    from appliance.model import number_digits
    from appliance.web.gate import DndList

    class Documents:
        def all(self, table):
            return [{"name": n} for n in ("+36 20 777 7777", "0036301*", "*", "+36 70*")]

    gate = DndList(Documents())
    assert gate.blocks("+36207777777") and gate.blocks("0036207777777")
    assert gate.blocks("+36301234567") and gate.blocks("36701234567")
    assert not gate.blocks("+36201234567")          # a bare `*` blocks nothing
    with pytest.raises(ValidationError) as refused:
        gate.check("36 30 1000 000")
    assert refused.value.code == "dnd"
    # other scripts' digits and superscripts count as digits, as str.isdigit says
    assert number_digits(" 00٣٦ 20-1²") == "٣٦201²" and number_digits("+36 (20) 1") == "36201"


def test_a_submission_takes_its_fields_by_keyword_with_the_declared_defaults():
    sub = Submission(user="admin", recipient="+36201234567", text="hi", priority=Priority.BULK)
    declared = {f.name: f.default for f in dataclasses.fields(Submission)
                if f.default is not dataclasses.MISSING}
    assert {name: getattr(sub, name) for name in declared} == {**declared,
                                                              "priority": Priority.BULK}
    other = Submission(user="admin", recipient="+36201234567", text="hi")
    assert sub.smpp_params == {} and sub.smpp_params is not other.smpp_params
    assert dataclasses.replace(other, priority=Priority.BULK) == sub
    with pytest.raises(dataclasses.FrozenInstanceError):
        sub.text = "changed"
    with pytest.raises(TypeError, match="'sender'"):
        Submission(user="admin", recipient="+36201234567", text="hi", sender="me")
    with pytest.raises(TypeError):
        Submission(user="admin", text="hi")
