"""Request parameters the way old HTTP SMS clients send them.

Names are case-insensitive (`messageType`, `MessageData`), `recepient` is accepted for
`recipient`, values are UTF-8 unless `_charset_` names another charset, and GET and POST
form fields are merged (POST wins).
"""

from __future__ import annotations

import codecs
import functools
import re
from urllib.parse import unquote, unquote_to_bytes

import bottle

ALIASES = {"recepient": "recipient"}
# Message texts keep bytes that are not valid UTF-8 as lone surrogates (surrogateescape), so
# intake.prepare refuses them with each dialect's invalid-message code instead of sending
# U+FFFD; every other parameter is decoded with U+FFFD for such bytes.
TEXT_PARAMS = frozenset({"messagedata", "message", "text"})
MAX_PARAM_BYTES = 64 * 1024
# The most messages one request may carry, in every dialect (an Ozeki `messagecount` batch, a
# bulksms destination list, an Ozeki 10 JSON `messages` list).
MAX_BATCH_MESSAGES = 20_000
# Every field a batch of the largest size (20,000 messages, Ozeki's and bulksms's) can carry
# for each of its messages (recipient, text, type, sender, 5 options, 6 SMPP fields), and the
# request's own. A form parses to ~200 bytes of Python objects per field, so without a bound
# one 8 MiB POST of `a=&a=&...` (2.8 million fields) took the daemon to 629 MiB before any
# login (measured), and the 32 MiB a batch may be to 2.4 GB: the OOM killer on any Pi.
MAX_FORM_FIELDS = 16 * MAX_BATCH_MESSAGES + 1_000


class ParamError(ValueError):
    pass


# Parsed once per request and kept on the WSGI environ (which lives exactly as long as the
# request): the /api router peeks at the names, then a dialect reads the values.
_RAW_KEY = "appliance.params.raw"
_DECODED_KEY = "appliance.params"


def read_params(request: bottle.BaseRequest) -> dict[str, str]:
    """All query and form parameters, lower-case names, decoded text values. A second call
    for the same request answers a copy of the first one's result."""
    environ = request.environ
    cached = environ.get(_DECODED_KEY)
    if cached is not None:
        return dict(cached)
    raw = _raw_items(request)
    charset = _charset(raw)
    params: dict[str, str] = {}
    for name, value in raw:
        key, base = _canonical(name)
        params[key] = _decode(value, charset, keep_invalid=base in TEXT_PARAMS)
    environ[_DECODED_KEY] = params
    return dict(params)


_DIGITS = "0123456789"


def _canonical(key: str) -> tuple[str, str]:
    """The name's alias resolved, a batch's index kept (`recepient0` -> `recipient0`), and
    the name without its index (`recipient`)."""
    base = key.rstrip(_DIGITS)
    alias = ALIASES.get(base)
    return (alias + key[len(base):], alias) if alias else (key, base)


def peek_params(request: bottle.BaseRequest) -> dict[str, str]:
    """Names and undecoded values of query and form fields, to pick a dialect before the
    values are decoded (a bad `_charset_` must still be answered in the right dialect). A
    body that cannot be read leaves the query's fields; `read_params` raises for it."""
    return dict(_readable_items(request))


def _raw_items(request: bottle.BaseRequest) -> list[tuple[str, str]]:
    """Query fields, then form fields (bottle's native strings), parsed once per request;
    names stripped and lower-cased here, once, for every reader. A request without a body
    has no form fields: bottle's body machinery is skipped."""
    environ = request.environ
    raw = environ.get(_RAW_KEY)
    if raw is None:
        raw = _query_items(environ.get("QUERY_STRING", ""))
        if environ.get("CONTENT_LENGTH") != "0" and not _json_body(request):
            raw += _form_items(request)
        raw = _normalized(raw)
        environ[_RAW_KEY] = raw
    return raw


