"""Receipt text, message id normalisation (field-notes §2 point 7) and reconnect backoff."""

from __future__ import annotations

import pytest

from appliance.model import ReportStatus
from appliance.uplink.backoff import Backoff
from appliance.uplink.receipts import id_bases, normalise_id, read_receipt


@pytest.mark.parametrize("raw", ["0A3", "0a3", "000a3", "163", "00163", b"0A3\x00", " A3 "])
def test_one_id_in_many_spellings_normalises_to_one_string(raw):
    assert normalise_id(raw) == "163"


def test_configured_bases_settle_ids_without_hex_letters():
    resp, receipt = id_bases("hex-decimal")
    assert normalise_id("00000100", resp) == normalise_id("256", receipt) == "256"
    resp, receipt = id_bases("decimal-hex")
    assert normalise_id("256", resp) == normalise_id("100", receipt) == "256"


def test_non_numeric_ids_are_only_lower_cased():
    uuid = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    assert normalise_id(uuid) == uuid.lower()


def test_receipt_text_is_read():
    text = ("id:1A2B sub:001 dlvrd:000 submit date:2401011200 done date:2401011300 "
            "stat:UNDELIV err:034 text:Hello world")
    receipt = read_receipt(text)
    assert receipt.message_id == str(0x1A2B)
    assert receipt.status == ReportStatus.FAILED and receipt.code == 34
    assert "UNDELIV" in receipt.detail


@pytest.mark.parametrize("own_text", ["Your code id: 3", "Your code id: 3 ok", "paid: 7",
                                      "valid: 1 stat:DELIVRD", "Err: 9 context: x"])
def test_the_text_field_is_the_messages_own_words(own_text):
    receipt = read_receipt(f"id:12 sub:001 dlvrd:000 stat:UNDELIV err:034 text:{own_text}")
    assert (receipt.message_id, receipt.status, receipt.code) == \
        ("12", ReportStatus.FAILED, 34)


def test_receipted_message_id_and_message_state_tlvs_win():
    receipt = read_receipt("id:999 stat:UNDELIV", receipted_id="00ff", message_state=2)
    assert (receipt.message_id, receipt.status) == ("255", ReportStatus.DELIVERED)


@pytest.mark.parametrize("stat,status", [("DELIVRD", ReportStatus.DELIVERED),
                                         ("EXPIRED", ReportStatus.EXPIRED),
                                         ("REJECTD", ReportStatus.FAILED),
                                         ("ENROUTE", ReportStatus.PENDING)])
def test_stat_words(stat, status):
    assert read_receipt(f"id:1 stat:{stat}").status == status


def test_no_id_no_receipt():
    assert read_receipt("stat:DELIVRD") is None


def test_backoff_grows_caps_and_jitters_with_an_injected_random():
    backoff = Backoff(base=1.0, cap=8.0, jitter=0.5, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    backoff.rng = lambda: 0.0
    assert backoff.next_delay() == 8.0
    backoff.reset()
    assert backoff.next_delay() == 1.0
