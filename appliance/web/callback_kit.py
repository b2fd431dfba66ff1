"""What a callback renderer returns (`Call`) and the `$keyword` filling the dialects share.
Standard library only: the notifier thread and every dialect import it."""

from __future__ import annotations

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


def fill_template(template: str, values: dict[str, str]) -> str:
    """Replace `$keyword` tokens, longest first, with URL-encoded values."""
    for key in sorted(values, key=len, reverse=True):
        template = template.replace("$" + key, urllib.parse.quote(str(values[key] or ""), safe=""))
    return template
