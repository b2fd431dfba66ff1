"""From a neutral `Submission` to the parts the store keeps and the channels send.

Numbers, sender, message type and the split into SMS, nothing else: the appliance's policy
(do-not-disturb, default validity, UTF-8) and the way into the store are `intake.py`, the one
path every sender takes. The types live in `model.py`, so the store does not import this.
"""

from __future__ import annotations

import re

from appliance import gsm
from appliance.gsm import dcs as gsm_dcs
from appliance.gsm import segment as gsm_segment
from appliance.gsm import udh as gsm_udh
from appliance.gsm import userdata as gsm_userdata
from appliance.gsm.errors import TooLongError
from appliance.gsm.reader import octets_from_hex
from appliance.uplink.codec import dynamic_params, text_alphabet
from appliance.gsm import wap as gsm_wap
from appliance.errors import ValidationError
from appliance.ids import new_message_id
from appliance.model import NewMessage, PartSpec, Submission  # noqa: F401  (re-exported)

MAX_PARTS = 20
MAX_RECIPIENT_DIGITS = 20
ALNUM_SENDER_MAX = 11
NUMERIC_SENDER_MAX = 20

_NUMBER_NOISE = re.compile(r"[\s\-().]")
_NUMBER = re.compile(r"\+?[0-9]{2,20}")
_ALNUM_SENDER = re.compile(r"[A-Za-z0-9 .\-_&!?]{1,11}")


# --- numbers ---------------------------------------------------------------------------


def normalize_recipient(raw: str) -> str:
    """Strip spacing people type into numbers; refuse what is not a phone number."""
    number = _NUMBER_NOISE.sub("", raw or "")
    if number.startswith("00") and len(number) > 4:
        number = "+" + number[2:]
    if not _NUMBER.fullmatch(number):
        raise ValidationError("bad_recipient", f"invalid recipient number: {raw!r}", "recipient")
    return number


def check_originator(raw: str) -> str:
    """Numeric senders up to 20 digits (with +), alphanumeric up to 11 characters."""
    sender = (raw or "").strip()
    if not sender:
        return ""
    digits = _NUMBER_NOISE.sub("", sender)
    if _NUMBER.fullmatch(digits) and len(digits.lstrip("+")) <= NUMERIC_SENDER_MAX:
        return digits
    if _ALNUM_SENDER.fullmatch(sender):
        return sender
    raise ValidationError("bad_originator", f"invalid originator: {raw!r} "
                          "(up to 11 letters/digits, or a number)", "originator")


# --- message types ---------------------------------------------------------------------

# Every text type there is, SMS:TEXT[:GSM7BIT|:UCS2][:CLASS0-3] in upper case, and its
# (encoding, class): fifteen names, so one dict lookup per message instead of a regex match.
_TEXT_TYPES = {
    "SMS:TEXT" + (f":{name}" if name else "") + (f":CLASS{msg_class}" if msg_class is not None
                                                 else ""): (encoding, msg_class)
    for name, encoding in (("", None), ("GSM7BIT", "gsm7"), ("UCS2", "ucs2"))
    for msg_class in (None, 0, 1, 2, 3)
}


def parse_text_type(messagetype: str) -> tuple[str | None, int | None]:
    """`SMS:TEXT:UCS2:CLASS0` -> ("ucs2", 0). None encoding means "pick the cheapest"."""
    parsed = _TEXT_TYPES.get((messagetype or "SMS:TEXT").strip().upper())
    if parsed is None:
        raise ValidationError("bad_messagetype", f"unsupported message type: {messagetype}",
                              "messagetype")
    return parsed


# Other message types (binary, WAP push) register a builder here: exact messagetype name
# (upper case) -> function(submission) -> (parts, msg_class, encoding).
PAYLOAD_BUILDERS: dict[str, object] = {}

# The message types every dialect may ask for (http-api.md §2.7 minimum set). Text types
# are matched by `parse_text_type`; these are the others.
MAX_BINARY_OCTETS = 140


