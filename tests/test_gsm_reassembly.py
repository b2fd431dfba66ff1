"""Reassembly of long inbound messages: any order, duplicates, 8/16-bit references,
timeouts with missing-part markers, and surviving a restart through the store.

`FragmentStoreContract` is written for every FragmentStore: a durable store's tests can
subclass it and override `make_store`."""

from dataclasses import replace

import pytest

from appliance.clock import FakeClock
from appliance.gsm import MemoryFragmentStore, Reassembler, decode, encode_deliver, segments
from appliance.gsm.reassembly import missing_marker
from appliance.model import InboundFragment


def fragment(seq, text, *, total=3, ref=42, bits=8, sender="+447700900123", sent_at=None,
             encoding="gsm7", data=b""):
    return InboundFragment(connection="modem1", sender=sender, recipient="+447700900999",
                           encoding=encoding, text=text, data=data,
                           concat=(ref, total, seq, bits),
                           sent_at=sent_at if sent_at is not None else 1000.0 + seq,
                           received_at=2000.0 + seq)


@pytest.fixture
def clock():
    return FakeClock(start=1_700_000_000.0)


def test_parts_in_any_order_are_joined_in_sequence(clock):
    reassembler = Reassembler(clock=clock)
    assert reassembler.add(fragment(3, "C")) is None
    assert reassembler.add(fragment(1, "A")) is None
    whole = reassembler.add(fragment(2, "B"))
    assert whole.text == "ABC" and whole.concat is None
    assert whole.sent_at == 1001.0 and whole.received_at == 2003.0


def test_single_sms_passes_straight_through(clock):
    lone = replace(fragment(1, "hi"), concat=None)
    assert Reassembler(clock=clock).add(lone) == lone


def test_duplicate_part_keeps_the_first_copy(clock):
    reassembler = Reassembler(clock=clock)
    reassembler.add(fragment(1, "first", total=2))
    assert reassembler.add(fragment(1, "again", total=2)) is None
    assert reassembler.add(fragment(2, "!", total=2)).text == "first!"


def test_8bit_and_16bit_references_and_senders_never_mix(clock):
    reassembler = Reassembler(clock=clock)
    reassembler.add(fragment(1, "a8", total=2, bits=8))
    reassembler.add(fragment(1, "a16", total=2, bits=16))
    reassembler.add(fragment(1, "other", total=2, sender="+33600000000"))
    assert reassembler.add(fragment(2, "b16", total=2, bits=16)).text == "a16b16"
    assert reassembler.add(fragment(2, "b8", total=2, bits=8)).text == "a8b8"


def test_timeout_delivers_what_arrived_with_markers(clock):
    reassembler = Reassembler(timeout=600, clock=clock)
    reassembler.add(fragment(1, "Hello "))
    reassembler.add(fragment(3, " world"))
    clock.advance(599)
    assert reassembler.expire() == []
    clock.advance(2)
    [late] = reassembler.expire()
    assert late.text == "Hello " + missing_marker(2, 3) + " world"
    assert "part 2 of 3 missing" in late.text and late.concat is None
    assert reassembler.expire() == []


def test_explicit_arrival_time_drives_the_timeout(clock):
    reassembler = Reassembler(timeout=60, clock=clock)
    reassembler.add(fragment(1, "a", total=2), now=100.0)
    assert reassembler.expire(now=159.0) == []
    assert [m.text for m in reassembler.expire(now=161.0)] == ["a" + missing_marker(2, 2)]


def test_state_survives_a_restart_through_the_store(clock):
    store = MemoryFragmentStore()
    Reassembler(store, clock=clock).add(fragment(1, "before "))
    after_restart = Reassembler(store, clock=clock)
    assert after_restart.add(fragment(2, "and ", total=3)) is None
    assert after_restart.add(fragment(3, "after")).text == "before and after"


def test_binary_parts_join_their_data(clock):
    reassembler = Reassembler(clock=clock)
    reassembler.add(fragment(2, None, total=2, encoding="8bit", data=b"\x03\x04"))
    whole = reassembler.add(fragment(1, None, total=2, encoding="8bit", data=b"\x01\x02"))
    assert whole.data == b"\x01\x02\x03\x04" and whole.text is None


def test_parts_encoded_differently_join_as_ucs2(clock):
    reassembler = Reassembler(clock=clock)
    reassembler.add(fragment(1, "plain ", total=2))
    whole = reassembler.add(fragment(2, "Привет", total=2, encoding="ucs2"))
    assert whole.text == "plain Привет" and whole.encoding == "ucs2"


