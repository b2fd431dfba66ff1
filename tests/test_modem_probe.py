"""Parsing what modems print: capability lists, registration, signal, identity, USSD."""

from __future__ import annotations

from appliance.modem import probe


def test_cnmi_choice_prefers_stored_sms_and_direct_reports():
    quectel = probe.parse_value_sets("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)")
    assert probe.choose_cnmi(quectel).command() == "AT+CNMI=2,1,0,1,0"
    sim800 = probe.parse_value_sets("+CNMI: (0-3),(0-3),(0,2),(0,1),(0,1)")
    assert probe.choose_cnmi(sim800).ds == 1
    sr_only = probe.parse_value_sets("+CNMI: (0-2),(0-2),(0,2),(0,2),(0,1)")
    assert probe.choose_cnmi(sr_only).ds == 2
    telit = probe.parse_value_sets("+CNMI: (1),(0-3),(0),(0-2),(0)")
    assert probe.choose_cnmi(telit).mode == 1
    assert probe.choose_cnmi([]).command() == "AT+CNMI=2,1,0,1,0"
    assert probe.choose_cnmi(quectel, want_reports=False).ds == 0


def test_cpms_choice():
    sets = probe.parse_value_sets('+CPMS: ("SM","ME","SR","MT"),("SM","ME","MT"),("SM","ME","MT")')
    assert probe.choose_storage(sets) == "SM" and probe.supports_sr_memory(sets)
    me_only = probe.parse_value_sets('+CPMS: ("ME","SR"),("ME"),("ME")')
    assert probe.choose_storage(me_only) == "ME"


def test_registration_forms():
    assert probe.parse_registration(["+CREG: 0,1"], "+CREG") == 1
    assert probe.parse_registration(['+CEREG: 2,5,"00C3","0000A1B2",7'], "+CEREG") == 5
    assert probe.parse_registration(["+CGREG: 0,3"], "+CGREG") == 3
    assert probe.parse_registration(["+CREG: 0,1"], "+CGREG") is None


def test_radio_level_and_message_service():
    assert probe.parse_cfun(["+CFUN: 4"]) == 4 and probe.parse_cfun(["+CFUN: 1"]) == 1
    assert probe.parse_cfun([]) is None and probe.parse_cfun(["+CSQ: 21,99"]) is None
    assert probe.parse_csms(["+CSMS: 1,1,1,1"]) == 1 and probe.parse_csms(["+CSMS: (0,1)"]) is None


def test_signal_and_identity():
    assert probe.parse_csq(["+CSQ: 21,99"]) == 21
    assert probe.csq_to_dbm(21) == -71 and probe.csq_to_dbm(99) is None and probe.csq_to_dbm(0) == -113
    assert probe.parse_operator(['+COPS: 0,0,"Telekom HU",7']) == "Telekom HU"
    assert probe.parse_imei(["866758042206851"]) == "866758042206851"
    assert probe.parse_imei(["+CGSN: 866758042206851"]) == "866758042206851"
    assert probe.parse_pin_state(["+CPIN: SIM PIN"]) == "SIM PIN"
    assert probe.parse_smsc(['+CSCA: "+36209300099",145']) == "+36209300099"


def test_ussd_and_storage_answers():
    reply = probe.parse_cusd('+CUSD: 0,"00420061006C",72')
    assert (reply.status, reply.payload, reply.dcs) == (0, "00420061006C", 72)
    assert probe.parse_cusd("+CUSD: 4").status == 4
    assert probe.parse_index_urc('+CDSI: "SR",0') == probe.StoredIndex("SR", 0)
    listing = ["+CMGL: 0,0,,24", "0791AB", "+CMGL: 3,1,,24", "0791CD"]
    assert probe.parse_listing(listing) == [(0, "0791AB"), (3, "0791CD")]
    assert probe.parse_read(["+CMGR: 0,,24", "0791AB"]) == "0791AB"
    assert probe.parse_cmgs(["+CMGS: 7"]) == 7
