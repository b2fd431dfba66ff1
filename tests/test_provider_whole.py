"""Parts 2..n of a message sent whole by part 1, in every order they can arrive."""

from __future__ import annotations

from appliance.model import OutPart
from appliance.provider.whole import WholeMessages


class Sink:
    def __init__(self, first: dict | None):
        self.first = first
        self.calls: list[tuple] = []

    def get_parts(self, message_id):
        return [self.first] if self.first else []

    def part_submitted(self, part_id, connection, reference, whole_message=False):
        self.calls.append((part_id, reference, whole_message))


def part(seq: int) -> OutPart:
    return OutPart(id=seq, message_id="m", recipient="+3620", originator="", seq=seq, total=3,
                   text="x")


def first(state: str, connection: str = "Web0", reference: str = "") -> dict:
    return {"seq": 1, "state": state, "connection": connection, "reference": reference}


def test_a_part_that_comes_before_part_1_waits_and_is_settled_by_its_success():
    sink = Sink(first("sending"))
    whole = WholeMessages("Web0", sink)
    assert whole.follow(part(2)) == "settled"          # part 1 claimed for us, not begun
    whole.begin(part(1))
    assert whole.follow(part(3)) == "settled"
    whole.succeeded(part(1), "R1")
    assert sink.calls == [(1, "R1", True)]             # one transaction settles all three
    assert whole.follow(part(2)) == "settled"          # a late repeat takes the reference
    assert sink.calls[-1] == (2, "R1", False)


def test_parts_that_waited_share_part_1s_failure():
    whole = WholeMessages("Web0", Sink(first("sending")))
    whole.begin(part(1))
    whole.follow(part(2))
    whole.follow(part(3))
    assert [p.seq for p in whole.failed(part(1))] == [2, 3]
    assert whole.failed(part(1)) == []


def test_without_part_1_in_flight_here():
    assert WholeMessages("Web0", Sink(first("queued"))).follow(part(2)) == "later"
    assert WholeMessages("Web0", Sink(first("submitted", "GSMModem0", "7"))).follow(
        part(2)) == "send"
    sink = Sink(first("submitted", "Web0", "R9"))      # after a restart: the stored reference
    assert WholeMessages("Web0", sink).follow(part(2)) == "settled"
    assert sink.calls == [(2, "R9", False)]


def test_parts_after_a_part_1_that_failed_for_good_fail_too():
    """Found by a helper: the provider refused part 1 (the whole text); parts 2..n then
    left one by one and the phone got the message without its beginning, reported
    submitted."""
    for state in ("failed", "undelivered", "expired", "cancelled"):
        assert WholeMessages("Web0", Sink(first(state))).follow(part(2)) == "failed"