def _text_parts(sub: Submission) -> tuple[tuple[PartSpec, ...], int | None, str]:
    encoding, msg_class = parse_text_type(sub.messagetype)
    if not sub.text:
        raise ValidationError("empty_text", "message text is empty", "messagedata")
    coding = None
    if sub.smpp_params and "data_coding" in sub.smpp_params:
        coding = _dynamic_coding(sub.smpp_params)
        encoding = _text_coding(coding, encoding)
        msg_class = _coding_class(coding, msg_class)
        _check_octet_alphabet(coding, sub.text)
    try:
        encoding, texts, _, _ = gsm_segment.split_text(sub.text, encoding)
    except ValueError as exc:
        under = f" with data_coding {coding}" if coding is not None else ""
        raise ValidationError("bad_text", f"text cannot be encoded{under}: {exc}",
                              "messagedata") from None
    total = len(texts)
    if total > MAX_PARTS:
        raise ValidationError("text_too_long", f"text needs {total} SMS; at most {MAX_PARTS} "
                              "are allowed", "messagedata")
    parts = tuple([PartSpec(seq=seq, total=total, encoding=encoding, text=text)
                   for seq, text in enumerate(texts, 1)])
    return parts, msg_class, encoding


def _hex_field(root, name: str, *, required: bool = False) -> bytes:
    node = root.find(name)
    text = node.text or "" if node is not None else ""
    if not text.strip():
        if required:
            raise ValidationError("bad_binary", f"<{name}> is missing in the SMS:BINARY:XML "
                                  "document", "messagedata")
        return b""
    return _octets(text, f"<{name}> is not hexadecimal")


def _octets(text: str, refusal: str) -> bytes:
    """Hex digits (whitespace and case ignored, gsm's own reader) or the refusal."""
    try:
        return octets_from_hex(text)
    except gsm.PduError:
        raise ValidationError("bad_binary", refusal, "messagedata") from None


def _xml_root(text: str, what: str):
    if not (text or "").strip():
        raise ValidationError("empty_text", f"{what} document is empty", "messagedata")
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise ValidationError("bad_binary", "DTDs are not accepted in message documents",
                              "messagedata")
    from xml.etree import ElementTree      # only XML message types need it (RSS)
    try:
        return ElementTree.fromstring(text.strip())
    except ElementTree.ParseError as exc:
        raise ValidationError("bad_binary", f"{what} is not well-formed XML: {exc}",
                              "messagedata") from None


def _binary_xml_parts(sub: Submission):
    """`<sms><pid>HH</pid><dcs>HH</dcs><udh>HEX</udh><ud>HEX</ud></sms>`: one 8-bit SMS."""
    root = _xml_root(sub.text, "SMS:BINARY:XML")
    if root.tag.lower() != "sms":
        raise ValidationError("bad_binary", "SMS:BINARY:XML must be an <sms> document",
                              "messagedata")
    ud = _hex_field(root, "ud", required=True)
    udh = _header_ies(_without_udhl(_hex_field(root, "udh")))
    pid = _hex_field(root, "pid")
    dcs = _hex_field(root, "dcs")
    if len(pid) > 1 or len(dcs) > 1:
        raise ValidationError("bad_binary", "<pid> and <dcs> are one octet each", "messagedata")
    dcs_value = dcs[0] if dcs else None
    _check_user_data(ud, udh, dcs_value)
    # TS 23.038: only the general groups (bit 4) and group F carry a class; C, D, E
    # (message waiting) and the reserved groups have none
    msg_class = gsm_dcs.parse_dcs(dcs_value).msg_class if dcs_value is not None else None
    part = PartSpec(seq=1, total=1, encoding="8bit", data=ud, udh=udh,
                    pid=pid[0] if pid else 0, dcs=dcs_value)
    return (part,), msg_class, "8bit"