def _normalized(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Names as every reader compares them: case-insensitive, spaces around them ignored.
    A name already so keeps its pair (most do): a new pair and name for each of a large
    batch's 40,000 fields were 5 MB of its peak memory."""
    return [item if (name := item[0]) == (key := name.strip().lower()) else (key, item[1])
            for item in items]


def _json_body(request: bottle.BaseRequest) -> bool:
    """A JSON body (the Ozeki 10 JSON API's) is not a form: read as one, a text holding
    `&action=confirm` switched the request to another action, and a batch with an `=`
    anywhere became one "parameter" over 64 KiB that refused the whole batch."""
    if "json" in request.environ.get("CONTENT_TYPE", "").lower():
        return True
    try:
        body = request.body
        start = body.read(64).lstrip()
        body.seek(0)
    except (OSError, ValueError):
        return False
    return start[:1] in (b"{", b"[")


def _form_items(request: bottle.BaseRequest) -> list[tuple[str, str]]:
    """The body's fields. A body bottle cannot read (a multipart form cut short) is the
    request's error, answered in its dialect's format: bottle's own plain-text 400 reached
    clients that read only their dialect's answers."""
    _refuse_field_flood(request)
    try:
        if not _multipart(request):
            return _query_items(_urlencoded_body(request))
        return request.forms.allitems()
    except bottle.HTTPError as exc:
        message = str(exc.body or "malformed body").removeprefix("MultipartError: ")
        raise ParamError(f"the request body cannot be read: {message}"[:200]) from None


def _multipart(request: bottle.BaseRequest) -> bool:
    """bottle's test: every body that is not multipart is read as urlencoded."""
    content_type = request.environ.get("CONTENT_TYPE", "").split(";", 1)[0]
    return content_type.strip().lower().startswith("multipart/")


def _urlencoded_body(request: bottle.BaseRequest) -> str:
    """The body as bottle's `request.forms` reads it (a native latin-1 string, 413 past
    MEMFILE_MAX), for `_query_items`, which gives the same pairs in the same order without
    bottle's FormsDict: a 20,000-message batch built 160,000 objects (8.7 MB) there, beside
    the list read from it, and the request's peak memory held both."""
    limit = request.MEMFILE_MAX
    if (request.content_length or 0) > limit:
        raise bottle.HTTPError(413, "Request entity too large")
    body = request.body
    data = body.read(limit + 1)
    body.seek(0)
    if len(data) > limit:
        raise bottle.HTTPError(413, "Request entity too large")
    return data.decode("latin-1")


def checked_forms(request: bottle.BaseRequest) -> bottle.FormsDict:
    """`request.forms` for a handler that reads bottle's form itself (the dashboard's),
    refused as a flood like any dialect's (ParamError)."""
    _refuse_field_flood(request)
    return request.forms


def _refuse_field_flood(request: bottle.BaseRequest) -> None:
    """Counts a large body's fields before bottle parses them (MAX_FORM_FIELDS). A body
    shorter than two bytes a field cannot hold too many, so most are not looked at."""
    if (request.content_length or 0) < 2 * MAX_FORM_FIELDS:
        return
    body = request.body
    data = body.read()
    body.seek(0)
    # the header as sent: bottle's content_type is lower-cased, and a boundary is not
    boundary = _MULTIPART_BOUNDARY.search(request.environ.get("CONTENT_TYPE", ""))
    if boundary:
        fields = data.count(b"--" + boundary.group(1).encode("latin-1")) - 1
    else:
        fields = data.count(b"&") + 1
    if fields > MAX_FORM_FIELDS:
        raise ParamError(f"the request body holds {fields:,} fields; at most "
                         f"{MAX_FORM_FIELDS:,} are read")


_MULTIPART_BOUNDARY = re.compile(r'multipart/form-data.*?;\s*boundary="?([^";]+)"?', re.I)


def raw_value(request: bottle.BaseRequest, wanted: str) -> str:
    """A parameter's value without decoding (each byte one character), for an answer that
    must echo it when the request's parameters cannot be read (a bad `_charset_`, a body
    that cannot be read: then the query's)."""
    return next((value for name, value in _readable_items(request) if name == wanted), "")


def _readable_items(request: bottle.BaseRequest) -> list[tuple[str, str]]:
    """`_raw_items`, or only the query's when the body cannot be read."""
    try:
        return _raw_items(request)
    except ParamError:
        return _normalized(_query_items(request.environ.get("QUERY_STRING", "")))


def _query_items(query: str) -> list[tuple[str, str]]:
    """`request.query.allitems()` without building bottle's FormsDict: the same pairs
    (split, '+' as space, %-decoded to latin-1 native strings, empty pairs skipped), in the
    same order (grouped by name, names in the order they first appear)."""
    grouped: dict[str, list[str]] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        if "+" in pair:         # '+' is never '=': replaced before the split, as after it
            pair = pair.replace("+", " ")
        name, _, value = pair.partition("=")
        if "%" in name:
            name = _percent_decoded(name)
        if "%" in value:
            value = _percent_decoded(value)
        values = grouped.get(name)
        if values is None:
            grouped[name] = [value]
        else:
            values.append(value)
    return [(name, value) for name, values in grouped.items() for value in values]


def _percent_decoded(text: str) -> str:
    """`unquote(text, encoding="latin1")`, two to three times faster: a native string is
    latin-1, so its escapes can be decoded as bytes, one byte per character both ways (a
    '%' that starts no escape stays, as unquote leaves it)."""
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:      # not a native string (a test's URL): unquote keeps it
        return unquote(text, encoding="latin1")
    return unquote_to_bytes(data).decode("latin-1")


# Codecs Python has that no form is sent in: they read ASCII as something else (escapes,
# host names) or cannot replace what they cannot read.
_NOT_FORM_CHARSETS = {"idna", "unicode-escape", "raw-unicode-escape"}
_PRINTABLE_ASCII = bytes(range(32, 127))


def _charset(raw) -> str:
    for name, value in raw:
        if name == "_charset_" and value.strip():
            name = _form_charset(value.strip())
            if name is None:
                raise ParamError(f"unknown _charset_: {value.strip()[:40]!r}")
            return name
    return "utf-8"


@functools.lru_cache(maxsize=32)
def _form_charset(value: str) -> str | None:
    """The codec's name for a charset a form can be sent in: a text encoding that reads
    ASCII as ASCII (iso-8859-2, windows-1250, shift_jis, ...); None for anything else
    (utf-16, utf-7, idna, zlib, ...), which failed the request with a 500 before."""
    try:
        name = codecs.lookup(value).name
        if name in _NOT_FORM_CHARSETS:
            return None
        if _PRINTABLE_ASCII.decode(name) == _PRINTABLE_ASCII.decode("ascii"):
            return name
    except (LookupError, ValueError):       # UnicodeError is a ValueError
        pass
    return None


def _decode(value: str, charset: str, *, keep_invalid: bool = False) -> str:
    # bottle hands out WSGI 'native strings': the raw bytes as latin-1, one character each.
    if len(value) > MAX_PARAM_BYTES:
        raise ParamError("a parameter is longer than 64 KiB")
    if charset == "utf-8" and value.isascii():     # the common value: already its text
        return value
    data = value.encode("latin-1", errors="replace")
    try:
        return data.decode(charset, errors="surrogateescape" if keep_invalid else "replace")
    except UnicodeError:        # a stateful codec's sequence it cannot replace its way past
        raise ParamError(f"a parameter cannot be read as {charset}") from None


def refuse_head(request: bottle.BaseRequest) -> None:
    """bottle answers HEAD with the GET handler: an uptime monitor or a link checker that
    probed a configured send URL sent (and paid for) a real SMS each time. The API routes
    act on every request, so HEAD is refused (405) before any of it runs."""
    if request.environ.get("REQUEST_METHOD") == "HEAD":
        raise bottle.HTTPResponse(status=405, headers={"Allow": "GET, POST"})


def client_address(request: bottle.BaseRequest) -> str:
    return request.environ.get("REMOTE_ADDR", "") or ""
