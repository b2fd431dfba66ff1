"""What a provider's report status word means. Pure.

Web providers write a delivery status in many ways: a word (`delivered`, `DELIVRD`, `failed`),
an SMPP-like `stat:` text or a number. Anything not recognised as final is kept as pending.
"""

from __future__ import annotations

import re

from appliance.model import ReportStatus

_DELIVERED = re.compile(r"(?i)^(delivered|delivrd|deliver|success|successful|ok|done|1)$")
_FAILED = re.compile(r"(?i)^(undelivered|undeliv|undeliverable|failed|failure|fail|rejected|"
                     r"rejectd|deleted|error|2|16)$")
_EXPIRED = re.compile(r"(?i)^(expired|3)$")
_STAT = re.compile(r"(?i)\bstat:\s*(\w+)")


def status_of(word: str) -> ReportStatus:
    word = (word or "").strip()
    stat = _STAT.search(word)
    if stat:
        word = stat.group(1)
    if _DELIVERED.match(word):
        return ReportStatus.DELIVERED
    if _EXPIRED.match(word):
        return ReportStatus.EXPIRED
    if _FAILED.match(word):
        return ReportStatus.FAILED
    return ReportStatus.PENDING
