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


def destination_of(url: str) -> str:
    """The endpoint a callback goes to (scheme://host:port): the unit of isolation."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"
    except ValueError:
        return "invalid"
