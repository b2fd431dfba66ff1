"""The seed's `$keyword` template fields for one part, and filling a template. Pure.

HTTP Client URLs take `$recipient $originator $messagedata $messageid` and, for binary sends,
`$udhHEX $udHEX $dcsHEX $pidHEX` (plus `$udhudHEX $udl $dcsDEC $pidDEC $tpdrreqINT
$tpdrreqBOOL $messagetype`); SMTP templates take `$messagetext` (the seed's name) as well.
"""

from __future__ import annotations

import html
import re
import urllib.parse

from appliance.gsm import udh
from appliance.model import OutPart
from appliance.uplink.codec import data_coding, encode_body

_KEYWORD = re.compile(r"\$([A-Za-z]+)")


def part_fields(part: OutPart, *, text: str | None = None, message_id: str = "",
                concat: bool = True, conn=None) -> dict[str, str]:
    """Every template field of `part`. `text` replaces the segment's text (a whole message
    sent once); `concat` adds the concatenation IE to `$udhHEX` for a segment; `conn`
    gives PHONENUMBER (an originator for messages without one) and DELIVERYREPORT."""
    body = encode_body(part.encoding, part.text, part.data)
    header = part_header(part) if concat else bytes(part.udh)
    udh_octets = bytes((len(header),)) + header if header else b""
    dcs = data_coding(part)
    shown = text if text is not None else (part.text if part.text is not None
                                          else part.data.hex().upper())
    originator = part.originator or getattr(conn, "phonenumber", "")
    report = part.want_report and getattr(conn, "deliveryreport", True)
    return {
        "recipient": part.recipient, "originator": originator,
        "messagedata": shown, "messagetext": shown, "messagetype": part.messagetype,
        "messageid": message_id or part.message_id,
        "udhHEX": udh_octets.hex().upper(), "udHEX": body.hex().upper(),
        "udhudHEX": (udh_octets + body).hex().upper(), "udl": str(len(body)),
        "dcsHEX": f"{dcs:02X}", "dcsDEC": str(dcs),
        "pidHEX": f"{part.pid:02X}", "pidDEC": str(part.pid),
        "tpdrreqINT": "1" if report else "0",
        "tpdrreqBOOL": "true" if report else "false",
    }


def part_header(part: OutPart) -> bytes:
    """The part's UDH information elements: concatenation (when split), then its own."""
    concat = None
    if part.total > 1:
        concat = (part.concat_ref, part.total, part.seq, 16 if part.concat_16bit else 8)
    return udh.build_header(concat, part.udh)


def fill(template: str, fields: dict[str, str], escape=lambda value: value) -> str:
    """Replace each `$keyword` the fields know (longest name wins: `$udhudHEX` before
    `$udhHEX`); unknown `$words` stay as they are, so a literal `$` survives."""
    names = sorted(fields, key=len, reverse=True)

    def one(match: re.Match) -> str:
        word = match.group(1)
        for name in names:
            if word.startswith(name):
                return escape(fields[name]) + word[len(name):]
        return match.group(0)
    return _KEYWORD.sub(one, template)


# NOURLENCODING keeps every printable ASCII character as it is (`&`, `+`, `%`: what the
# provider asked for); a space, a control character or non-ASCII text cannot travel in an
# HTTP request line at all (http.client refuses it, and the part was retried for ever).
_RAW_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def codec(charset: str) -> str:
    """ENCODINGCHARSET as a Python codec name ("" and the seed's "default": UTF-8)."""
    name = (charset or "").strip()
    return "utf-8" if name.lower() in ("", "default") else name


def url_escaper(charset: str, raw: bool, xml: bool):
    """How a value goes into a URL: percent-encoded in `charset` unless NOURLENCODING (then
    only what a request line cannot carry), after XML escaping when USEXMLENCODING."""
    charset = codec(charset)

    def escape(value: str) -> str:
        if xml:
            value = html.escape(value, quote=True)
        # strict: a character ENCODINGCHARSET cannot hold fails the message (UnicodeError,
        # a ValueError), as the SMTP connection does; it was sent as "?" and "submitted"
        return urllib.parse.quote(value, safe=_RAW_SAFE if raw else "", encoding=charset,
                                  errors="strict")
    return escape


def compact_url(template: str) -> str:
    """The seed's own example has spaces around `&`; a URL never holds a bare space."""
    return "".join(template.split())
