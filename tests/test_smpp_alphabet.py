"""Per-connection `defaultalphabet` (Kannel's `alt-charset`, issue 13 item 4): what text with
data_coding 0 looks like on this SMSC's link, both ways, against smpp34's SMPP server."""

from __future__ import annotations

import pytest

from appliance.config import SMPPConfig, connection_from_table
from appliance.errors import ConfigError
from appliance.gsm import alphabet
from appliance.uplink import codec
from test_smpp import channel_for, part, smsc, wait_until  # noqa: F401 (fixtures)

ASCII_TEXT = "Hello_world@home $5 {x}"
LATIN1_TEXT = "Grüße, señor! 5£ ¿qué?"


@pytest.mark.parametrize("setting,wire", [
    ("ascii", ASCII_TEXT.encode("ascii")),
    ("latin1", ASCII_TEXT.encode("ascii")),
    ("gsm", bytes(alphabet.to_septets(ASCII_TEXT))),
])
def test_outbound_data_coding_0_text_is_written_in_the_smscs_alphabet(smsc, channel_for,
                                                                       setting, wire):
    channel, sink = channel_for(defaultalphabet=setting)
    channel.submit(part(1, ASCII_TEXT))
    wait_until(lambda: 1 in sink.submitted, what="submitted")
    [pdu] = smsc.proxy.wire
    assert pdu.data_coding == 0 and pdu.short_message == wire


def test_latin1_text_and_what_ascii_cannot_carry(smsc, channel_for):
    latin1, latin1_sink = channel_for(defaultalphabet="latin1")
    latin1.submit(part(1, LATIN1_TEXT))
    wait_until(lambda: 1 in latin1_sink.submitted, what="latin1 submitted")
    ascii_, ascii_sink = channel_for(defaultalphabet="IA5")
    ascii_.submit(part(2, "5£ Δ"))
    wait_until(lambda: 2 in ascii_sink.submitted, what="ascii submitted")
    first, second = smsc.proxy.wire
    assert first.short_message == LATIN1_TEXT.encode("latin-1")
    assert second.short_message == b"5? ?"          # the SMSC's alphabet has no £ nor Δ


def test_a_long_message_keeps_its_udh_and_writes_the_text_in_the_alphabet(smsc, channel_for):
    channel, sink = channel_for(defaultalphabet="ascii")
    for seq, text in ((1, "first_half@"), (2, "second_half$")):
        channel.submit(part(seq, text, message_id="m", seq=seq, total=2, concat_ref=5))
    wait_until(lambda: len(sink.submitted) == 2, what="2 submitted")
    for pdu, text in zip(smsc.proxy.wire, ("first_half@", "second_half$")):
        body = pdu.short_message
        assert pdu.esm_class & 0x40 and body[1 + body[0]:] == text.encode()


@pytest.mark.parametrize("setting,body,text", [
    ("ascii", ASCII_TEXT.encode("ascii"), ASCII_TEXT),
    ("latin1", LATIN1_TEXT.encode("latin-1"), LATIN1_TEXT),
    ("gsm", bytes(alphabet.to_septets("Hello_world@home")), "Hello_world@home"),
])
def test_inbound_data_coding_0_text_is_read_in_the_smscs_alphabet(smsc, channel_for, setting,
                                                                   body, text):
    channel, sink = channel_for(defaultalphabet=setting)
    wait_until(lambda: smsc.sessions, what="the SMSC's view of the bind")
    assert smsc.send_mo("+36701111111", "1234", body, data_coding=0) == 0
    wait_until(lambda: sink.fragments, what="MO")
    assert sink.fragments[0].text == text


def test_without_the_setting_ascii_mo_is_garbled_as_the_issue_saw():
    fields = {"short_message": ASCII_TEXT.encode(), "data_coding": 0}
    gsm = codec.inbound_fragment("SMPP0", fields, 0.0)
    ascii_ = codec.inbound_fragment("SMPP0", fields, 0.0, "ascii")
    assert gsm.text.startswith("Hello§world¡home ¤5") and ascii_.text == ASCII_TEXT


def test_explicit_ia5_and_latin1_data_codings_are_read_and_written_as_such():
    conn = SMPPConfig(name="SMPP0", host="h")            # default alphabet: GSM
    fields = codec.submit_fields(part(1, "café", smpp_params={"data_coding": "3"}), conn)
    assert fields["data_coding"] == 3 and fields["short_message"] == "café".encode("latin-1")
    assert codec.decode_body(1, b"a_b@")[1] == "a_b@"
    assert codec.decode_body(3, "é".encode("latin-1"))[1] == "é"


def test_flash_text_uses_the_alphabet_too():
    conn = SMPPConfig(name="SMPP0", host="h", defaultalphabet="ascii")
    fields = codec.submit_fields(part(1, "a_b", msg_class=0), conn)
    assert fields["data_coding"] == 0x10 and fields["short_message"] == b"a_b"


@pytest.mark.parametrize("value", ["gsm", "ASCII", "ia5", "latin1", "ISO-8859-1"])
def test_the_setting_accepts_the_usual_names(value):
    conn = connection_from_table("SMPP0", {"type": "SMPP", "host": "h",
                                           "defaultalphabet": value})
    assert codec.alphabet_of(conn) in ("gsm", "ascii", "latin1")


def test_an_unknown_alphabet_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match="defaultalphabet"):
        connection_from_table("SMPP0", {"type": "SMPP", "host": "h", "defaultalphabet": "utf8"})


def test_a_received_binary_sms_keeps_its_port_header_as_from_a_modem():
    """Found by a helper: a deliver_sm with UDHI, a port-addressing IE and 8-bit data
    reached the inbox as DEADBEEF; the modem path (and docs/api.md) keep the header."""
    from appliance.store.inbox import inbound_type_and_body
    body = bytes.fromhex("0605040B8423F0DEADBEEF")
    fields = {"source_addr": b"36301119990", "source_addr_ton": 1,
              "destination_addr": b"36200000001", "dest_addr_ton": 1,
              "esm_class": 0x40, "data_coding": 4, "short_message": body}
    fragment = codec.inbound_fragment("SMPP0", fields, 0.0)
    assert (fragment.udh, fragment.data) == (bytes.fromhex("05040B8423F0"),
                                             bytes.fromhex("DEADBEEF"))
    assert inbound_type_and_body(fragment) == ("SMS:BINARY", "0605040B8423F0DEADBEEF")
    # a concatenation IE is the reassembler's, not the message's
    long_part = dict(fields, short_message=bytes.fromhex("050003070201") + b"ab",
                     data_coding=0)
    part = codec.inbound_fragment("SMPP0", long_part, 0.0)
    assert (part.concat, part.udh, part.text) == ((7, 2, 1, 8), b"", "ab")
