"""generic_nack from the SMSC (tests/fakes/raw_smsc.py: smpp34's server never sends one for
a submit_sm): the part goes back to the store as retryable, a throttling nack keeps it in the
channel until the pause ends, and a nack for no known sequence is waited out (the submit_sm
timeout drops the link and returns the part)."""

from __future__ import annotations

import pytest

from appliance.uplink.smpp import ESME_RTHROTTLED
from test_smpp import part, wait_until

ESME_RINVCMDLEN = 0x02


@pytest.fixture
def channel_for(raw_channel):
    return lambda **kw: raw_channel({"throttle_pause": 0.2}, **kw)


def test_a_generic_nack_returns_the_part_as_retryable_and_keeps_the_link(raw, channel_for):
    channel, sink = channel_for()
    raw.nacks = [(ESME_RINVCMDLEN, None)]
    channel.submit(part(1, "first"))
    wait_until(lambda: sink.failed, what="part 1 back")
    assert sink.failed == [(1, "generic_nack", True)]
    status = channel.status()
    assert status["counts"]["generic_nacks"] == 1 and status["counts"]["link_drops"] == 0
    assert "generic_nack 0x02" in status["last_error"] and status["window"]["in_use"] == 0
    channel.submit(part(2, "second"))
    wait_until(lambda: 2 in sink.submitted, what="part 2 on the same bind")
    assert raw.binds == 1 and raw.submits == [b"first", b"second"]


def test_a_throttling_generic_nack_keeps_the_part_for_after_the_pause(raw, channel_for):
    channel, sink = channel_for()
    raw.nacks = [(ESME_RTHROTTLED, None)]
    channel.submit(part(1, "again"))
    wait_until(lambda: 1 in sink.submitted, what="sent again after the pause")
    assert not sink.failed and raw.submits == [b"again", b"again"]
    assert channel.status()["counts"]["throttled"] == 1


def test_a_generic_nack_for_an_unknown_sequence_ends_in_the_submit_timeout(raw, channel_for):
    channel, sink = channel_for(submittimeout=0.5)
    raw.nacks = [(ESME_RINVCMDLEN, 0)]                 # sequence 0: the SMSC could not read it
    channel.submit(part(1, "lost"))
    wait_until(lambda: sink.failed, what="returned by the submit_sm timeout")
    assert sink.failed == [(1, "link_down", True)]
    assert channel.status()["counts"]["generic_nacks"] == 1
    wait_until(lambda: channel.state == "bound" and raw.binds == 2, what="bound again")
    channel.submit(part(2, "after"))
    wait_until(lambda: 2 in sink.submitted, what="part 2 after the rebind")