def _binary_hex_parts(sub: Submission):
    """SMS:BINARY: `messagedata` is the user data in hex (what receivemessage shows for a
    binary SMS without a header), sent as one 8-bit SMS (DCS 04). A header, PID or another
    DCS takes SMS:BINARY:XML. The type was refused as unsupported, though http-api.md §2.7
    lists it: a binary SMS read from the inbox could not be sent on as it was shown."""
    if not (sub.text or "").strip():
        raise ValidationError("empty_text", "SMS:BINARY needs the user data in hex",
                              "messagedata")
    data = _octets(sub.text, "an SMS:BINARY text must be hexadecimal octets (a header, PID"
                             " or DCS: SMS:BINARY:XML)")
    _check_user_data(data, b"", None)
    return (PartSpec(seq=1, total=1, encoding="8bit", data=data),), None, "8bit"


def _without_udhl(udh: bytes) -> bytes:
    """The header's IEs: <udh> may carry its UDHL octet or not. A first octet equal to the
    rest's length is a UDHL only when the rest is whole IEs: the port IE 05 04 dddd ssss
    written without UDHL starts with 05 = its length - 1 too, and lost its first octet
    (found by a helper: the phone got a broken header and no ports)."""
    if not udh or udh[0] != len(udh) - 1:
        return udh
    try:
        gsm_udh.parse_ies(udh[1:])
    except gsm.PduError:
        return udh
    return udh[1:]


def _header_ies(udh: bytes) -> bytes:
    """<udh> must be whole IEs: one whose length overruns it was accepted and charged, then
    failed at the modem ('extra UDH: ...') or reached the SMSC as a broken header."""
    try:
        gsm_udh.parse_ies(udh)
    except gsm.PduError as exc:
        raise ValidationError("bad_binary", f"SMS:BINARY:XML <udh> is not whole information "
                              f"elements: {exc}", "messagedata") from None
    return udh


def _check_user_data(ud: bytes, udh: bytes, dcs: int | None) -> None:
    """The part as the codec lays it out under its DCS, so what is accepted a modem can send
    (an odd UCS-2 payload was accepted, then refused by the modem with CMS 304)."""
    try:
        gsm_userdata.build_user_data("8bit", None, ud, udh, 0x04 if dcs is None else dcs)
    except TooLongError:
        raise ValidationError("text_too_long", f"binary SMS is limited to {MAX_BINARY_OCTETS} "
                              f"octets of UDH and data ({gsm_userdata.MAX_SEPTETS} septets "
                              "with a GSM 7-bit DCS)", "messagedata") from None
    except gsm.EncodingError as exc:
        raise ValidationError("bad_binary", f"SMS:BINARY:XML <ud> does not suit its <dcs>: "
                              f"{exc}", "messagedata") from None


def _dynamic_coding(smpp_params: dict) -> int | None:
    """The dynamic `data_coding` as the SMPP link reads it: None when it is not a number
    0-255, which the link ignores."""
    return dynamic_params(smpp_params).get("data_coding")


# SMPP 3.4 data_coding values for national character sets this gateway does not write
_SMPP_NATIONAL = {5: "JIS", 6: "Cyrillic", 7: "Latin/Hebrew", 9: "pictogram",
                  10: "ISO-2022-JP", 13: "extended Kanji JIS", 14: "KS C 5601"}


def _text_coding(number: int | None, asked: str | None) -> str | None:
    """How a text is split when Ozeki's dynamic `data_coding` names its alphabet on an SMPP
    link, so the octets written there are what the data_coding says and the part count and
    credits are those of that alphabet (data_coding 8 on a GSM-7 text was sent as septets
    labelled UCS-2). 0 (the SMSC's default alphabet), 1 (IA5) and 3 (Latin-1) write one
    octet per character: GSM 7-bit parts. A modem, which has no data_coding, sends the
    same parts."""
    if number is None:
        return asked
    if number in _SMPP_NATIONAL:
        raise ValidationError("bad_text", f"data_coding {number} ({_SMPP_NATIONAL[number]}) "
                              "is not a text coding this gateway writes; use 0, 1, 3 or 8",
                              "data_coding")
    coding = gsm_dcs.parse_dcs(number)
    if number in (1, 3):
        wanted = "gsm7"
    elif number == 2 or coding.encoding == "8bit":
        raise ValidationError("bad_text", f"data_coding {number} is 8-bit data, not text; "
                              "send the octets as SMS:BINARY:XML", "data_coding")
    elif coding.compressed or coding.reserved:
        raise ValidationError("bad_text", f"data_coding {number} is a compressed or reserved "
                              "coding this gateway does not write", "data_coding")
    else:
        wanted = coding.encoding
    if asked not in (None, wanted):
        raise ValidationError("bad_text", f"data_coding {number} is "
                              f"{_CODING_NAMES[wanted]}, the message type asks for "
                              f"{_CODING_NAMES[asked]}", "data_coding")
    return wanted


