"""Parts to submit_sm fields, deliver_sm fields to inbound fragments. Pure: plain dicts in
and out, so smpplib stays in smpp.py. Text coding comes from appliance.gsm only.

- GSM 7-bit goes out unpacked (one septet per octet), data_coding 0: the SMSC packs it.
- UCS-2 is data_coding 8, 8-bit data 4; a message class (flash = class 0) gives 0x10|...
  (0x10 for GSM 7-bit flash, 0x18 for UCS-2 flash).
- Long messages: a concatenation UDH (esm_class UDHI 0x40) by default, SAR TLVs with
  `usesar`, or the whole text once in message_payload with `usetlvmessagepayload`.
- Ozeki dynamic SMPP parameters (http-api.md §2.2) override the computed fields; a
  data_coding 0/4/8 keeps the message class (CLASS0 with data_coding 8 goes as 0x18); an
  esm_class keeps the UDHI bit (0x40) of the body this gateway built.
- `defaultalphabet` (Kannel's `alt-charset`): what text in the SMSC's default alphabet
  (data_coding 0, and the class-bearing codes that name it) looks like on this link, both
  ways: GSM 03.38 septets (the default), ASCII/IA5 or Latin-1 octets. Characters the SMSC's
  alphabet lacks (Greek capitals, the euro sign in Latin-1) go out as `?`.
"""

from __future__ import annotations

import time

from appliance.config import SMPP_ALPHABETS, SMPPConfig
from appliance.gsm import alphabet, ucs2, udh
from appliance.gsm.dcs import build_dcs, parse_dcs
from appliance.model import InboundFragment, OutPart

ESM_UDHI = 0x40
DYNAMIC_PARAMS = ("source_addr_ton", "source_addr_npi", "dest_addr_ton", "dest_addr_npi",
                  "esm_class", "data_coding")


# --- outbound -------------------------------------------------------------------------


def alphabet_of(conn: SMPPConfig) -> str:
    """The connection's default alphabet: "gsm", "ascii" or "latin1"."""
    return SMPP_ALPHABETS.get(conn.defaultalphabet.lower(), "gsm")


def text_alphabet(dcs: int, default: str) -> str:
    """How text with this data_coding is written on the link."""
    if dcs == 1:                                   # IA5 (CCITT T.50) = ASCII
        return "ascii"
    if dcs == 3:                                   # Latin-1
        return "latin1"
    return default


def encode_body(encoding: str, text: str | None, data: bytes = b"",
                text_alpha: str = "gsm") -> bytes:
    if encoding == "gsm7":
        return encode_default_text(text or "", text_alpha)
    if encoding == "ucs2":
        return ucs2.encode_ucs2(text or "")
    return bytes(data)


# character -> its unpacked septet(s) as one latin-1 character each (extension: ESC, code)
_SEPTETS = {**{ord(ch): chr(code) for code, ch in enumerate(alphabet.DEFAULT_TABLE)
               if code != alphabet.ESC},
            **{ord(ch): chr(alphabet.ESC) + chr(code)
               for code, ch in alphabet.EXTENSION_TABLE.items()}}


def encode_default_text(text: str, alpha: str) -> bytes:
    """Text for a default-alphabet data_coding: unpacked septets, or ASCII/Latin-1 octets."""
    if alpha == "gsm":
        if alphabet.is_gsm7(text):      # one C-level pass each, not a Python step per char
            return text.translate(_SEPTETS).encode("latin-1")
        return bytes(alphabet.to_septets(text))     # raises, naming the characters
    return text.encode("ascii" if alpha == "ascii" else "latin-1", errors="replace")


def data_coding(part: OutPart) -> int:
    if part.dcs is not None:
        return part.dcs
    return build_dcs(part.encoding if part.encoding in ("gsm7", "ucs2") else "8bit",
                     part.msg_class)


def source_address(originator: str, conn: SMPPConfig) -> tuple[str, int, int]:
    """(source_addr, ton, npi): alphanumeric 5/0, +international 1/1, other digits 0/1."""
    addr = originator or ""
    if addr.startswith("+"):
        ton, npi, addr = 1, 1, addr[1:]
    elif addr and not addr.isdigit():
        ton, npi = 5, 0
    else:
        ton, npi = 0, 1
    if conn.sourceaddrton >= 0:
        ton = conn.sourceaddrton
    if conn.sourceaddrnpi >= 0:
        npi = conn.sourceaddrnpi
    return addr, ton, npi


