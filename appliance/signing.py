"""HMAC-SHA256 signatures on callbacks, so a receiver can trust what the appliance sends.

With a per-user secret (user setting `callback_secret`), every callback carries
`X-SMS-Appliance-Timestamp: <unix seconds>` and
`X-SMS-Appliance-Signature: v1=<hex>`, where the hex is
HMAC-SHA256(secret, "<timestamp>\\n<METHOD>\\n<URL>\\n" + body) and the URL is exactly the
one requested (a GET report carries its values in the URL, a POST in the body). The receiver
recomputes it and refuses a timestamp more than a few minutes old (replays).
docs/api.md has a verification sample.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-SMS-Appliance-Timestamp"
SIGNATURE_HEADER = "X-SMS-Appliance-Signature"


def signature(secret: str, timestamp: int, method: str, url: str, body: bytes) -> str:
    message = f"{timestamp}\n{method.upper()}\n{url}\n".encode() + (body or b"")
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_headers(secret: str, timestamp: float, method: str, url: str, body: bytes | None) -> dict:
    stamp = int(timestamp)
    return {TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: signature(secret, stamp, method, url, body or b"")}


def verify(secret: str, headers, method: str, url: str, body: bytes, now: float,
           max_skew: float = 300) -> bool:
    """What a receiver does (used by the tests; the docs show the same in a few lines)."""
    headers = {str(k).lower(): v for k, v in dict(headers).items()}   # names are case-blind
    try:
        stamp = int(headers[TIMESTAMP_HEADER.lower()])
    except (KeyError, TypeError, ValueError):
        return False
    if abs(now - stamp) > max_skew:
        return False
    expected = signature(secret, stamp, method, url, body)
    return hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER.lower(), ""))
