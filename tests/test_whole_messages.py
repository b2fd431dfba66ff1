"""Long messages leave whole through one channel (issue 11), through the real boundary:
demo wiring (simulated pty modems on one simulated network), the daemon in this process,
the Ozeki HTTP API on a real socket, a real SQLite journal.

A phone joins the parts of a long SMS by originator and concatenation reference; the
appliance's own modems do the same (codec Reassembler), so a long message sent to a
simulated modem's number reaches its inbox whole only if every part left through one modem
under one reference.
"""

from __future__ import annotations

import dataclasses
import time
import html
import json
import re
import urllib.request

import pytest

from appliance import config as cfg
from appliance import demo
from conftest import Api, xml_values
from test_modem_kit import wait_until

DELIVERED = 10
UCS2_TEXT = ("Riasztás! A szerverterem hőmérséklete 41 °C fölé emelkedett 🔥, a klíma leállt. "
             "Kérjük, azonnal ellenőrizze a hűtést, a tartalék egységet és a naplókat; a "
             "rendszer tíz perc múlva automatikusan leállítja a nem kritikus gépeket. Köszönjük!")
GSM7_TEXT = ("ALERT [rack 7]: UPS on battery, load 83%, runtime {est} min. Utility power lost at "
             "02:14; generator start failed twice (code E-17). Cost so far: 12€ per hour. "
             "Please check the transfer switch ~ breaker panel B and call the duty engineer at "
             "+36 1 555 0100 if the generator does not start within 10 minutes. This message "
             "repeats every 30 minutes until acknowledged.")


def number(index: int) -> str:
    return f"+3620{index:07d}"


@pytest.fixture
def demo_appliance(make_config, run_daemon):
    networks = []

    def start(modems: int, *, routes=(), store_changes=None, modem_changes=None):
        base = make_config(demo=cfg.DemoConfig(enabled=True, modems=modems, send_seconds=0.05,
                                               report_seconds=0.05))
        base = dataclasses.replace(base, store=dataclasses.replace(base.store,
                                                                   **(store_changes or {})))
        config, network, pin_factory = demo.start(base)
        networks.append(network)
        connections = tuple(dataclasses.replace(c, **(modem_changes or {}))
                            for c in config.connections)
        config = dataclasses.replace(config, connections=connections, routes=tuple(routes))
        daemon = run_daemon(config, pin_factory=pin_factory)
        for worker in daemon.channels.running.values():
            wait_until(lambda w=worker: w.free_slots() > 0, timeout=60, what="modems ready")
        return daemon, Api(daemon.port), network

    yield start
    for network in networks:
        network.close()


def inbox(api: Api) -> list[dict]:
    body = api.action("querymessagelist", folder="inbox", limit="100")
    return [{"originator": html.unescape(m.group(1)), "text": html.unescape(m.group(2))}
            for m in re.finditer(r"<originator>([^<]*)</originator>.*?"
                                 r"<messagedata>([^<]*)</messagedata>", body, re.S)]


def operatornames(api: Api, message_id: str) -> list[str]:
    return xml_values(api.action("getmessagebyid", msgID=message_id), "operatorname")


def burst(api: Api, recipient: str, copies: int) -> dict[str, str]:
    """Long UCS-2 and GSM-7 messages in a row, each text unique: {message id: text}."""
    sent = {}
    for i in range(copies):
        for text in (UCS2_TEXT, GSM7_TEXT):
            body = f"{i}: {text.format(est=40 + i)}"
            sent[api.send(recipient, body)] = body
    return sent


def sender_numbers(daemon) -> dict[str, str]:
    return {c.name: c.phonenumber for c in daemon.config.connections}


@pytest.mark.parametrize("modems", [2, 4])
def test_long_messages_in_a_burst_arrive_whole_and_byte_exact(demo_appliance, modems):
    daemon, api, network = demo_appliance(modems)
    target = number(modems)
    sent = burst(api, target, copies=3)
    for message_id in sent:
        api.wait_state(message_id, DELIVERED, timeout=90)
    wait_until(lambda: len(inbox(api)) >= len(sent), timeout=60, what="every message in the inbox")

    received = inbox(api)
    assert sorted(m["text"] for m in received) == sorted(sent.values())   # whole, exact, once
    numbers = sender_numbers(daemon)
    by_text = {m["text"]: m["originator"] for m in received}
    channels_seen = set()
    for message_id, text in sent.items():
        channels = operatornames(api, message_id)
        assert len(channels) == 1, channels                  # one channel carried every part
        assert by_text[text] == numbers[channels[0]]         # ... and the phone saw its number
        channels_seen.add(channels[0])
        parts = daemon.journal.get_parts(message_id)
        assert len(parts) >= 2 and {p["connection"] for p in parts} == set(channels)
    assert len(channels_seen) > 1                            # messages still spread over modems


