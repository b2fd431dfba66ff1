"""Router: ordered rules, failover and balance, tried connections last, waiting when down."""

from __future__ import annotations

from appliance.config import RouteConfig
from appliance.model import OutPart
from appliance.routing import Router

NAMES = ["GSMModem0", "GSMModem1", "SMPP0"]


def part(**kw) -> OutPart:
    fields = dict(id=1, message_id="m", recipient="+36201234567", originator="", text="x")
    fields.update(kw)
    return OutPart(**fields)


def router(*routes) -> Router:
    return Router(tuple(routes), NAMES, aliases={"Vodafone": "GSMModem1"})


def test_rules_match_in_order_by_prefix_user_type_and_serviceprovider():
    r = router(RouteConfig(connections=("SMPP0",), prefix="+44"),
               RouteConfig(connections=("GSMModem1",), user="alerts"),
               RouteConfig(connections=("GSMModem0",), messagetype="SMS:BINARY"),
               RouteConfig(connections=("SMPP0", "GSMModem0"), serviceprovider="bulk"))
    assert r.candidates(part(recipient="+447700900000", user="alerts")) == ["SMPP0"]
    assert r.candidates(part(user="alerts")) == ["GSMModem1"]
    assert r.candidates(part(messagetype="SMS:BINARY:XML")) == ["GSMModem0"]


def test_serviceprovider_override_and_operator_alias():
    r = router()
    assert r.candidates(part(serviceprovider="SMPP0")) == ["SMPP0"]
    assert r.candidates(part(serviceprovider="Vodafone")) == ["GSMModem1"]


def test_failover_keeps_order_and_skips_connections_without_slots():
    r = router(RouteConfig(connections=("SMPP0", "GSMModem0"), mode="failover"))
    assert r.pick(part(), {"SMPP0": 5, "GSMModem0": 1}) == "SMPP0"
    assert r.pick(part(), {"SMPP0": 0, "GSMModem0": 1}) == "GSMModem0"   # uplink unbound
    assert r.pick(part(), {"SMPP0": 0, "GSMModem0": 0}) is None          # waits (kept)


def test_balance_spreads_round_robin():
    r = router(RouteConfig(connections=("GSMModem0", "GSMModem1"), mode="balance"))
    free = {"GSMModem0": 9, "GSMModem1": 9}
    picks = [r.pick(part(id=i), free) for i in range(4)]
    assert picks == ["GSMModem0", "GSMModem1", "GSMModem0", "GSMModem1"]


def test_a_transient_failure_sends_the_part_to_the_next_connection():
    r = router(RouteConfig(connections=("SMPP0", "GSMModem0", "GSMModem1"), mode="failover"))
    free = dict.fromkeys(NAMES, 1)
    assert r.pick(part(tried=("SMPP0",)), free) == "GSMModem0"
    assert r.pick(part(tried=("SMPP0", "GSMModem0")), free) == "GSMModem1"
    # every candidate tried: start again from the preferred one
    assert r.pick(part(tried=tuple(NAMES)), free) == "SMPP0"


def test_without_rules_every_connection_is_a_candidate():
    assert sorted(router().candidates(part())) == sorted(NAMES)
