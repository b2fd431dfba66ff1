"""A long message pinned to a channel that is known down is released or resent whole at the
next housekeeping pass, not after `[store] reroute_after_seconds` (300 s by default).

End to end through demo wiring (simulated pty modems on one simulated network, the daemon in
this process, the Ozeki HTTP API on a real socket, a real SQLite journal), with the default
grace period: a message that reroutes within the test's timeouts did not wait 300 s.
"""

from __future__ import annotations

import dataclasses

from appliance import config as cfg
from test_modem_kit import wait_until
from test_whole_messages import DELIVERED, GSM7_TEXT, demo_appliance, inbox, number  # noqa: F401

FAILOVER = (cfg.RouteConfig(connections=("GSMModem0", "GSMModem1"), mode="failover"),)


def submits_from(network, slot: str) -> list[dict]:
    return [r for r in network.submits if r["from"] == slot]


def test_a_modem_stopped_after_part_1_of_3_is_left_at_once_and_the_message_resent_whole(
        demo_appliance):
    daemon, api, network = demo_appliance(2, routes=FAILOVER, modem_changes={"submittimeout": 3.0})
    assert daemon.dispatcher.reroute_after == 300.0
    network.modem("slot1").hang_after_submits(1)
    message_id = api.send(number(2), GSM7_TEXT)
    assert len(daemon.journal.get_parts(message_id)) == 3
    wait_until(lambda: len(submits_from(network, "slot1")) == 1, timeout=30, what="part 1 left")

    daemon.channels.stop("GSMModem0")                       # the operator stops the modem
    api.wait_state(message_id, DELIVERED, timeout=60)       # well before 300 s

    history = daemon.journal.route_history(message_id)
    assert [(r["connection"], r["parts_sent"]) for r in history] == [("GSMModem0", 1),
                                                                     ("GSMModem1", 3)]
    assert "GSMModem0 stalled (was stopped or removed) after 1 of 3 parts" in history[0]["outcome"]
    assert [r["concat"][2] for r in submits_from(network, "slot2")] == [1, 2, 3]
    assert len({r["concat"][0] for r in submits_from(network, "slot2")}) == 1
    assert daemon.journal.duplicate_parts(message_id) == 1
    summary = daemon.status()["whole_messages"]
    assert summary["resent_whole"] == 1
    # the dashboard's timeline tells the rounds too (it showed GSMModem1's parts only)
    from appliance.web.dashboard_data import timeline
    rounds = [s for s in timeline(daemon.journal, daemon.journal.get_message(message_id))
              if s["what"].startswith("round")]
    assert [s["what"] for s in rounds] == ["round 1 on GSMModem0", "round 2 on GSMModem1"]
    assert rounds[0]["detail"].startswith("1 of 3 part(s) sent; GSMModem0 stalled")
    assert summary["recent_resends"][0]["channels"] == ["GSMModem0", "GSMModem1"]
    wait_until(lambda: any(m["text"] == GSM7_TEXT for m in inbox(api)), timeout=30,
               what="the whole message in the inbox")


def test_a_modem_only_recovering_keeps_the_message_and_finishes_it(demo_appliance):
    daemon, api, network = demo_appliance(2, routes=FAILOVER, modem_changes={"submittimeout": 3.0})
    worker = daemon.channels.running["GSMModem0"]
    # the two AT+CFUN steps that get no answer wait `cfun` each (20 s on a real module):
    # 2 s still leaves the dispatcher's once-a-second pass several looks at it recovering
    worker.timings = dataclasses.replace(worker.timings, cfun=2.0)
    network.modem("slot1").hang_after_submits(1)
    message_id = api.send(number(2), GSM7_TEXT)
    states = []
    wait_until(lambda: states.append(worker.state) or worker.state == "recovering",
               timeout=60, what="GSMModem0 recovering")
    assert daemon.dispatcher._pinned_down() == {}           # recovering: not known down

    api.wait_state(message_id, DELIVERED, timeout=120)      # it came back and finished
    history = daemon.journal.route_history(message_id)
    assert [(r["connection"], r["parts_sent"]) for r in history] == [("GSMModem0", 3)]
    assert submits_from(network, "slot2") == []
    assert daemon.journal.duplicate_parts(message_id) == 0