def test_concat_references_are_unique_per_channel_and_recipient_in_flight(demo_appliance):
    daemon, api, network = demo_appliance(2, routes=(cfg.RouteConfig(
        connections=("GSMModem0",), mode="failover"),))
    sent = burst(api, number(2), copies=3)
    for message_id in sent:
        api.wait_state(message_id, DELIVERED, timeout=90)
    refs = [r["concat"][0] for r in network.submits if r["concat"]]
    per_message = [daemon.journal.route_history(m)[0]["concat_ref"] for m in sent]
    assert len(set(per_message)) == len(sent)                # six long alerts, six references
    assert set(refs) == set(per_message)


def test_a_modem_hanging_after_part_2_of_4_leads_to_a_whole_resend(demo_appliance):
    daemon, api, network = demo_appliance(
        4, routes=(cfg.RouteConfig(connections=("GSMModem0", "GSMModem1"), mode="failover"),),
        store_changes={"reroute_after_seconds": 5.0, "inbound_partial_after_seconds": 3.0},
        modem_changes={"submittimeout": 3.0})
    network.modem("slot1").hang_after_submits(2)
    text = UCS2_TEXT
    message_id = api.send(number(4), text)
    assert len(daemon.journal.get_parts(message_id)) == 4

    api.wait_state(message_id, DELIVERED, timeout=90)
    wait_until(lambda: len(inbox(api)) >= 2, timeout=60, what="whole and partial in the inbox")

    received = inbox(api)
    whole = [m for m in received if m["text"] == text]
    assert whole == [{"originator": number(2), "text": text}]   # resent whole via slot2
    partial = [m for m in received if m["text"] != text]
    assert len(partial) == 1 and partial[0]["originator"] == number(1)
    assert "part 3 of 4 missing" in partial[0]["text"]          # the fragment, marked

    assert operatornames(api, message_id) == ["GSMModem0", "GSMModem1"]
    history = daemon.journal.route_history(message_id)
    assert [(r["connection"], r["parts_sent"]) for r in history] == [("GSMModem0", 2),
                                                                     ("GSMModem1", 4)]
    assert "stalled after 2 of 4 parts" in history[0]["outcome"]
    assert daemon.journal.duplicate_parts(message_id) == 2
    sent_by_slot1 = [r for r in network.submits if r["from"] == "slot1"]
    assert [r["concat"][2] for r in sent_by_slot1] == [1, 2]    # nothing more left there

    summary = daemon.status()["whole_messages"]
    assert summary["resent_whole"] == 1 and summary["duplicate_parts"] == 2
    assert summary["recent_resends"][0]["channels"] == ["GSMModem0", "GSMModem1"]

    partial_id = [m for m in daemon.journal.folder(None, "inbox") if m["code"] == "partial"]
    assert len(partial_id) == 1
    info = api.action("getmessagebyid", msgID=partial_id[0]["id"])
    assert "partial: part 3, 4 of 4 never arrived" in info


def test_json_api_names_every_channel_and_marks_partials(demo_appliance):
    daemon, api, network = demo_appliance(2)
    message_id = api.send(number(2), GSM7_TEXT.format(est=5))
    api.wait_state(message_id, DELIVERED, timeout=60)
    request = urllib.request.Request(
        f"{api.base}/api?action=receivemsg&folder=sent",
        headers={"Authorization": "Basic YWRtaW46YWRtaW4tc2VjcmV0LTE="})
    with urllib.request.urlopen(request, timeout=30) as answer:
        data = json.loads(answer.read())["data"]["data"]
    mine = [m for m in data if m["message_id"] == message_id]
    assert mine and mine[0]["connections"] == operatornames(api, message_id)
    assert mine[0]["partial"] is False


