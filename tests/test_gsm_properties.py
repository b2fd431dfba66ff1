"""Property-based tests: whatever the text and number, encoding then decoding gives the
message back, parts match `segments`, and no PDU exceeds what one SMS carries."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings, strategies as st

from appliance.gsm import (PduError, decode, encode_deliver, encode_submit, segments,
                           tpdu_length)
from appliance.gsm.alphabet import EXTENSION_CHARACTERS, GSM_CHARACTERS, is_gsm7, septet_cost
from appliance.gsm.address import read_address
from appliance.gsm.reader import Reader, octets_from_hex
from appliance.gsm.segment import fit
from appliance.gsm.ucs2 import unit_count

_VECTOR_FILE = Path(__file__).resolve().parent / "vectors" / "real-pdus.json"
VECTORS = json.loads(_VECTOR_FILE.read_text(encoding="utf-8"))["vectors"]

FAST = settings(max_examples=150, deadline=None)

gsm_text = st.text(alphabet=GSM_CHARACTERS + EXTENSION_CHARACTERS, max_size=480)
extension_heavy = st.text(alphabet=EXTENSION_CHARACTERS + "ab", max_size=330)
latin1_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF),
                      max_size=300)
astral_text = st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
                      | st.sampled_from("aé ж"), max_size=200)
any_text = st.one_of(gsm_text, extension_heavy, latin1_text, astral_text,
                     st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
international = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)
national = st.from_regex(r"0[0-9]{5,12}", fullmatch=True)
alphanumeric = st.from_regex(r"[A-Za-z][A-Za-z0-9 ]{0,9}", fullmatch=True)
numbers = st.one_of(international, national)


def _user_data_within_limits(pdu_hex: str) -> bool:
    """Walk the SMS-SUBMIT to TP-UDL; the user data must fit 140 octets / 160 septets."""
    reader = Reader(octets_from_hex(pdu_hex)[1:])   # encode_submit writes SMSC 00 here
    reader.take(2, "first octet, TP-MR")
    read_address(reader, "TP-DA")
    _pid, dcs, udl = reader.take(3, "PID, DCS, UDL")
    ud_octets = reader.remaining()
    septets = dcs & 0x0C == 0
    return ud_octets <= 140 and (udl <= 160 if septets else udl == ud_octets)


@FAST
@given(numbers, any_text, st.booleans())
def test_submit_round_trip(number, text, concat_16bit):
    pdus = encode_submit(number, text, concat_ref=7, concat_16bit=concat_16bit)
    decoded = [decode(p) for p in pdus]
    assert "".join(d.text for d in decoded) == text
    assert all(d.number == number and d.type == "submit" for d in decoded)
    plan = segments(text, concat_16bit=concat_16bit)
    assert len(pdus) == plan.count
    assert [d.text for d in decoded] == plan.parts
    assert all(_user_data_within_limits(p) for p in pdus)
    assert all(tpdu_length(p) == len(p) // 2 - 1 for p in pdus)
    if len(pdus) > 1:
        bits = 16 if concat_16bit else 8
        assert [d.concat for d in decoded] == [(7, len(pdus), i, bits)
                                               for i in range(1, len(pdus) + 1)]


@FAST
@given(any_text, st.booleans())
def test_segments_add_up(text, concat_16bit):
    plan = segments(text, concat_16bit=concat_16bit)
    assert "".join(plan.parts) == text and plan.chars == len(text)
    if plan.count == 1:
        limit = 160 if plan.encoding == "gsm7" else 70
    elif plan.encoding == "gsm7":
        limit = 152 if concat_16bit else 153
    else:
        limit = 66 if concat_16bit else 67
    units = [_units(p, plan.encoding) for p in plan.parts]
    assert all(u <= limit for u in units)
    assert all(u >= limit - 1 for u in units[:-1])   # parts are filled; one unit may stay free
    assert plan.units_used == sum(units)
    assert plan.left_in_last_part == limit - units[-1]


def _units(part, encoding):
    if encoding == "gsm7":
        return len(part) + sum(ch in EXTENSION_CHARACTERS for ch in part)
    return len(part.encode("utf-16-be")) // 2


@FAST
@given(st.text(alphabet=EXTENSION_CHARACTERS + "a", min_size=150, max_size=500))
def test_an_escape_pair_is_never_split(text):
    plan = segments(text, encoding="gsm7")
    assert all(_units(p, "gsm7") <= (160 if plan.count == 1 else 153) for p in plan.parts)
    assert "".join(plan.parts) == text   # parts hold whole characters, so ESC stays paired


@FAST
@given(st.text(alphabet="a😀ж", min_size=60, max_size=300))
def test_a_surrogate_pair_is_never_split(text):
    plan = segments(text)
    for part in plan.parts:
        encoded = part.encode("utf-16-be")
        assert encoded.decode("utf-16-be") == part
        assert len(encoded) // 2 <= (70 if plan.count == 1 else 67)


@FAST
@given(alphanumeric, st.text(alphabet=GSM_CHARACTERS, max_size=160),
       st.integers(min_value=-48, max_value=56))
def test_deliver_round_trip_with_alphanumeric_sender(sender, text, quarters):
    scts = datetime(2025, 6, 30, 23, 59, 58, tzinfo=timezone(timedelta(minutes=15 * quarters)))
    pdu = decode(encode_deliver(sender, text, scts=scts))
    assert (pdu.number, pdu.text, pdu.scts) == (sender, text, scts)
    assert pdu.scts.utcoffset() == scts.utcoffset()


@FAST
@given(st.binary(max_size=400))
def test_random_octets_raise_only_pdu_error(blob):
    for has_smsc in (True, False):
        try:
            decode(blob.hex(), has_smsc=has_smsc)
        except PduError:
            pass


_SAMPLES = [v["pdu"] for v in VECTORS] + encode_submit("+4915112345", "Grüße € " * 30)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_SAMPLES), st.data())
def test_damaged_real_pdus_raise_only_pdu_error(pdu_hex, data):
    octets = bytearray(octets_from_hex(pdu_hex))
    cut = data.draw(st.integers(min_value=0, max_value=len(octets)))
    position = data.draw(st.integers(min_value=0, max_value=len(octets) - 1))
    octets[position] = data.draw(st.integers(min_value=0, max_value=255))
    for damaged in (bytes(octets), bytes(octets[:cut])):
        try:
            pdu = decode(damaged.hex())
        except PduError:
            continue
        assert pdu.text is None or isinstance(pdu.text, str)


# --- fit: integration texts cut to a budget of SMS parts ------------------------------------

budgets = st.sampled_from([1, 2, 3, 20, 70, 100, 160, 161, 306, 459, 1530])
suffixes = st.sampled_from(["", " (+3 held back by the rate limit)"])


@FAST
@given(text=any_text, septets=budgets, suffix=suffixes)
def test_fit_stays_within_the_characters_and_the_parts_of_its_budget(text, septets, suffix):
    budget_parts = 1 if septets <= 160 else -(-septets // 153)
    result = fit(text, septets, suffix)
    size = septet_cost(result) if is_gsm7(result) else unit_count(result)
    assert size <= septets and segments(result).count <= budget_parts
    whole = text + suffix
    if is_gsm7(whole) and septet_cost(whole) <= septets \
            and segments(whole).count <= budget_parts:
        assert result == whole                   # what fits is never touched
    elif is_gsm7(whole) and septets > 40:        # a cut GSM-7 text stays GSM-7
        assert is_gsm7(result) and result.endswith("..." + suffix)
