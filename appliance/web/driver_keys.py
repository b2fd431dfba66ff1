"""Seed 000's configdriver key tables: every key, under its seed name, per driver kind.

A key either maps to a field of the kind's connection dataclass (`config.py`; the value is
applied) or is IGNORED: accepted, stored and answered as `<ignoredkey>`, because it has no
meaning on this hardware (serial framing, Windows log folders, MMS, GPRS dial-up, ...).
docs/api.md lists every key with what the appliance does with it.

Kinds are registered in KIND_KEYS; a channel module of another kind (HTTP Client, HTTP
Server, SMTP) supplies its own table with `register_kind_keys` and nothing here changes.
"""

from __future__ import annotations

IGNORED = None

# Keys every seed table has that mean nothing here.
_COMMON_IGNORED = ("CBSLOWCOMMUNICATION", "CHARSETHANDLING", "IDOVERRIDE", "LOGCOMMUNICATION",
                   "LOGDIRECTORY", "LOGHISTORYCOUNT", "LOGLINESBEFORECHECKSIZE",
                   "LOGMAXFILESIZE", "LOGMESSAGES", "PREFEREDCHARSET", "PROTOCOL")


def _table(applied: dict[str, str], ignored) -> dict[str, str | None]:
    table: dict[str, str | None] = {k: IGNORED for k in (*_COMMON_IGNORED, *ignored)}
    table.update(applied)
    return table


# seed key -> field of GSMModemConfig (lower-case key unless renamed)
GSM_MODEM_KEYS = _table({
    "AUTOCONNECT": "autoconnect", "BAUDRATE": "baudrate", "DELIVERYREPORT": "deliveryreport",
    "GSMMODEMINIT": "gsmmodeminit", "GSMMODEMINIT2": "gsmmodeminit2",
    "GSMMODEMINIT3": "gsmmodeminit3", "KEEPALIVEPERIOD": "keepaliveperiod",
    "KEEPALIVEREQUEST": "keepaliverequest", "LIMITTOMPM": "limittompm",
    "MODEMORPORT": "modemorport", "OPERATOR": "operator", "PHONENUMBER": "phonenumber",
    "PINCODE": "pincode", "RECEIVE": "receive", "SEND": "send",
    "SMSSERVICECENTERADDRESS": "smsservicecenteraddress", "SUBMITTIMEOUT": "submittimeout",
    "SUBMITTIMEOUTACTION": "submittimeoutaction", "USSDMETHOD": "ussdmethod",
}, ("CBADDRESSHIDING", "DATABITS", "DELAYAFTERSUBMIT", "DELAYINTERVAL", "DISCONNECTONTIMEOUT",
    "DOWNLOADMMS", "GPRSAPN", "GPRSDIALSTRING", "GPRSPASSWORD", "GPRSUSERNAME", "HWHANDSHAKE",
    "LEAVEMESSAGES", "METHODTOUSE", "MMSCURL", "MMSPROVIDER", "NOLOOPBACK", "NOPDUMODE",
    "OVERRIDESIMSMSC", "PARITY", "PHONEMEMORYCELLS", "SCAINPDU", "SENDMETHOD",
    "SIMMEMORYCELLS", "SLOWMODEM", "STOPBITS", "SWHANDSHAKE", "USEGPRS", "USEINTERNETFORMMS",
    "WAPGATEWAY", "WINDOWSIZE"))

# seed key -> field of SMPPConfig. `username`/`password` authenticate the API call itself,
# so the bind's credentials come as SYSTEMID / SMPPPASSWORD (appliance names).
SMPP_KEYS = _table({
    "ADDRESSRANGE": "addressrange", "AUTOCONNECT": "autoconnect", "BINDNPI": "bindnpi",
    "BINDTON": "bindton", "DELIVERYREPORT": "deliveryreport", "DESTNPI": "destaddrnpi",
    "DESTTON": "destaddrton", "HOST": "host", "KEEPALIVEPERIOD": "keepaliveperiod",
    "KEEPALIVEREQUEST": "keepaliverequest", "LIMITTOMPM": "limittompm", "MODE": "mode",
    "OPERATOR": "operator", "PORT": "port", "PROTOCOLVERSION": "protocolversion",
    "RECEIVE": "receive", "SEND": "send", "SOURCENPI": "sourceaddrnpi",
    "SOURCETON": "sourceaddrton", "SUBMITTIMEOUT": "submittimeout",
    "SUBMITTIMEOUTACTION": "submittimeoutaction", "SYSTEMTYPE": "systemtype",
    "USESAR": "usesar", "USETLVMESSAGEPAYLOAD": "usetlvmessagepayload",
    "WINDOWSIZE": "windowsize", "SYSTEMID": "username", "SMPPPASSWORD": "password",
}, ("BINDTOHOSTIP", "BINDTOPORT", "CBALTERNATIVEREPORTS", "DCSHEXCHAR",
    "DELIVERYREPORTDATEFORMAT", "INCLUDEDRINESM", "INCLUDEUDHIINESMBIN",
    "INCLUDEUDHIINESMTEXT", "LEAVEPLUSSIGNINTELNUM", "OPTIONALPARAMETER", "OVERRIDEDCS",
    "PHONENUMBER", "PROTOCOLWINDOWSIZE", "SENDUNBIND", "SERVICETYPEHEXSTR", "UNSPECIFIEDTON",
    "USEANSIATSIGN", "USEGSM7BITPACKEDENCODING", "USEGSMDECODINGONINCOMING", "USETLVUDH4BIN",
    "USETLVUDH4TEXT"))

