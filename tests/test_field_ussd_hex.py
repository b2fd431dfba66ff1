"""Pain point 11: USSD replies come back as hex (UCS-2, or packed GSM 7-bit on Huawei).
`run_ussd` decodes each form; the balance check runs on a schedule, parses the amount with
the slot's regex and alerts below the threshold."""

from __future__ import annotations

import pytest

from appliance.modem.worker import UssdError
from test_modem_kit import Sink, rig, network, wait_until  # noqa: F401

BALANCE = "Balance: 12.50 EUR. Valid until 2030-12-31."


@pytest.mark.parametrize("profile,form", [("quectel", "text"), ("simcom", "ucs2"),
                                          ("quectel", "gsm7"), ("huawei", "gsm7")])
def test_ussd_reply_is_decoded_in_every_form(rig, network, profile, form):
    sim = network.add_modem("slot1", "+36201111111", profile=profile)
    sim.ussd_form = form
    worker = rig.ready(rig.worker(sim))
    assert worker.run_ussd("*100#", timeout=5) == BALANCE
    if profile == "huawei":
        assert "AT^USSDMODE=0" in sim.commands


def test_unknown_code_is_an_error_not_a_hang(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    worker = rig.ready(rig.worker(sim))
    with pytest.raises(UssdError):
        worker.run_ussd("*999#", timeout=5)
    assert worker.state == "ready"


def test_scheduled_balance_check_alerts_below_threshold(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sim.balance = 3.2
    alerts = []
    worker = rig.worker(sim, config=dict(ussd_balance="*100#", balance_low=5.0,
                                         balance_regex=r"Balance: (\d+[.,]\d+)"),
                        on_alert=lambda slot, text: alerts.append((slot, text)))
    wait_until(lambda: worker.status()["balance"] is not None, what="balance")
    status = worker.status()
    assert status["balance"] == 3.2 and status["balance_at"] is not None
    assert alerts and alerts[0][0] == "slot1" and "below 5" in alerts[0][1]


def test_huawei_that_refuses_ussdmode_gets_packed_requests_and_packed_replies(rig, network):
    """AT^USSDMODE=0 refused: the request must go GSM 7-bit packed (`*144#` -> AA188D3602)
    and the packed reply is decoded; a plain-text request would get ERROR."""
    sim = network.add_modem("slot1", "+36201111111", profile="huawei")
    network.ussd_replies["*144#"] = "Your credit: 7,30 EUR @ 2030"
    worker = rig.ready(rig.worker(sim))
    assert worker.session.caps.ussd_packed
    assert worker.run_ussd("*144#", timeout=5) == "Your credit: 7,30 EUR @ 2030"
    assert 'AT+CUSD=1,"AA188D3602",15' in sim.commands
    assert not any('"*144#"' in command for command in sim.commands)


def test_a_report_that_arrives_with_the_ussd_answer_is_not_lost(rig, network):
    """+CUSD and +CDS read in one go: the report after the USSD answer must still reach the
    store (it was dropped once, leaving a delivered message in state 13)."""
    from datetime import datetime, timezone

    from appliance import gsm
    from test_modem_kit import Sink, part, wait_until

    network.report_seconds = 3600          # only the report injected below
    sink = Sink()
    sim = network.add_modem("slot1", "+36201111111")
    worker = rig.ready(rig.worker(sim, sink))
    worker.submit(part(1, recipient="+36701234567"))
    wait_until(lambda: sink.submitted, what="submitted")
    reference = int(sink.submitted[0][2])
    now = datetime.now(timezone.utc)
    report = gsm.encode_status_report("+36701234567", message_reference=reference, status=0,
                                      scts=now, discharge_time=now)
    answer = sim._ussd_answer

    def answer_then_report(code):
        answer(code)
        sim.receive_report(report)          # queued behind +CUSD, flushed together

    sim._ussd_answer = answer_then_report
    assert worker.run_ussd("*100#", timeout=5) == BALANCE
    wait_until(lambda: sink.reports, what="the report read with the USSD answer")
    assert sink.reports[0].reference == str(reference)


def test_a_balance_with_thousands_or_an_odd_match_never_resets_the_modem(rig, network):
    """Found by a helper: "Balance: 1,234.50 HUF" read as 1.234 (a false "below 100"
    alert), and a regex that matched "1.234.50" raised inside the worker, which reset a
    healthy modem (a reset of its hourly cap)."""
    from appliance.modem.probe import parse_amount
    assert [parse_amount(t) for t in ("1,234.50", "1.234,50", "12,50", "1 234", "x")] == \
        [1234.5, 1234.5, 12.5, 1234.0, None]
    sim = network.add_modem("slot1", "+36201111111")
    network.ussd_replies["*100#"] = "Balance: 1,234.50 HUF. Valid until 2027-01-31"
    alerts = []
    worker = rig.worker(sim, config=dict(ussd_balance="*100#", balance_low=100.0),
                        on_alert=lambda slot, text: alerts.append(text))
    wait_until(lambda: worker.status()["balance"] is not None, what="balance")
    assert worker.status()["balance"] == 1234.5 and alerts == []
    odd = network.add_modem("slot2", "+36202222222")
    network.ussd_replies["*101#"] = "Balance: 1.234.50 x. Bye"
    other = rig.worker(odd, config=dict(ussd_balance="*101#", balance_regex=r"Balance: (.+)\."))
    wait_until(lambda: other.status()["balance_at"] is not None, what="the balance read")
    assert other.status()["balance"] is None and other.recoveries == {}
    assert other.state == "ready"


def test_a_ussd_answer_on_several_lines_is_read_whole(rig, network):
    """Found by a helper: an answer whose text spans lines (a balance with data and a
    date, a menu) was read line by line and taken for the network's refusal (502)."""
    sim = network.add_modem("slot1", "+36201111111")
    text = "Balance: 12.50 EUR\nData: 1024 MB\nValid until 2027-01-31"
    network.ussd_replies["*100#"] = text
    worker = rig.ready(rig.worker(sim))
    assert worker.run_ussd("*100#", timeout=5) == text
    assert worker.state == "ready"
