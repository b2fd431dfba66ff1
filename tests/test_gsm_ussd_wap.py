"""USSD payloads in the three forms modems answer with, and WAP push / binary SMS."""

import pytest

from appliance.gsm import (EncodingError, decode, decode_ussd, encode_submit_binary,
                           encode_ussd, encode_wap_push, from_ozeki_xml, service_indication,
                           service_loading)


# -- USSD ---------------------------------------------------------------------------------

def test_huawei_packed_request_published_example():
    # mybroadband.co.za forum (field-notes §2 point 11): Huawei wants *144# as AA188D3602.
    assert encode_ussd("*144#") == "AA188D3602"
    assert decode_ussd("AA188D3602", 15) == "*144#"


def test_ts_23038_cr_padding_when_seven_bits_are_spare():
    # TS 23.038 §6.1.2.3.1: 7 characters leave 7 spare bits; a CR fills them so the
    # receiver does not read an '@'.
    packed = encode_ussd("1234567")
    assert len(packed) == 14 and decode_ussd(packed, 0x0F) == "1234567"


def test_packed_gsm7_reply():
    reply = "Your balance is 12.50 EUR. Valid until 31/12."
    assert decode_ussd(encode_ussd(reply), 0x0F) == reply


def test_ucs2_hex_reply_with_ucs2_dcs():
    # "Баланс: 10 р." as a Russian operator sends it with DCS 0x48.
    payload = "Баланс: 10 р.".encode("utf-16-be").hex().upper()
    assert decode_ussd(payload, 0x48) == "Баланс: 10 р."


def test_ucs2_hex_from_a_modem_in_ucs2_character_set():
    payload = "Balance: 5 EUR".encode("utf-16-be").hex().upper()
    assert decode_ussd(payload, 0x0F) == "Balance: 5 EUR"


def test_ucs2_with_language_prefix():
    payload = "656E" + "Hi".encode("utf-16-be").hex()   # DCS 0x11: 2 octets of language first
    assert decode_ussd(payload, 0x11) == "Hi"


@pytest.mark.parametrize("plain", ["Balance: 5 EUR", "1234", "OK", "Ваш баланс 10"])
def test_plain_text_reply_is_left_alone(plain):
    assert decode_ussd(plain, 0x0F) == plain


@pytest.mark.parametrize("plain", ["Balance: 5 EUR", "OK", "Ваш баланс 10"])
def test_plain_text_with_ucs2_dcs_is_left_alone(plain):
    # A modem that already decoded the reply; a UCS-2 DCS with hex-only text such as
    # "1234" is read as hex, which is what such modems send.
    assert decode_ussd(plain, 0x48) == plain


# -- binary and WAP push ------------------------------------------------------------------

def test_binary_message_keeps_udh_pid_and_dcs():
    [pdu_hex] = encode_submit_binary("+4479", b"\x01\x02\x03", udh=bytes.fromhex("0504157F0000"),
                                     pid=0x7F, dcs=0xF6)
    pdu = decode(pdu_hex)
    assert (pdu.data, pdu.pid, pdu.dcs, pdu.ports, pdu.encoding) == (
        b"\x01\x02\x03", 0x7F, 0xF6, (0x157F, 0), "8bit")


def test_long_binary_message_is_concatenated_and_joins_back():
    data = bytes(range(256)) * 2
    pdus = [decode(p) for p in encode_submit_binary("+4479", data, concat_ref=3)]
    assert [p.concat[2] for p in pdus] == [1, 2, 3, 4]
    assert b"".join(p.data for p in pdus) == data


def test_binary_class_is_applied_to_the_dcs():
    assert decode(encode_submit_binary("+4479", b"x", msg_class=1)[0]).dcs == 0x15


def test_service_indication_matches_the_wap_167_layout():
    # WAP-167 §8: si (45), indication with attributes and content (C6), href "http://www."
    # (0D) + inline string, action signal-high (08), END, inline text, END, END.
    payload = service_indication("http://www.example.com/", "News", action="signal-high")
    assert payload.hex().upper() == ("010601AE" "02056A00" "45" "C6" "0D" "03"
                                     + "example.com/".encode().hex().upper() + "00" "08" "01"
                                     "03" + "News".encode().hex().upper() + "00" "01" "01")


def test_service_loading_matches_the_wap_168_layout():
    payload = service_loading("https://example.com/app.jad", action="execute-high")
    assert payload.hex().upper() == ("010601B0" "02066A00" "85" "0B" "03"
                                     + "example.com/app.jad".encode().hex().upper() + "00"
                                     "06" "01")


def test_wap_push_travels_on_wdp_ports_2948_from_9200():
    payload = from_ozeki_xml('<si><indication href="http://a.example/x" action="signal-high">'
                             'Read me</indication></si>')
    [pdu_hex] = encode_wap_push("+4479", payload)
    assert "0605040B8423F0" in pdu_hex    # same header as the gammu-33 capture
    pdu = decode(pdu_hex)
    assert pdu.ports == (2948, 9200) and pdu.data == payload


def test_ozeki_sl_document():
    assert from_ozeki_xml('<sl href="http://x.example/a" action="signal-cache"/>') == \
        service_loading("http://x.example/a", action="cache")


@pytest.mark.parametrize("bad", ["<si></si>", "<nope/>", "<si><indication",
                                 '<sl href="http://x" action="loud"/>'])
def test_bad_wap_push_documents_are_refused(bad):
    with pytest.raises(EncodingError):
        from_ozeki_xml(bad)