def test_decoded_deliver_pdus_reassemble(clock):
    """The path a modem worker takes: decode each PDU, build a fragment, add it."""
    from datetime import datetime, timezone
    scts = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    text = "€uro " * 50
    reassembler = Reassembler(clock=clock)
    pieces = segments(text, concat_16bit=True).parts
    results = []
    for seq in (2, 1):
        pdu = decode(encode_deliver("+4915100000", pieces[seq - 1], scts=scts,
                                    concat=(0x1234, 2, seq, 16)))
        results.append(reassembler.add(InboundFragment(
            "m1", pdu.number, "+49", pdu.encoding, pdu.text, pdu.data, pdu.concat,
            pdu.scts.timestamp())))
    assert results[0] is None and results[1].text == text


def test_parts_sent_to_two_of_our_numbers_never_mix(clock):
    """Found by a helper: one sender wrote to two of the appliance's SIMs with the same
    8-bit reference; bob's message got a part of alice's, and hers was delivered partial."""
    reassembler = Reassembler(clock=clock)

    def to(line, seq, text, recipient=""):
        return replace(fragment(seq, text, total=2), connection=line, recipient=recipient)
    assert reassembler.add(to("GSMModem0", 1, "ONE-a ")) is None
    assert reassembler.add(to("GSMModem1", 1, "TWO-a ")) is None
    assert reassembler.add(to("GSMModem1", 2, "TWO-b")).text == "TWO-a TWO-b"
    assert reassembler.add(to("GSMModem0", 2, "ONE-b")).text == "ONE-a ONE-b"
    # the number written to tells them apart too (SMPP binds of one account share it)
    assert reassembler.add(to("SMPP0", 1, "x-", "+3612")) is None
    assert reassembler.add(to("SMPP1", 1, "y-", "+3634")) is None
    assert reassembler.add(to("SMPP1", 2, "x", "+3612")).text == "x-x"


def test_parts_kept_under_an_older_key_layout_still_expire_whole(clock):
    store = MemoryFragmentStore()
    store.put(("+447700900123", 42, 3, 8), 1, fragment(1, "A"), clock.now())   # 4 fields
    store.put(("+447700900123", 42, 3, 8), 3, fragment(3, "C"), clock.now())
    reassembler = Reassembler(store, clock=clock, timeout=60)
    clock.advance(61)
    [whole] = reassembler.expire()
    assert whole.text == "A" + missing_marker(2, 3) + "C"


class FragmentStoreContract:
    """What every FragmentStore must do; subclass and override make_store."""

    def make_store(self):
        return MemoryFragmentStore()

    KEY = ("+447700900123", "+447700900999", 42, 3, 8)

    def test_put_then_get(self):
        store = self.make_store()
        store.put(self.KEY, 2, fragment(2, "b"), 10.0)
        assert store.get(self.KEY) == {2: fragment(2, "b")}
        assert store.get(("+1", "", 1, 2, 8)) == {}

    def test_first_put_of_a_seq_wins(self):
        store = self.make_store()
        store.put(self.KEY, 1, fragment(1, "first"), 10.0)
        store.put(self.KEY, 1, fragment(1, "second"), 11.0)
        assert store.get(self.KEY)[1].text == "first"

    def test_first_arrival_and_age_query(self):
        store = self.make_store()
        assert store.first_arrival(self.KEY) is None
        store.put(self.KEY, 2, fragment(2, "b"), 20.0)
        store.put(self.KEY, 1, fragment(1, "a"), 30.0)
        assert store.first_arrival(self.KEY) == 20.0
        assert store.keys_older_than(20.0) == []
        assert store.keys_older_than(20.5) == [self.KEY]

    def test_pop_removes_everything(self):
        store = self.make_store()
        store.put(self.KEY, 1, fragment(1, "a"), 1.0)
        assert store.pop(self.KEY) == {1: fragment(1, "a")}
        assert store.get(self.KEY) == {} and store.first_arrival(self.KEY) is None
        assert store.keys_older_than(100.0) == []
        assert store.pop(self.KEY) == {}

    def test_fragment_fields_survive_unchanged(self):
        store = self.make_store()
        rich = replace(fragment(1, None, encoding="8bit", data=b"\x00\xff"), msg_class=1)
        store.put(self.KEY, 1, rich, 1.0)
        assert store.get(self.KEY)[1] == rich


class TestMemoryFragmentStore(FragmentStoreContract):
    pass