# Keys of the seed's other tables (CIMD2, UCP, HTTP server/client, SMTP, EAIF, MM7, VoIP):
# on a GSM modem or SMPP driver they are accepted and ignored, never an error.
OTHER_SEED_KEYS = frozenset((
    "BASEURL", "CBACCREGISTRATIONREQUIRED", "CBMULTIPARTASBIN", "CBSEGMENT", "CBTEXTASBIN",
    "CBUNICODEASBIN", "CBUSEHTTP10", "CERTFILE", "CHARACTERSETBODY", "CHARACTERSETSUBJECT",
    "CONNECTION", "CONVERTTOISOLATIN", "CUSTOMXML", "ENCODINGCHARSET", "ETXHEXSTRING",
    "EXCLUDEMOREMESSAGEPARAMETER", "EXCLUDEORIGINATOR", "HTTPAUTHORIZATIONMETHOD",
    "HTTPAUTHORIZATIONPASSWORD", "HTTPAUTHORIZATIONUSER", "HTTPUSERNAME", "LINKEDID",
    "MAILBODY", "MAILFROM", "MAILSUBJECT", "MAILTO", "MAXMESSAGELENGTH", "MM7LISTENERURL",
    "MM7SCHEMA", "MM7SUBMITURL", "MMSVERSION", "NATTYPE", "NEWLINEREPLACEMENT",
    "NOTIFICATIONTYPE", "NOURLENCODING", "PARAMNAMEMESSAGEDATA", "PARAMNAMEMESSAGEID",
    "PARAMNAMEMESSAGETYPE", "PARAMNAMEORIGINATOR", "PARAMNAMERECIPIENT", "PARAMNAMESENTTIME",
    "PARAMNAMESUBJECT", "PASSWORDCERT", "PASSWORDHTTP", "PASSWORDSMTP", "POLLINTERVAL",
    "POSTDATACONTENTTYPE", "PROXY", "PROXYPASSWORD", "PROXYPORT", "PROXYUSER",
    "REPLACESTXNULLETXCRLF", "REQUESTMETHOD", "REQUIRELOGIN", "RESPFAILED", "RESPONSETEMPLATE",
    "RESPSUCCESS", "SENDCHECKSUMS", "SERVICECODE", "SKIPPROTOCOLCHECKS", "SMTIDENTIFICATION",
    "SMTPAUTH", "SMTPPORT", "SMTPSERVER", "SMTPSSL", "STUNPASSWORD", "STUNSERVER",
    "STUNUSERNAME", "STXHEXSTRING", "TARGETURL", "TARGETURLBIN", "TBACCDISPLAYNAME",
    "TBACCDOMAINSERVER", "TBACCREGISTERNAME", "TBACCREGISTERPASSWORD", "TBACCUSERID",
    "TBADVLOCALIP", "TBADVLOCALPORTMAX", "TBADVLOCALPORTMIN", "TBADVLOCALPORTSIP",
    "TBADVLOCALSIPPORT", "TBATAADDRESS", "TBATAPORT", "TBLISTENINGADDRESS", "TBTERMINATINGAA",
    "USEBACKENDRESPONSE", "USECERT", "USEHEXLOG", "USELAID", "USEOUTBOXFILE", "USERAGENT",
    "USERNAMESMTP", "USESIMPLENUMBERFORMAT", "USEXMLENCODING", "VASID", "VASPID",
))


# Seed keys whose empty default means "let the appliance choose" (TON/NPI: -1 = automatic).
EMPTY_MEANS_AUTOMATIC = {"sourceaddrton": "-1", "sourceaddrnpi": "-1", "bindton": "-1",
                         "bindnpi": "-1", "destaddrton": "1", "destaddrnpi": "1"}

KIND_KEYS: dict[str, dict[str, str | None]] = {"GSMModem": GSM_MODEM_KEYS, "SMPP": SMPP_KEYS}


def register_kind_keys(kind: str, table: dict[str, str | None]) -> None:
    """The hook for another channel kind's seed table: {SEEDKEY: field name or IGNORED}."""
    KIND_KEYS[kind] = {k.upper(): v for k, v in table.items()}


def lookup(kind: str, key: str) -> tuple[bool, str | None]:
    """(known, field): known is False for a key not in the kind's seed table."""
    table = KIND_KEYS.get(kind)
    if table is None:
        return False, None
    upper = key.upper()
    if upper in table:
        return True, table[upper]
    if upper in OTHER_SEED_KEYS or any(upper in t for t in KIND_KEYS.values()):
        return True, IGNORED           # another kind's seed key: meaningless on this one
    return False, None
