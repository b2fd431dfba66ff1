"""Encoding round trips and the examples published in TS 23.040 / 23.038 and the
classic PDU tutorials (each example cites its source)."""

from datetime import datetime, timedelta, timezone

import pytest

from appliance.gsm import (EncodingError, PduError, decode, encode_deliver, encode_part,
                           encode_status_report, encode_submit, segments, tpdu_length)
from appliance.gsm.alphabet import is_gsm7, plain_punctuation
from appliance.gsm.segment import fit

CET = timezone(timedelta(hours=1))


# -- published examples -------------------------------------------------------------------

def test_dreamfabric_submit_is_reproduced_exactly():
    # dreamfabric.com "SMS PDU format" tutorial: SMS-SUBMIT of "hellohello" to
    # +46708251358, relative validity AA (4 days), no SMSC: 0011000B916407281553F80000AA0A...
    pdu = encode_submit("+46708251358", "hellohello", validity=4 * 86400)[0]
    assert pdu == "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    assert tpdu_length(pdu) == 23


def test_dreamfabric_deliver_is_reproduced_but_for_the_type_of_address():
    # dreamfabric.com: SMS-DELIVER from 27838890001 via SMSC +27381000015, SCTS 99-03-29
    # 15:16:59 +02:00 (first octet 04: TP-MMS, no more messages). The tutorial's OA type
    # is C8 (a national numbering plan); we write 81 (unknown/ISDN) for digits without '+'.
    scts = datetime(1999, 3, 29, 15, 16, 59, tzinfo=timezone(timedelta(hours=2)))
    pdu = encode_deliver("27838890001", "hellohello", scts=scts, smsc="+27381000015")
    assert pdu == "07917283010010F5040B817238880900F10000993092516195800AE8329BFD4697D9EC37"


def test_ts_23038_packing_example_hellohello():
    # TS 23.038 §6.1.2.1.1 packing: "hellohello" -> E8 32 9B FD 46 97 D9 EC 37
    pdu = encode_part("1", text="hellohello")
    assert pdu.endswith("0AE8329BFD4697D9EC37")


def test_ts_23040_concat_header_8bit_reference():
    # TS 23.040 §9.2.3.24.1: IEI 00, length 03, reference, total, sequence; GSM 7-bit text
    # after a 6-octet UDH starts after one fill bit, so UDL counts 7 header septets.
    pdu = decode(encode_part("+4912345", text="a" * 153, concat=(0x42, 3, 2, 8)))
    assert pdu.concat == (0x42, 3, 2, 8) and pdu.text == "a" * 153


def test_ts_23040_concat_header_16bit_reference():
    # TS 23.040 §9.2.3.24.8: IEI 08, length 04, 16-bit reference.
    pdu_hex = encode_part("+4912345", text="b" * 152, concat=(0xBEEF, 2, 1, 16))
    assert "060804BEEF0201" in pdu_hex
    assert decode(pdu_hex).concat == (0xBEEF, 2, 1, 16)


def test_status_report_round_trip():
    scts = datetime(2024, 5, 1, 10, 0, 0, tzinfo=CET)
    done = scts + timedelta(seconds=7)
    pdu = decode(encode_status_report("+420603052000", message_reference=232, status=0x41,
                                      scts=scts, discharge_time=done, smsc="+420603052000"))
    assert (pdu.type, pdu.number, pdu.message_reference, pdu.status) == (
        "status_report", "+420603052000", 232, 0x41)
    assert pdu.scts == scts and pdu.discharge_time == done


# -- encoding choices ---------------------------------------------------------------------

def test_euro_sign_is_an_extension_character_not_a_space():
    pdu = decode(encode_submit("+441234", "Price: 5€ {x}")[0])
    assert pdu.text == "Price: 5€ {x}" and pdu.encoding == "gsm7"


def test_non_gsm_text_goes_ucs2_automatically():
    pdu = decode(encode_submit("+441234", "Привет 👋")[0])
    assert pdu.encoding == "ucs2" and pdu.text == "Привет 👋"


def test_explicit_gsm7_refuses_foreign_characters_clearly():
    with pytest.raises(EncodingError, match="U\\+4E2D"):
        encode_submit("+441234", "中", encoding="gsm7")


def test_flash_message_has_class_0():
    pdu = decode(encode_submit("+441234", "alert", msg_class=0)[0])
    assert pdu.msg_class == 0 and pdu.dcs == 0x10