_last_validity: tuple[int, str] = (-1, "")    # a backlog's parts share their second


def validity(valid_until: float | None) -> str:
    """SMPP absolute time in UTC (`YYMMDDhhmmss000+`), or '' for the SMSC default."""
    global _last_validity
    if valid_until is None:
        return ""
    second = int(valid_until)
    last = _last_validity                 # one tuple, swapped whole: safe across channels
    if last[0] == second:
        return last[1]
    text = time.strftime("%y%m%d%H%M%S", time.gmtime(second)) + "000+"
    _last_validity = (second, text)
    return text


def relative_validity(seconds: float) -> str:
    """SMPP relative time (`YYMMDDhhmmss000R`, SMPP 3.4 section 7.1.1.2): the time left, so
    the SMSC counts it on its own clock. Months of 30 days; at least a minute."""
    minutes, secs = divmod(max(60, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    months, days = divmod(days, 30)
    years, months = divmod(months, 12)
    return f"{min(years, 99):02d}{months:02d}{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"


def submit_fields(part: OutPart, conn: SMPPConfig, *, whole_text: str | None = None,
                  relative_from: float | None = None) -> dict:
    """The submit_sm fields for one part. `whole_text` (message_payload mode) is the
    message's complete text, sent once instead of this part's segment. `relative_from`
    (our wall time, when our clock is not synchronized): the validity goes as the time
    left, not as an absolute time our clock may have wrong."""
    source, ston, snpi = source_address(part.originator, conn)
    fields = {
        "service_type": "",
        "source_addr_ton": ston, "source_addr_npi": snpi, "source_addr": source,
        "dest_addr_ton": conn.destaddrton, "dest_addr_npi": conn.destaddrnpi,
        "destination_addr": part.recipient.lstrip("+"),
        "esm_class": 0,
        "protocol_id": part.pid,
        "registered_delivery": 1 if (part.want_report and conn.deliveryreport) else 0,
        "validity_period": validity(part.valid_until) if relative_from is None
        or part.valid_until is None else relative_validity(part.valid_until - relative_from),
        "data_coding": data_coding(part),
    }
    dynamic = dynamic_params(part.smpp_params)
    alpha = text_alphabet(dynamic.get("data_coding", fields["data_coding"]), alphabet_of(conn))
    body = _body_fields(part, conn, whole_text, alpha)
    fields.update(body)
    fields.update(dynamic)
    if "data_coding" in dynamic:
        fields["data_coding"] = _with_class(dynamic["data_coding"], part)
    if "esm_class" in dynamic:
        fields["esm_class"] = _with_udhi(dynamic["esm_class"], body)
    return fields


def _with_udhi(esm_class: int, body: dict) -> int:
    """A dynamic esm_class sets the messaging mode and type; its UDHI bit says whether
    short_message starts with a header, which only the body knows. esm_class=0 on a long
    text cleared it, so the phone showed each part's concat header as text; 64 on a text
    without one made the SMSC read its first character as a header length."""
    return (esm_class & ~ESM_UDHI) | (body.get("esm_class", 0) & ESM_UDHI)


def _with_class(coding: int, part: OutPart) -> int:
    """A dynamic data_coding that names only the alphabet (0, 4, 8) keeps the class the
    message type asked for, as the DCS does without it (SMS:TEXT:CLASS0 with data_coding
    8 went out as 8, not flash 0x18). An explicit <dcs>, or a data_coding that is a DCS
    of its own (0x10..0xFF) or IA5/Latin-1 (no TS 23.038 class bits), is sent as it is."""
    if coding not in (0, 4, 8) or part.msg_class is None or part.dcs is not None:
        return coding
    return 0x10 | coding | part.msg_class


def _body_fields(part: OutPart, conn: SMPPConfig, whole_text: str | None, alpha: str) -> dict:
    if whole_text is not None:
        body = encode_body(part.encoding, whole_text, part.data, alpha)
        return {"short_message": b"", "message_payload": body}
    body = encode_body(part.encoding, part.text, part.data, alpha)
    concat = None
    if part.total > 1:
        concat = (part.concat_ref, part.total, part.seq, 16 if part.concat_16bit else 8)
    if conn.usesar and concat:
        extra = {"sar_msg_ref_num": part.concat_ref, "sar_total_segments": part.total,
                 "sar_segment_seqnum": part.seq}
        if part.udh:
            return {"short_message": _with_udh(part.udh, body), "esm_class": ESM_UDHI, **extra}
        return {"short_message": body, **extra}
    header = udh.build_header(concat, part.udh)
    if header:
        return {"short_message": _with_udh(header, body), "esm_class": ESM_UDHI}
    return {"short_message": body}


def _with_udh(header: bytes, body: bytes) -> bytes:
    return bytes((len(header),)) + header + body


def dynamic_params(params: dict | None) -> dict:
    """Ozeki dynamic SMPP parameters as integers; others are ignored."""
    out = {}
    for key in DYNAMIC_PARAMS:
        value = (params or {}).get(key)
        if value is None or value == "":
            continue
        try:
            number = int(str(value).strip(), 0)
        except ValueError:
            continue
        if 0 <= number <= 255:
            out[key] = number
    return out


# --- inbound --------------------------------------------------------------------------


def decode_body(dcs: int, body: bytes, default_alphabet: str = "gsm"
                ) -> tuple[str, str | None, bytes, int | None, bytes]:
    """(encoding, text, data, msg_class, raw) of a deliver_sm body after its UDH.
    `default_alphabet` is the connection's: how the SMSC writes data_coding 0 text. `raw` is
    the text undecoded where parts are joined before decoding (UCS-2 octets, septet values;
    InboundFragment.raw), empty where it was read as Latin-1 or IA5."""
    if dcs in (1, 3):                              # IA5 / Latin-1: SMPP-only codings
        return "gsm7", body.decode("latin-1"), b"", None, b""
    coding = parse_dcs(dcs)
    if coding.encoding == "ucs2":
        octets = bytes(body[: len(body) // 2 * 2])
        return "ucs2", ucs2.decode_ucs2(octets), b"", coding.msg_class, octets
    if coding.encoding == "8bit" or dcs == 2:
        return "8bit", None, bytes(body), coding.msg_class, b""
    if default_alphabet != "gsm":                  # ASCII is Latin-1's first half
        return "gsm7", body.decode("latin-1"), b"", coding.msg_class, b""
    if any(b > 0x7F for b in body):                # not septets: read as Latin-1
        return "gsm7", body.decode("latin-1"), b"", coding.msg_class, b""
    return "gsm7", alphabet.from_septets(body), b"", coding.msg_class, bytes(body)


def inbound_fragment(connection: str, fields: dict, received_at: float,
                     default_alphabet: str = "gsm") -> InboundFragment:
    """An InboundFragment from deliver_sm fields (str/bytes/int values)."""
    raw = fields.get("short_message") or fields.get("message_payload") or b""
    concat, other_ies = None, b""
    if fields.get("esm_class", 0) & ESM_UDHI and raw:
        header, raw = raw[1:1 + raw[0]], raw[1 + raw[0]:]
        concat = udh.interpret(header).concat
        other_ies = udh.strip_concat(header)    # port addressing and the like, as modems keep
    elif fields.get("sar_total_segments"):
        concat = (int(fields["sar_msg_ref_num"] or 0), int(fields["sar_total_segments"]),
                  int(fields["sar_segment_seqnum"] or 1), 16)
    encoding, text, data, msg_class, joinable = decode_body(
        int(fields.get("data_coding") or 0), raw, default_alphabet)
    return InboundFragment(connection=connection, sender=_number(fields.get("source_addr"),
                                                                 fields.get("source_addr_ton")),
                           recipient=_number(fields.get("destination_addr"),
                                             fields.get("dest_addr_ton")),
                           encoding=encoding, text=text, data=data, concat=concat,
                           received_at=received_at, msg_class=msg_class, udh=other_ies,
                           raw=joinable)


def raw_fragment(connection: str, fields: dict, received_at: float) -> InboundFragment:
    """A deliver_sm that cannot be read (a UDH whose elements overrun it): kept whole as
    binary data, as a modem keeps a PDU it cannot decode, instead of lost or of taking
    the link down with it."""
    body = fields.get("short_message") or fields.get("message_payload") or b""
    return InboundFragment(connection=connection,
                           sender=_number(fields.get("source_addr"), fields.get("source_addr_ton")),
                           recipient=_number(fields.get("destination_addr"),
                                             fields.get("dest_addr_ton")),
                           encoding="8bit", text=None,
                           data=body if isinstance(body, bytes) else str(body).encode(),
                           received_at=received_at)


def _number(value, ton) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = (value or "").strip("\x00")
    return "+" + value if ton == 1 and value.isdigit() else value
