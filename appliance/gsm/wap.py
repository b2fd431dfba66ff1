"""WAP push over SMS, as Ozeki's SMS:WAPPUSH sends it: a Service Indication (WAP-167)
or Service Loading (WAP-168) document in WBXML, inside a connectionless WSP push, carried
by WDP over SMS with 16-bit application ports 2948 (push) <- 9200 (WAP connectionless).
"""

from __future__ import annotations

from .errors import EncodingError
from .submit import encode_submit_binary
from .udh import port_ie

WDP_PUSH_PORT = 2948
WDP_SOURCE_PORT = 9200

_WSP_PUSH = 0x06
_CONTENT_TYPE_SIC = 0xAE   # application/vnd.wap.sic, well-known 0x2E
_CONTENT_TYPE_SLC = 0xB0   # application/vnd.wap.slc, well-known 0x30

# WBXML 1.2 header: version, public id (05 SI 1.0 / 06 SL 1.0), charset UTF-8, no strtbl.
_WBXML_SI = bytes((0x02, 0x05, 0x6A, 0x00))
_WBXML_SL = bytes((0x02, 0x06, 0x6A, 0x00))
_END, _STR_I = 0x01, 0x03

_SI_ACTIONS = {"signal-none": 0x05, "signal-low": 0x06, "signal-medium": 0x07,
               "signal-high": 0x08, "signal-delete": 0x09, "delete": 0x09}
# Ozeki's SL spellings first, then the WAP-168 names.
_SL_ACTIONS = {"signal-low": 0x05, "signal-high": 0x06, "signal-cache": 0x07,
               "execute-low": 0x05, "execute-high": 0x06, "cache": 0x07}
# href attribute-start tokens by the URL prefix they stand for (longest first).
_SI_HREF = (("https://www.", 0x0F), ("http://www.", 0x0D), ("https://", 0x0E),
            ("http://", 0x0C), ("", 0x0B))
_SL_HREF = (("https://www.", 0x0C), ("http://www.", 0x0A), ("https://", 0x0B),
            ("http://", 0x09), ("", 0x08))


def _inline(text: str) -> bytes:
    if "\x00" in text:
        raise EncodingError("WAP push strings cannot contain NUL")
    return bytes((_STR_I,)) + text.encode("utf-8") + b"\x00"


def _href(url: str, tokens) -> bytes:
    if not url:
        raise EncodingError("WAP push needs a URL")
    prefix, token = next((p, t) for p, t in tokens if url.startswith(p))
    rest = url[len(prefix):]
    return bytes((token,)) + (_inline(rest) if rest else b"")


def _action(action: str, table: dict[str, int], kind: str) -> int:
    try:
        return table[action]
    except KeyError:
        raise EncodingError(f"{kind} action must be one of {', '.join(table)}, "
                            f"not {action!r}") from None


def _wsp_push(content_type: int, body: bytes, transaction_id: int) -> bytes:
    """Connectionless WSP push: TID, PDU type, headers length, content type (no headers)."""
    return bytes((transaction_id & 0xFF, _WSP_PUSH, 0x01, content_type)) + body


def service_indication(url: str, text: str = "", *, action: str = "signal-medium",
                       transaction_id: int = 1) -> bytes:
    """<si><indication href=url action=…>text</indication></si> as a WSP push."""
    indication = (bytes((0xC6,)) + _href(url, _SI_HREF)   # indication, attributes + content
                  + bytes((_action(action, _SI_ACTIONS, "SI"), _END))
                  + _inline(text) + bytes((_END,)))
    body = _WBXML_SI + bytes((0x45,)) + indication + bytes((_END,))   # si, content only
    return _wsp_push(_CONTENT_TYPE_SIC, body, transaction_id)


def service_loading(url: str, *, action: str = "execute-low", transaction_id: int = 1) -> bytes:
    """<sl href=url action=…/> as a WSP push."""
    body = (_WBXML_SL + bytes((0x85,)) + _href(url, _SL_HREF)   # sl, attributes only
            + bytes((_action(action, _SL_ACTIONS, "SL"), _END)))
    return _wsp_push(_CONTENT_TYPE_SLC, body, transaction_id)


def from_ozeki_xml(document: str) -> bytes:
    """The push payload for Ozeki's SMS:WAPPUSH message text: an <si> or an <sl>."""
    from xml.etree import ElementTree      # imported by the first WAP push, not at start
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as exc:
        raise EncodingError(f"WAP push XML is not well-formed: {exc}") from None
    if root.tag == "sl":
        return service_loading(root.get("href", ""), action=root.get("action", "execute-low"))
    indication = root.find("indication") if root.tag == "si" else None
    if indication is None:
        raise EncodingError("WAP push XML must be <si><indication …/></si> or <sl …/>")
    return service_indication(indication.get("href", ""), (indication.text or "").strip(),
                              action=indication.get("action", "signal-medium"))


def encode_wap_push(number: str, payload: bytes, **options) -> list[str]:
    """SMS-SUBMIT PDUs carrying a push payload over WDP (ports 2948 <- 9200)."""
    return encode_submit_binary(number, payload, udh=port_ie(WDP_PUSH_PORT, WDP_SOURCE_PORT),
                                **options)