def test_alphanumeric_sender_round_trip():
    scts = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    pdu = decode(encode_deliver("MyBank", "code 1234", scts=scts))
    assert pdu.number == "MyBank" and pdu.number_type == 0xD0


def test_national_number_has_no_plus():
    assert decode(encode_part("0612345678", text="x")).number == "0612345678"


def test_absolute_validity_round_trip():
    until = datetime(2030, 12, 31, 23, 59, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert decode(encode_part("+1555", text="x", validity=until)).validity == until


def test_relative_validity_rounds_up_to_the_next_step():
    assert decode(encode_part("+1555", text="x", validity=3600)).validity == 3600
    assert decode(encode_part("+1555", text="x", validity=3601)).validity == 3900


def test_status_report_request_and_reference():
    pdu = decode(encode_part("+1555", text="x", request_status_report=True,
                             message_reference=77))
    assert pdu.status_report_requested and pdu.message_reference == 77


def test_part_that_does_not_fit_is_refused():
    with pytest.raises(EncodingError):
        encode_part("+1555", text="a" * 154, concat=(1, 2, 1, 8))


def test_long_text_uses_153_septet_parts_and_joins_back():
    text = "x" * 400
    pdus = encode_submit("+1555", text, concat_ref=9)
    decoded = [decode(p) for p in pdus]
    assert [d.concat for d in decoded] == [(9, 3, 1, 8), (9, 3, 2, 8), (9, 3, 3, 8)]
    assert "".join(d.text for d in decoded) == text


def test_segments_counts_extension_characters_twice():
    plan = segments("€" * 80)
    assert (plan.count, plan.units_used, plan.left_in_last_part) == (1, 160, 0)
    plan = segments("€" * 81)
    assert plan.count == 2 and all(len(p) <= 76 for p in plan.parts)


def test_segments_limits_with_16bit_reference():
    assert [len(p) for p in segments("z" * 305, concat_16bit=True).parts] == [152, 152, 1]
    assert [len(p) for p in segments("ж" * 133, concat_16bit=True).parts] == [66, 66, 1]


def test_single_part_limits():
    assert segments("a" * 160).count == 1 and segments("a" * 161).count == 2
    assert segments("ж" * 70).count == 1 and segments("ж" * 71).count == 2


# -- malformed input ----------------------------------------------------------------------

@pytest.mark.parametrize("bad, why", [
    ("", "empty"),
    ("0", "odd"),
    ("zz", "hex"),
    ("0011000B916407281553F800", "ends inside"),
    ("0003", "reserved"),
    ("07917283010010F5040BC87238880900F10000991392516195800AE8329BFD4697D9EC37", "valid time"),
    ("0011000B916407281553F80000AAA1E8", "exceeds"),
])
def test_malformed_pdus_raise_pdu_error_saying_why(bad, why):
    with pytest.raises(PduError, match=why):
        decode(bad) if bad else tpdu_length(bad)


def test_tpdu_length_skips_the_smsc_field():
    assert tpdu_length("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37") == 28


# -- more of TS 23.040 ----------------------------------------------------------------------

@pytest.mark.parametrize("vp, seconds", [
    (0, 5 * 60), (143, 12 * 3600), (144, 12 * 3600 + 1800), (167, 24 * 3600),
    (168, 2 * 86400), (196, 30 * 86400), (197, 5 * 7 * 86400), (255, 63 * 7 * 86400),
])
def test_ts_23040_relative_validity_table(vp, seconds):
    # TS 23.040 §9.2.3.12.1: the four ranges of the relative TP-VP octet.
    pdu_hex = encode_part("+1555", text="x", validity=seconds)
    assert pdu_hex[18:20] == f"{vp:02X}"      # 00 11 00 04 91 5155 00 00 VP ...
    assert decode(pdu_hex).validity == seconds


def test_ts_23040_negative_time_zone():
    # TS 23.040 §9.2.3.11: bit 3 of the time zone's first semi-octet is the sign.
    # Octet 0x29: low semi-octet 9 = sign bit 8 + tens digit 1, high semi-octet 2 = units,
    # so -12 quarter hours, UTC-03:00.
    scts = datetime(2021, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-3)))
    pdu_hex = encode_deliver("+1555", "x", scts=scts)
    assert "12203040506029" in pdu_hex
    assert decode(pdu_hex).scts.utcoffset() == timedelta(hours=-3)


