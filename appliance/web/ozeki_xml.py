"""Rendering of the Ozeki NG XML envelope (http-api.md §1.2) and its error answer (§1.3)."""

from __future__ import annotations

import re

from appliance.timefmt import ozeki_time  # noqa: F401  (re-exported for the dialects)

# Characters XML 1.0 cannot carry at all, even escaped: dropped from every echoed value.
_NOT_XML = re.compile("[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def clean(text: str) -> str:
    return _NOT_XML.sub("", text)


# Anything escape() would change: a character XML cannot carry, or one of & < >.
_NEEDS_ESCAPE = re.compile("[&<>]|" + _NOT_XML.pattern)


def escape(text: str) -> str:
    """Escape for XML text, dropping characters XML cannot represent."""
    text = str(text)
    if _NEEDS_ESCAPE.search(text) is None:     # the common value: one scan, no copies
        return text
    return escape_markup(clean(text))


def quoteattr(text: str) -> str:
    """A quoted attribute value, as xml.sax.saxutils.quoteattr writes it (that module would
    pull in urllib.request and half a MiB of RSS for two replace chains)."""
    value = escape_markup(clean(str(text)))
    value = value.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace('"', "&quot;") + '"'


def escape_markup(text: str) -> str:
    """& < > as entities (xml.sax.saxutils.escape)."""
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
DOCTYPE_SMSAPI = ('<!DOCTYPE smsapi PUBLIC "-//OZEKI//DTD XML 1.0//EN" '
                  '"http://www.ozekisms.com/DTD/smsapi.xml">\n')
DOCTYPE_RESPONSE = ('<!DOCTYPE response PUBLIC "-//OZEKI//DTD XML 1.0//EN" '
                    '"http://www.ozekisms.com/DTD/response.xml">\n')

# Request-level error codes (Ozeki publishes none; ours, documented in docs/api.md).
E_UNKNOWN_ACTION = 1
E_MISSING_PARAMETER = 2
E_INVALID_PARAMETER = 3
E_AUTH_FAILED = 4
E_ADMIN_ONLY = 5
E_THROTTLED = 6
E_NOT_FOUND = 7
E_INTERNAL = 8
E_FORBIDDEN_ADDRESS = 9
E_USER_DISABLED = 10
E_UNSUPPORTED = 11


def sent_at(m: dict) -> float | None:
    """The one sent time of a message (a row, or a callback event carrying its columns) that
    receivemessage's and getmessagebyid's `senttime` and the callbacks' `$submitdate` give.
    Received: its sender's network's (the SCTS), else its arrival (SMPP carries no SCTS);
    sent: when the network took it, else when accepted (clients strptime an empty date)."""
    if m.get("direction") == "in":
        return m.get("sent_time") or m["created"]
    return m["submitted_at"] or m["created"]


def received_at(m: dict) -> float | None:
    """`receivedtime`: a received SMS's arrival; a sent one's delivery to the handset, none
    when it was not delivered (a failure's time is no receive time; the report's
    `$deliveredtohandsetdate` is empty for it too)."""
    if m["direction"] == "in":
        return m["created"]
    return m["done_at"] if m["state"] == "delivered" else None


def element(name: str, value=None, **attrs) -> str:
    """`<name attr="..">value</name>`, or `<name />` when value is None or empty."""
    attr = "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items()) if attrs else ""
    if value is None or value == "":
        return f"<{name}{attr} />"
    return f"<{name}{attr}>{escape(value)}</{name}>"


def elements(*pairs: tuple[str, object]) -> str:
    """`element(name, value)` of each (name, value) pair, each on a line of its own. The
    values are scanned for anything to escape once, all together: an answer's values
    (codes, ids, numbers, most texts) usually hold nothing to escape."""
    texts = ["" if value is None else str(value) for _, value in pairs]
    # the pattern matches one character at a time, so joining the values adds no match
    if _NEEDS_ESCAPE.search("".join(texts)) is not None:
        return "".join([element(name, value) + "\n" for name, value in pairs])
    return "".join([f"<{name}>{text}</{name}>\n" if text else f"<{name} />\n"
                    for (name, _), text in zip(pairs, texts)])


def envelope(action: str, data: str, *, doctype: str = DOCTYPE_SMSAPI) -> str:
    return envelope_of(action, [data], doctype=doctype)


def envelope_of(action: str, pieces: list[str], *, doctype: str = DOCTYPE_SMSAPI) -> str:
    """`envelope(action, "".join(pieces))` in one join: a 20,000-message batch's answer is
    8 MB, and the joined data and the envelope around it were two copies of it at once."""
    head = f"{HEADER}{doctype}<response>\n<action>{escape(action)}</action>\n<data>\n"
    pieces.insert(0, head)
    pieces.append("</data>\n</response>\n")
    return "".join(pieces)


def error(code: int, message: str) -> str:
    data = f"{element('errorcode', code)}\n{element('errormessage', message)}\n"
    return envelope("error", data)