_CODING_NAMES = {"gsm7": "GSM 7-bit", "ucs2": "UCS-2"}


def _coding_class(number: int | None, asked: int | None) -> int | None:
    """The message class of a data_coding that is a TS 23.038 DCS (0x10 and up; below are
    SMPP's own codes, without classes): 24 (0x18) is flash UCS-2 on the SMPP link, so the
    message is flash on a modem too and stored as such (it went as a plain SMS there). A
    type naming another class is refused: the two routes would send different classes."""
    carried = gsm_dcs.parse_dcs(number).msg_class if number is not None and number >= 0x10 \
        else None
    if carried is None or asked == carried:
        return asked
    if asked is None:
        return carried
    raise ValidationError("bad_text", f"data_coding {number} is message class {carried}, the "
                          f"message type asks for class {asked}", "data_coding")

# the octet alphabets the SMPP link writes data_coding 1 and 3 in (text_alphabet); Python's
# codecs go by the same names
_OCTET_ALPHABET_NAMES = {"ascii": "IA5/ASCII", "latin1": "Latin-1"}


def _check_octet_alphabet(number: int | None, text: str) -> None:
    """IA5 and Latin-1 lack GSM 7-bit characters (€ and the Greek capitals; £, é, ñ in
    ASCII): the link wrote them as '?' after the message was accepted and charged."""
    codec = text_alphabet(number, "") if number is not None else ""
    if codec not in _OCTET_ALPHABET_NAMES:
        return
    name = _OCTET_ALPHABET_NAMES[codec]
    if _encodes(text, codec):
        return
    missing = sorted({ch for ch in text if not _encodes(ch, codec)})
    raise ValidationError("bad_text", f"text cannot be encoded with data_coding {number} "
                          f"({name}): {''.join(missing)!r}; send it without data_coding "
                          "or as SMS:TEXT:UCS2 with data_coding 8", "messagedata")


