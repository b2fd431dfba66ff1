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
    # a serviceprovider the rules match on is routed by them (it named no connection, and
    # the message waited for one called "bulk" until its validity ended)
    assert sorted(r.candidates(part(serviceprovider="bulk"))) == ["GSMModem0", "SMPP0"]
    assert r.candidates(part(serviceprovider="SMPP0")) == ["SMPP0"]


def test_serviceprovider_override_and_operator_alias():
    r = router()
    assert r.candidates(part(serviceprovider="SMPP0")) == ["SMPP0"]
    assert r.candidates(part(serviceprovider="Vodafone")) == ["GSMModem1"]


def test_failover_keeps_order_and_waits_for_a_busy_first_choice():
    r = router(RouteConfig(connections=("SMPP0", "GSMModem0"), mode="failover"))
    assert r.pick(part(), {"SMPP0": 5, "GSMModem0": 1}) == "SMPP0"
    unbound = frozenset({"SMPP0"})
    assert r.pick(part(), {"SMPP0": 0, "GSMModem0": 1}, unbound) == "GSMModem0"
    assert r.pick(part(), {"GSMModem0": 1}) == "GSMModem0"             # SMPP0 stopped
    assert r.pick(part(), {"SMPP0": 0, "GSMModem0": 0}, unbound) is None   # waits (kept)
    # busy is not down (found by a helper: a burst spilled from the primary onto the
    # backup, a flat-rate SIM's messages onto a paid aggregator)
    assert r.pick(part(), {"SMPP0": 0, "GSMModem0": 1}) is None


def test_a_rule_whose_connections_are_gone_is_skipped():
    """Found by a helper: a rule naming a deleted driver held its messages queued for their
    whole validity while every other connection was idle."""
    r = router(RouteConfig(connections=("SMPP9",), prefix="+3632"),
               RouteConfig(connections=("SMPP0", "SMPP9"), prefix="+3633"))
    assert sorted(r.candidates(part(recipient="+36321234599"))) == sorted(NAMES)
    assert r.candidates(part(recipient="+36331234599")) == ["SMPP0"]


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


def test_one_connection_without_rules_picks_as_the_candidates_say():
    """The single-connection shortcut of `pick` answers what the candidate list would."""
    r = Router((), ["SMPP0"], aliases={"Vodafone": "GSMModem1"})
    for p in (part(), part(tried=("SMPP0",)), part(serviceprovider="Vodafone")):
        for free in ({"SMPP0": 1, "GSMModem1": 1}, {"SMPP0": 0, "GSMModem1": 1}, {}):
            expected = next((n for n in r.candidates(p) if free.get(n, 0) > 0), None)
            assert r.pick(p, free) == expected
    assert r.pick(part(), {"SMPP0": 0}) is None           # no free slot: the part waits
    # a rule or a second connection: the full candidate list again
    r.set_connections(["SMPP0", "GSMModem1"])
    r.set_routes((RouteConfig(connections=("GSMModem1",), prefix="+36"),))
    assert r.pick(part(), {"SMPP0": 1, "GSMModem1": 1}) == "GSMModem1"
    r.set_routes(())
    r.set_connections(["SMPP0", "GSMModem0"])
    assert {r.pick(part(), {"SMPP0": 1, "GSMModem0": 1}) for _ in range(2)} == {"SMPP0",
                                                                              "GSMModem0"}


def test_a_serviceprovider_whose_connection_is_gone_goes_by_the_rules(caplog):
    """Found using the demo: a message pinned to GSMModem1 waited for its whole validity
    (72 h), /status healthy and no word in the log, after a restart whose config no longer
    had that modem (intake refuses such a name, so only a removal makes one)."""
    r = router(RouteConfig(connections=("SMPP0",), prefix="+3630"))
    r.set_connections(["GSMModem0", "SMPP0"])            # GSMModem1 taken out
    with caplog.at_level("WARNING", logger="appliance.routing"):
        assert sorted(r.candidates(part(serviceprovider="GSMModem1"))) == ["GSMModem0", "SMPP0"]
        assert r.candidates(part(serviceprovider="GSMModem1", recipient="+36301234567")) == \
            ["SMPP0"]
        assert r.candidates(part(serviceprovider="Vodafone")) != ["GSMModem1"]  # its alias
    said = [rec.getMessage() for rec in caplog.records]
    assert sum("'GSMModem1', which is not a connection any more" in m for m in said) == 1
    assert r.candidates(part(serviceprovider="SMPP0")) == ["SMPP0"]           # still pinned
    r.set_connections(NAMES)                                                  # back again
    assert r.candidates(part(serviceprovider="GSMModem1")) == ["GSMModem1"]