def test_a_part_refused_for_good_stops_the_rest_of_its_message(demo_appliance):
    """Found by a helper: after part 2 of 3 was refused for good (+CMS ERROR: 21), part 3
    still went out and was charged, though no phone can join a message with a part missing.
    The parts not yet handed to a modem are failed with the reason; the message is failed."""
    daemon, api, network = demo_appliance(1)
    network.modem("slot1").refuse_submit_after(1, 21)
    message_id = api.send(number(2), GSM7_TEXT)
    assert len(daemon.journal.get_parts(message_id)) == 3
    api.wait_state(message_id, 11, timeout=30)
    assert [r["concat"][2] for r in network.submits] == [1]
    parts = daemon.journal.get_parts(message_id)
    assert [p["state"] for p in parts] in (["submitted", "failed", "failed"],
                                           ["delivered", "failed", "failed"])
    assert parts[1]["reason"].startswith("CMS 21")
    assert parts[2]["reason"].startswith("not sent: part 2 of 3 failed (CMS 21")
    time.sleep(0.5)
    assert [r["concat"][2] for r in network.submits] == [1]


def test_a_long_message_started_before_its_number_was_put_on_the_dnd_list_finishes(
        demo_appliance):
    """Found by using the demo: part 1 of 4 had left when a STOP came from the number; the
    other three were failed for the do-not-disturb list, and the phone kept a fragment it
    never joins. A started message now finishes, under one reference; one not yet started
    is withheld."""
    daemon, api, network = demo_appliance(1, modem_changes={"limittompm": 60})
    first = api.send(number(7), GSM7_TEXT)               # 3 parts, one a second
    second = api.send(number(7), "queued behind it")
    wait_until(lambda: network.submits, timeout=15, what="part 1 sent")
    api.action("adddnd", number=number(7))
    api.wait_state(first, DELIVERED, timeout=30)
    concat = [r["concat"] for r in network.submits]
    assert [c[2] for c in concat] == [1, 2, 3] and len({c[0] for c in concat}) == 1
    assert api.state(second) == 11
    assert "do-not-disturb" in daemon.journal.get_message(second)["reason"]


def test_a_part_handed_back_after_its_number_was_put_on_the_dnd_list_is_not_sent_again(
        demo_appliance):
    """Found by a helper: the number was added while its part was in flight on a modem that
    then hung; the part came back retryable, was queued again and delivered after the
    modem's power cycle, to a number that had opted out."""
    daemon, api, network = demo_appliance(1, modem_changes={"submittimeout": 2.0})
    network.modem("slot1").hang_after_submits(0)
    message_id = api.send(number(3), "in flight")
    wait_until(lambda: api.state(message_id) == 1, timeout=15, what="sending")
    api.action("adddnd", number=number(3))
    api.wait_state(message_id, 11, timeout=30)
    assert "do-not-disturb" in daemon.journal.get_message(message_id)["reason"]
    assert not [r for r in network.submits if r["text"] == "in flight"]


def test_a_message_pinned_to_a_modem_taken_out_of_the_config_leaves_whole_by_another(
        demo_appliance):
    """Found using the demo: a long message pinned (`serviceprovider`) to GSMModem1 waited
    while that modem was stopped; the box restarted with GSMModem1 gone from its config, and
    the message sat queued for its whole validity (72 h), /status healthy, the log silent."""
    daemon, api, network = demo_appliance(2)
    api.action("stopdriver", name="GSMModem1")
    message_id = api.send("+36301234567", GSM7_TEXT.format(est=9), serviceprovider="GSMModem1")
    assert daemon.journal.get_message(message_id)["serviceprovider"] == "GSMModem1"
    time.sleep(0.5)                          # the dispatcher had its chance: nothing left
    assert api.state(message_id) == 0 and not network.submits
    daemon.stop()

    daemon, api, network = demo_appliance(1)     # the same state directory, one modem
    api.wait_state(message_id, DELIVERED, timeout=60)
    assert operatornames(api, message_id) == ["GSMModem0"]
    refs = {r["concat"][0] for r in network.submits}
    assert len(network.submits) == len(daemon.journal.get_parts(message_id)) >= 2
    assert len(refs) == 1 and {r["from"] for r in network.submits} == {"slot1"}