def test_extra_udh_goes_after_the_concat_ie():
    pdu_hex = encode_part("+1555", text="t" * 140, concat=(5, 2, 2, 8),
                          udh=bytes.fromhex("050400E20000"))
    assert "0B0003050202050400E20000" in pdu_hex   # UDHL 0B, concat IE, then port IE
    pdu = decode(pdu_hex)
    assert pdu.concat == (5, 2, 2, 8) and pdu.ports == (0xE2, 0)
    assert pdu.udh == bytes.fromhex("050400E20000") and pdu.text == "t" * 140


def test_dcs_override_is_written_as_given():
    assert decode(encode_part("+1555", text="x", dcs=0xF0)).dcs == 0xF0


@pytest.mark.parametrize("call, message", [
    (lambda: encode_part("+1555", text="x", udh=b"\x05\x04\x00"), "UDH element"),
    (lambda: encode_part("TwelveChars!", text="x"), "at most 11"),
    (lambda: encode_part("+1555", text="x", validity=-1), "negative"),
    (lambda: encode_part("+1555", text="x", message_reference=256), "TP-MR"),
    (lambda: encode_part("+1555", text="x", concat=(1, 2, 3, 8)), "part 3 of 2"),
    (lambda: encode_part("+1555", text="x", concat=(300, 2, 1, 8)), "8 bits"),
    (lambda: encode_part("+1555", text="x", encoding="utf8"), "encoding"),
    (lambda: encode_part("+" + "1" * 21, text="x"), "digits"),
    (lambda: segments("x", encoding="8bit"), "gsm7"),
])
def test_bad_parameters_raise_encoding_error_saying_why(call, message):
    with pytest.raises(EncodingError, match=message):
        call()


def test_encoding_error_is_a_value_error():
    assert issubclass(EncodingError, ValueError)


def test_status_report_with_garbled_optional_tail_still_decodes():
    report = encode_status_report("+1555", message_reference=9, status=0,
                                  scts=datetime(2024, 1, 1, tzinfo=CET),
                                  discharge_time=datetime(2024, 1, 1, tzinfo=CET))
    pdu = decode(report + "FFFF")
    assert pdu.status == 0 and pdu.message_reference == 9


# --- fit: the text an integration (mail, webhook, rule) stores, within its SMS budget -------


def test_a_long_gsm7_text_is_cut_with_three_dots_and_stays_three_gsm7_parts():
    text = fit("Disk report. " * 300, 459)
    assert text.endswith("...") and len(text) == 459
    plan = segments(text)
    assert (plan.encoding, plan.count) == ("gsm7", 3)   # "…" would make it 7 UCS-2 parts


def test_a_text_that_needs_ucs2_gets_the_ucs2_room_of_the_same_parts():
    source = "Hőmérséklet riasztás a szerverteremben. " * 40
    text = fit(source, 459)
    assert text == source[:200].rstrip() + "…"           # 3 x 67 UCS-2 characters
    assert segments(text).encoding == "ucs2" and segments(text).count == 3
    assert fit("Hőmérséklet " * 30, 100) == ("Hőmérséklet " * 6)[:69].rstrip() + "…"


def test_fit_keeps_gsm7_when_the_ucs2_character_is_in_the_part_cut_off():
    text = fit("x" * 600 + " ő", 306)
    assert text == "x" * 303 + "..." and segments(text).encoding == "gsm7"


def test_fit_counts_pairs_that_cannot_be_split_across_parts():
    euros = fit("€" * 229, 459)                     # 458 septets, but a pair never splits
    assert segments(euros).count == 3 and euros.endswith("...")
    emoji = fit("😀" * 300, 459)
    assert segments(emoji).count == 3 and emoji.endswith("…")


def test_fit_with_a_suffix_and_a_budget_too_small_for_it():
    held = " (+3 held back by the rate limit)"
    assert fit("y" * 500, 306, held) == "y" * 270 + "..." + held
    assert fit("short alert", 306, held) == "short alert" + held
    assert fit("z" * 100, 20, held) == "z" * 17 + "..."     # the text comes first
    assert fit("abcd", 3) == "abc" and fit("", 20) == ""


def test_plain_punctuation_makes_typographic_marks_gsm7_and_leaves_letters_alone():
    typed = "Don\u2019t panic \u2013 UPS \u201con battery\u201d\u2026 \u2022 5\u00a0min\u200b"
    assert plain_punctuation(typed) == "Don't panic - UPS \"on battery\"... * 5 min"
    assert is_gsm7(plain_punctuation(typed))
    assert plain_punctuation("Hőmérséklet: 45 °C, Ünnep") == "Hőmérséklet: 45 °C, Ünnep"
