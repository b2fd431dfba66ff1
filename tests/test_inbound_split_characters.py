"""A character a phone split across two parts of a long SMS: the second half of a UCS-2
surrogate pair (an emoji) in the next part, or a GSM escape at the end of a part and the
character it escapes at the start of the next. Parts are joined before they are decoded, so
the inbox shows the character, not U+FFFD or the unescaped base character. Through the pty
modem simulator into a real journal, and through an SMPP deliver_sm."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from appliance.gsm import encode_deliver
from appliance.store.journal import Journal
from appliance.uplink.codec import ESM_UDHI, inbound_fragment
from appliance.gsm.reassembly import Reassembler
from test_modem_kit import rig, network, wait_until  # noqa: F401

SCTS = datetime(2026, 12, 3, 10, 0, 0, tzinfo=timezone.utc)
SENDER = "+36705550001"


@pytest.fixture
def journal(tmp_path):
    store = Journal.open(tmp_path)
    yield store
    store.close()


def ucs2_parts(text: str, split_at: int) -> list[bytes]:
    octets = text.encode("utf-16-be")
    return [octets[:split_at], octets[split_at:]]


def deliver_ucs2(octets: bytes, seq: int) -> str:
    return encode_deliver(SENDER, data=octets, encoding="8bit", dcs=0x08,
                          concat=(77, 2, seq, 8), scts=SCTS)


def deliver_gsm7_ending_in_escape() -> str:
    """Part 1: 151 A's and the escape of '€', without the septet it escapes (TP-UDL one
    shorter than the part with the whole '€': the packed octets are the same)."""
    whole = encode_deliver(SENDER, "A" * 151 + "€", concat=(78, 2, 1, 8), scts=SCTS)
    udl_at = len(whole) - 2 * 140 - 2
    assert int(whole[udl_at:udl_at + 2], 16) == 160
    return whole[:udl_at] + "9F" + whole[udl_at + 2:]


def inbox_bodies(journal) -> list[str]:
    return [row["body"] for row in journal.folder(None, "inbox")]


def test_a_surrogate_pair_split_across_two_modem_parts_is_whole_in_the_inbox(
        rig, network, journal):
    sim = network.add_modem("slot1", "+36201111111")
    rig.worker(sim, journal)
    text = "x" * 66 + "\U0001F600 end"       # the emoji's two code units: octets 132-135
    first, second = ucs2_parts(text, 134)   # the pair split in the middle
    sim.post(lambda: sim.receive_deliver(deliver_ucs2(first, 1)))
    sim.post(lambda: sim.receive_deliver(deliver_ucs2(second, 2)))
    bodies = wait_until(lambda: inbox_bodies(journal), timeout=15, what="the joined SMS")
    assert bodies == [text]


def test_a_gsm_escape_split_from_its_character_is_whole_in_the_inbox(rig, network, journal):
    sim = network.add_modem("slot1", "+36201111111")
    rig.worker(sim, journal)
    second = encode_deliver(SENDER, "e is the euro sign", concat=(78, 2, 2, 8), scts=SCTS)
    sim.post(lambda: sim.receive_deliver(deliver_gsm7_ending_in_escape()))
    sim.post(lambda: sim.receive_deliver(second))
    bodies = wait_until(lambda: inbox_bodies(journal), timeout=15, what="the joined SMS")
    assert bodies == ["A" * 151 + "€ is the euro sign"]


def smpp_part(body: bytes, seq: int, data_coding: int) -> dict:
    header = bytes((5, 0, 3, 91, 2, seq))
    return {"source_addr": b"36705550001", "source_addr_ton": 1,
            "destination_addr": b"36201111111", "dest_addr_ton": 1,
            "esm_class": ESM_UDHI, "data_coding": data_coding, "short_message": header + body}


@pytest.mark.parametrize("data_coding, bodies, expected", [
    (8, ucs2_parts("ab\U0001F600cd", 6), "ab\U0001F600cd"),
    (0, [b"x\x1b", b"\x65y"], "x€y"),           # septet values, as SMPP carries GSM text
])
def test_smpp_parts_are_joined_before_decoding(data_coding, bodies, expected):
    reassembler = Reassembler()
    fragments = [inbound_fragment("smpp1", smpp_part(body, seq, data_coding), 1.0)
                 for seq, body in enumerate(bodies, start=1)]
    assert reassembler.add(fragments[0]) is None
    whole = reassembler.add(fragments[1])
    assert whole.text == expected and whole.raw == b""
