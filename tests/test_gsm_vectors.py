"""Real PDUs captured from phones and modems (tests/vectors/real-pdus.json, a copy of
shared/vectors/real-pdus.json) decode to the values their sources state."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from appliance.gsm import PduError, decode

_HERE = Path(__file__).resolve().parent
_LOCAL = _HERE / "vectors" / "real-pdus.json"
_SHARED = _HERE.parents[1].parent / "shared" / "vectors" / "real-pdus.json"
_SHARED_ALT = _HERE.parent.parent / "shared" / "vectors" / "real-pdus.json"


def _load_vectors() -> list[dict]:
    for path in (_LOCAL, _SHARED, _SHARED_ALT):
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))["vectors"]
    raise FileNotFoundError("real-pdus.json not found in tests/vectors or shared/vectors")


VECTORS = _load_vectors()
DECODABLE = [v for v in VECTORS if not v.get("expect_error")]
CORRUPT = [v for v in VECTORS if v.get("expect_error")]


def _expected(field: str, value):
    if field in ("scts", "discharge_time"):
        return datetime.fromisoformat(value)
    if field == "concat":
        return (value["ref"], value["total"], value["seq"], value["ref_bits"])
    return value


@pytest.mark.parametrize("vector", DECODABLE, ids=[v["name"] for v in DECODABLE])
def test_real_pdu_decodes_to_published_values(vector):
    pdu = decode(vector["pdu"], has_smsc=vector.get("has_smsc", True))
    for field, value in vector["expect"].items():
        got = getattr(pdu, field)
        want = _expected(field, value)
        assert got == want, f"{field}: {got!r} != {want!r}"
        if isinstance(want, datetime):
            assert got.utcoffset() == want.utcoffset()


@pytest.mark.parametrize("vector", CORRUPT, ids=[v["name"] for v in CORRUPT])
def test_corrupted_pdu_is_rejected(vector):
    with pytest.raises(PduError):
        decode(vector["pdu"], has_smsc=vector.get("has_smsc", True))


def test_local_copy_matches_shared_file_when_present():
    if _SHARED.exists():
        assert json.loads(_SHARED.read_text()) == json.loads(_LOCAL.read_text())


def test_every_vector_is_covered():
    assert len(DECODABLE) + len(CORRUPT) == len(VECTORS) >= 16


def test_wap_push_vector_carries_wdp_ports():
    vector = next(v for v in VECTORS if v["name"].startswith("gammu-33"))
    pdu = decode(vector["pdu"])
    assert pdu.ports == (2948, 9200)
    assert pdu.data.startswith(bytes.fromhex("040603BEAF848C82"))   # TID, WSP push, MMS notification


def test_truncated_user_data_is_flagged():
    vector = next(v for v in VECTORS if v["name"].startswith("gammu-41"))
    pdu = decode(vector["pdu"])
    assert pdu.truncated and pdu.ports == (5496, 0)


def test_reserved_dcs_bit_with_ucs2_payload_reads_as_text():
    vector = next(v for v in VECTORS if v["name"].startswith("gammu-14"))
    assert decode(vector["pdu"]).text == "Тест Test"