def _encodes(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _check_dynamic_coding(smpp_params: dict | None, parts) -> None:
    """Ozeki's dynamic `data_coding` replaces the DCS on an SMPP link: 8-bit data it names
    UCS-2 must be whole 16-bit units there too, or the SMSC gets half a character; data it
    names GSM 7-bit must be septet values, as SMS:BINARY:XML with <dcs>00 must."""
    if not smpp_params or "data_coding" not in smpp_params:
        return                      # every plain message: no exception on the hot path
    number = _dynamic_coding(smpp_params)
    if number is None:
        return
    if _is_septet_coding(number):
        _check_septet_data(number, parts)
    elif gsm_dcs.parse_dcs(number).encoding == "ucs2":
        _check_ucs2_data(number, parts)


def _is_septet_coding(number: int) -> bool:
    """SMPP 3.4 data_coding 0 (SMSC default) and 1 (IA5) are 7-bit; 2-15 are SMPP's own
    octet and national codings; 0x10 and up are TS 23.038 DCS values."""
    if number < 0x10:
        return number in (0, 1)
    coding = gsm_dcs.parse_dcs(number)
    return coding.encoding == "gsm7" and not (coding.compressed or coding.reserved)


def _check_septet_data(number: int, parts) -> None:
    for part in parts:
        if part.encoding != "8bit":
            continue
        wide = next((i for i, octet in enumerate(part.data) if octet > 0x7F), None)
        if wide is not None:
            raise ValidationError("bad_binary", f"data_coding {number} is GSM 7-bit, which "
                                  "needs septet values 00-7F, one per octet; octet "
                                  f"{wide + 1} is {part.data[wide]:02X}", "data_coding")


def _check_ucs2_data(number: int, parts) -> None:
    for part in parts:
        if part.encoding == "8bit" and len(part.data) % 2:
            raise ValidationError("bad_binary", f"data_coding {number} is UCS-2, which needs "
                                  f"an even number of data octets, not {len(part.data)}",
                                  "data_coding")


def _wap_parts(sub: Submission):
    """SMS:WAPPUSH (<si>) and SMS:WAPPUSH:SL (<sl>): WBXML over WDP ports 2948 <- 9200."""
    _xml_root(sub.text, "WAP push")          # well-formed and DTD-free before the codec
    try:
        payload = gsm.from_ozeki_xml(sub.text.strip())
        udh = gsm_udh.port_ie(gsm_wap.WDP_PUSH_PORT, gsm_wap.WDP_SOURCE_PORT)
        chunks = gsm_segment.split_binary(payload, len(udh))
    except gsm.EncodingError as exc:
        raise ValidationError("bad_binary", f"WAP push: {exc}", "messagedata") from None
    wanted_sl = sub.messagetype.upper() == "SMS:WAPPUSH:SL"
    is_sl = sub.text.lstrip().startswith("<sl")
    if wanted_sl != is_sl:
        raise ValidationError("bad_binary", "SMS:WAPPUSH takes an <si> document, "
                              "SMS:WAPPUSH:SL an <sl> document", "messagedata")
    if len(chunks) > MAX_PARTS:
        raise ValidationError("text_too_long", "WAP push document is too long", "messagedata")
    parts = tuple(PartSpec(seq=i + 1, total=len(chunks), encoding="8bit", data=c, udh=udh)
                  for i, c in enumerate(chunks))
    return parts, None, "8bit"


PAYLOAD_BUILDERS.update({
    "SMS:BINARY": _binary_hex_parts,
    "SMS:BINARY:XML": _binary_xml_parts,
    "SMS:WAPPUSH": _wap_parts,
    "SMS:WAPPUSH:SI": _wap_parts,
    "SMS:WAPPUSH:APPLICATION/VND.WAP.SIC": _wap_parts,
    "SMS:WAPPUSH:SL": _wap_parts,
})


def wap_si_document(url: str, text: str, action: str = "signal-medium") -> str:
    """The SMS:WAPPUSH document for a link and its display text (bulksms type 4)."""
    from xml.etree import ElementTree
    element = ElementTree.Element("indication", href=url, action=action)
    element.text = text
    root = ElementTree.Element("si")
    root.append(element)
    return ElementTree.tostring(root, encoding="unicode")


def _builder_for(messagetype: str):
    """The builder for a type `prepare` already stripped (and defaulted to SMS:TEXT)."""
    return PAYLOAD_BUILDERS.get(messagetype.upper(), _text_parts)


def _copy(sub: Submission, **changes) -> Submission:
    """`dataclasses.replace` without its per-call field walk and frozen `__init__` (this
    runs once per accepted message); the fields are plain values, none derived."""
    copy = object.__new__(Submission)
    copy.__dict__.update(sub.__dict__, **changes)
    return copy


def prepare(sub: Submission, **policy) -> NewMessage:
    """Validate a submission and split it into parts. Raises ValidationError.

    `sub` is not changed: the message carries a copy with the canonical recipient, sender
    and type, and the `policy` values `intake.prepare` decided (the effective validity).
    Only `intake.prepare` adds the appliance's policy; tests and benches that fill a store
    directly call this."""
    messagetype = (sub.messagetype or "SMS:TEXT").strip()
    effective = _copy(sub, recipient=normalize_recipient(sub.recipient),
                      originator=check_originator(sub.originator),
                      messagetype=messagetype, **policy)
    parts, msg_class, encoding = _builder_for(messagetype)(effective)
    _check_dynamic_coding(effective.smpp_params, parts)
    return NewMessage(id=sub.message_id or new_message_id(), submission=effective,
                      parts=parts, msg_class=msg_class, encoding=encoding)
