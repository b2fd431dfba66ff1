"""Request parameters the way old HTTP SMS clients send them.

Names are case-insensitive (`messageType`, `MessageData`), `recepient` is accepted for
`recipient`, values are UTF-8 unless `_charset_` names another charset, and GET and POST
form fields are merged (POST wins).
"""

from __future__ import annotations

import codecs

import bottle

ALIASES = {"recepient": "recipient"}
# Message texts keep bytes that are not valid UTF-8 as lone surrogates (surrogateescape), so
# intake.prepare refuses them with each dialect's invalid-message code instead of sending
# U+FFFD; every other parameter is decoded with U+FFFD for such bytes.
TEXT_PARAMS = frozenset({"messagedata", "message", "text"})
MAX_PARAM_BYTES = 64 * 1024


class ParamError(ValueError):
    pass


def read_params(request: bottle.BaseRequest) -> dict[str, str]:
    """All query and form parameters, lower-case names, decoded text values."""
    raw = list(request.query.allitems()) + list(request.forms.allitems())
    charset = _charset(raw)
    params: dict[str, str] = {}
    for name, value in raw:
        key = name.strip().lower()
        key = ALIASES.get(key, key)
        params[key] = _decode(value, charset, keep_invalid=key in TEXT_PARAMS)
    return params


def peek_params(request: bottle.BaseRequest) -> dict[str, str]:
    """Names and undecoded values of query and form fields, to pick a dialect before the
    values are decoded (a bad `_charset_` must still be answered in the right dialect)."""
    raw = list(request.query.allitems()) + list(request.forms.allitems())
    return {name.strip().lower(): value for name, value in raw}


def _charset(raw) -> str:
    for name, value in raw:
        if name.lower() == "_charset_" and value.strip():
            try:
                name = codecs.lookup(value.strip()).name
                b"".decode(name)        # a text encoding, not a bytes/str transform
                return name
            except (LookupError, ValueError):
                raise ParamError(f"unknown _charset_: {value.strip()[:40]!r}") from None
    return "utf-8"


def _decode(value: str, charset: str, *, keep_invalid: bool = False) -> str:
    # bottle hands out WSGI 'native strings': the raw bytes as latin-1.
    data = value.encode("latin-1", errors="replace")
    if len(data) > MAX_PARAM_BYTES:
        raise ParamError("a parameter is longer than 64 KiB")
    return data.decode(charset, errors="surrogateescape" if keep_invalid else "replace")


def client_address(request: bottle.BaseRequest) -> str:
    return request.environ.get("REMOTE_ADDR", "") or ""
