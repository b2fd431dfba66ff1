"""Callback URLs are checked when they are given, so a bad one is refused at the door.

A bad URL stored with a message would never be deliverable: the notifier would fail on it
for days. The dialects call `check_callback_url` and turn its ValidationError into their own
invalid-parameter answer.
"""

from __future__ import annotations

import urllib.parse

from appliance.errors import ValidationError

MAX_URL_LENGTH = 2000


def callback_url_problem(url: str) -> str | None:
    """Why `url` cannot be a callback target, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "contains spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0"
    return None


def check_callback_url(url: str, field: str = "reporturl") -> str:
    """The URL, stripped, or ValidationError('bad_url') naming the parameter."""
    url = (url or "").strip()
    problem = callback_url_problem(url)
    if problem:
        raise ValidationError("bad_url", f"{field} {problem}: {url[:80]!r}", field)
    return url


# what a URL may hold as it is; anything else (non-ASCII text) is percent-encoded as UTF-8
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def request_target(url: str) -> tuple[str, dict[str, str]]:
    """(the URL to request, headers) for a callback URL as a user wrote it: non-ASCII text
    (`?shop=José`) percent-encoded as UTF-8, and `user:password@` taken out of the host
    into a Basic Authorization header. urllib sent neither: the first raised
    UnicodeEncodeError and the second looked up `user:password@host` as a host name, so
    the callback could never be delivered."""
    url = urllib.parse.quote(url, safe=_URL_SAFE)
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), \
        {"Authorization": basic_login(parts)}


def basic_login(parts: urllib.parse.SplitResult) -> str:
    """The Basic credentials of a split URL's `user:password@` (percent escapes decoded)."""
    import base64
    credentials = f"{urllib.parse.unquote(parts.username)}:" \
                  f"{urllib.parse.unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def destination_of(url: str) -> str:
    """The endpoint a callback goes to (scheme://host:port): the unit of isolation."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"
    except ValueError:
        return "invalid"
