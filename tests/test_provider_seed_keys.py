"""Every key of the seed's HTTP server, HTTP Client and SMTP tables (seed 000, with the seed's
own default values) is accepted by createdriver: applied to the connection, or listed as an
ignored key. The tables are copied from the seed document as they are."""

from __future__ import annotations

import dataclasses
import re

import pytest

from appliance.config import coerce
from appliance.provider.settings import CONFIG_TYPES, SEED_IGNORED_KEYS

SEED_TABLES = {
    "HTTPServer": {
        "AUTOCONNECT": "on",
        "BASEURL": "http://127.0.0.1:9400",
        "CBSLOWCOMMUNICATION": "off",
        "CHARSETHANDLING": "Best match",
        "DELIVERYREPORT": "on",
        "IDOVERRIDE": "off",
        "KEEPALIVEPERIOD": "30",
        "KEEPALIVEREQUEST": "on",
        "LIMITTOMPM": "240",
        "LOGCOMMUNICATION": "off",
        "LOGDIRECTORY": "C:\\Program Files (x86)\\Ozeki\\OzekiNG - SMS Gateway\\Logs",
        "LOGHISTORYCOUNT": "4",
        "LOGLINESBEFORECHECKSIZE": "20",
        "LOGMAXFILESIZE": "8000",
        "LOGMESSAGES": "on",
        "OPERATOR": "HTTPServer0",
        "PARAMNAMEMESSAGEDATA": "msg",
        "PARAMNAMEMESSAGEID": "msgid",
        "PARAMNAMEMESSAGETYPE": "msgtype",
        "PARAMNAMEORIGINATOR": "originator",
        "PARAMNAMERECIPIENT": "recipient",
        "PARAMNAMESENTTIME": "senttime",
        "PARAMNAMESUBJECT": "subject",
        "PHONENUMBER": "+441234567",
        "POLLINTERVAL": "2",
        "PREFEREDCHARSET": "GSM7bit",
        "PROTOCOL": "HTTPServer",
        "RECEIVE": "on",
        "RESPONSETEMPLATE": "Message was accepted id: $msgid",
        "SEND": "off",
        "SUBMITTIMEOUT": "60",
        "SUBMITTIMEOUTACTION": "SubmitFailed",
        "USEBACKENDRESPONSE": "off",
        "USEOUTBOXFILE": "off",
        "WINDOWSIZE": "20"
    },
    "HTTPClient": {
        "AUTOCONNECT": "on",
        "CBMULTIPARTASBIN": "off",
        "CBSEGMENT": "on",
        "CBSLOWCOMMUNICATION": "off",
        "CBTEXTASBIN": "off",
        "CBUNICODEASBIN": "on",
        "CBUSEHTTP10": "off",
        "CERTFILE": "C:\\mycert.cer",
        "CHARSETHANDLING": "Best match",
        "DELIVERYREPORT": "on",
        "ENCODINGCHARSET": "utf-8",
        "HTTPAUTHORIZATIONMETHOD": "",
        "HTTPAUTHORIZATIONPASSWORD": "",
        "HTTPAUTHORIZATIONUSER": "",
        "IDOVERRIDE": "off",
        "KEEPALIVEPERIOD": "30",
        "KEEPALIVEREQUEST": "on",
        "LIMITTOMPM": "240",
        "LOGCOMMUNICATION": "off",
        "LOGDIRECTORY": "C:\\Program Files (x86)\\Ozeki\\OzekiNG - SMS Gateway\\Logs",
        "LOGHISTORYCOUNT": "4",
        "LOGLINESBEFORECHECKSIZE": "20",
        "LOGMAXFILESIZE": "8000",
        "LOGMESSAGES": "on",
        "NOURLENCODING": "off",
        "OPERATOR": "HTTPClient0",
        "PASSWORDCERT": "",
        "PHONENUMBER": "+441234567",
        "POLLINTERVAL": "2",
        "POSTDATACONTENTTYPE": "application/x-www-form-urlencoded",
        "PREFEREDCHARSET": "GSM7bit",
        "PROTOCOL": "HTTPClient",
        "PROXY": "",
        "PROXYPASSWORD": "",
        "PROXYPORT": "8080",
        "PROXYUSER": "",
        "RECEIVE": "on",
        "REQUESTMETHOD": "Get",
        "RESPFAILED": "",
        "RESPSUCCESS": "",
        "SEND": "on",
        "SUBMITTIMEOUT": "60",
        "SUBMITTIMEOUTACTION": "SubmitFailed",
        "TARGETURL": "http://server.sms.com/send.cgi?receiver=$recipient &sender=$originator &msg=$messagedata&id=$messageid",
        "TARGETURLBIN": "http://server.sms.com/send.cgi?receiver=$recipient&sender= $originator&udh= $udhHEX&ud=$udHEX&dcs=$dcsHEX&PID=$pidHEX",
        "USECERT": "off",
        "USERAGENT": "OzekiNG/4.1.12 (+http://www.ozekisms.com)",
        "USEXMLENCODING": "off",
        "WINDOWSIZE": "20"
    },
    "SMTP": {
        "CBSLOWCOMMUNICATION": "off",
        "CHARACTERSETBODY": "Default",
        "CHARACTERSETSUBJECT": "Default",
        "CHARSETHANDLING": "Best match",
        "DELIVERYREPORT": "on",
        "IDOVERRIDE": "off",
        "KEEPALIVEPERIOD": "30",
        "KEEPALIVEREQUEST": "on",
        "LIMITTOMPM": "240",
        "LOGCOMMUNICATION": "off",
        "LOGDIRECTORY": "C:\\Program Files (x86)\\Ozeki\\OzekiNG - SMS Gateway\\Logs",
        "LOGHISTORYCOUNT": "4",
        "LOGLINESBEFORECHECKSIZE": "20",
        "LOGMAXFILESIZE": "8000",
        "LOGMESSAGES": "on",
        "MAILBODY": "$messagetext",
        "MAILFROM": "sms@mycompany.com",
        "MAILSUBJECT": "$messagetext",
        "MAILTO": "$recipient@serviceprovider.com",
        "OPERATOR": "SMTP0",
        "PASSWORDSMTP": "",
        "PHONENUMBER": "+441234567",
        "PREFEREDCHARSET": "GSM7bit",
        "PROTOCOL": "SMTP",
        "RECEIVE": "on",
        "SEND": "on",
        "SMTPAUTH": "off",
        "SMTPPORT": "25",
        "SMTPSERVER": "mail.mailserver.com",
        "SMTPSSL": "off",
        "SUBMITTIMEOUT": "60",
        "SUBMITTIMEOUTACTION": "SubmitFailed",
        "USERNAMESMTP": "",
        "WINDOWSIZE": "20"
    }
}

@pytest.mark.parametrize("kind", sorted(SEED_TABLES))
def test_every_seed_key_is_applied_or_listed_as_ignored(appliance, kind):
    daemon, api = appliance
    # not started: the seed's hosts are not on this network and 9400 may be taken
    keys = {**SEED_TABLES[kind], "AUTOCONNECT": "off"}
    body = api.action("createdriver", type=kind, name=f"Seed{kind}", **keys)
    assert "<errorcode>" not in body, body
    assert "saved and applied" in body
    ignored = set(re.findall(r"<ignoredkey>([^<]+)", body))
    conn = daemon.channels.configs[f"Seed{kind}"]
    fields = {f.name: f.type for f in dataclasses.fields(CONFIG_TYPES[kind])}
    for key, value in SEED_TABLES[kind].items():
        name = key.lower()
        if name in ignored:
            assert name not in fields or name in SEED_IGNORED_KEYS[kind], name
            continue
        assert name in fields, f"{key} is neither applied nor ignored"
        if name != "autoconnect":
            wanted = coerce(name, type(getattr(conn, name)), value)
            assert getattr(conn, name) == wanted, key
