"""What a callback renderer returns (`Call`) and the `$keyword` filling the dialects share.
Standard library only: the notifier thread and every dialect import it."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
FINAL_KINDS = {"delivered", "undelivered", "expired", "failed"}


@dataclass(frozen=True)
class Call:
    """One HTTP request to a LAN callback URL."""

    url: str
    method: str = "GET"
    body: bytes | None = None
    headers: dict = field(default_factory=dict)


_KEYWORD = re.compile(r"\$([A-Za-z]+)")


def fill_template(template: str, values: dict[str, str]) -> str:
    """Replace whole `$keyword` tokens with URL-encoded values. Anything else with a `$`
    stays as it is: `$status` inside `$statusmessage` (another dialect's keyword) was
    replaced, leaving `DELIVRDmessage`."""
    def value(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            return match.group(0)
        return urllib.parse.quote(str(values[key] or ""), safe="")
    return _KEYWORD.sub(value, template)


def has_keyword(template: str, keys) -> bool:
    """Whether `template` holds one of `keys` as a whole `$keyword`."""
    return any(match.group(1) in keys for match in _KEYWORD.finditer(template))


def with_query(url: str, fields: dict) -> str:
    """`url` with `fields` added to its query, before any #fragment (which the client
    never sends: fields after it were lost)."""
    base, hash_mark, fragment = url.partition("#")
    joined = base + ("&" if "?" in base else "?") + urllib.parse.urlencode(fields)
    return joined + hash_mark + fragment
