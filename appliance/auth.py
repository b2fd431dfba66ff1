"""Users and passwords: salted scrypt hashes, a cache of verified credentials, and a
per-address throttle for failed logins.

scrypt costs tens of milliseconds on a Pi by design; paying it on every API request would cap
the appliance at a few dozen requests a second. A successful check is remembered as a keyed
BLAKE2b tag of the password under a per-process random key (a MAC like HMAC, one C call of
about a microsecond instead of HMAC's ~15), tied to the stored hash, so a changed password or
a different one is checked in full again, and nothing reusable sits in memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque

from appliance import suspend

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
PREFIX = "scrypt"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, dklen=32)
    return "$".join([PREFIX, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     _b64(salt), _b64(digest)])


def hash_problem(stored: str) -> str | None:
    """Why `stored` is no hash `hash_password` makes (a config's `password_hash`), or None.
    Such a hash never verifies: check-config says so instead of a silent lockout."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        return ("expected scrypt$N$r$p$salt$digest, as `sms-appliance passwd --hash-only`"
                " prints one")
    prefix, n, r, p, salt, digest = parts
    if not (n.isdigit() and r.isdigit() and p.isdigit()) or int(n) < 2 \
            or int(n) & (int(n) - 1) or not int(r) or not int(p):
        return "N must be a power of two, r and p positive whole numbers"
    try:
        if len(base64.b64decode(salt, validate=True)) < 8 or \
                len(base64.b64decode(digest, validate=True)) < 16:
            return "the salt or the digest is too short"
    except ValueError:
        return "the salt and the digest must be base64"
    return None


def verify_password(password: str, stored: str) -> bool:
    try:
        prefix, n, r, p, salt, digest = stored.split("$")
        if prefix != PREFIX:
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def new_password() -> str:
    return secrets.token_urlsafe(12)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class CredentialCache:
    """Remembers (user, password) pairs that verified against a given stored hash."""

    def __init__(self, max_entries: int = 4096):
        self._key = secrets.token_bytes(32)
        self._seen: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def check(self, user: str, password: str, stored_hash: str) -> bool:
        tag = hashlib.blake2b(password.encode("utf-8"), key=self._key, digest_size=32).digest()
        if self._known(user, stored_hash, tag):
            return True
        # Off the HTTP loop's thread, one at a time (16 MiB each); a burst of fresh
        # connections with the same credentials pays for one scrypt, the rest hit the cache.
        return suspend.offload(self._verify, user, password, stored_hash, tag)

    def _known(self, user: str, stored_hash: str, tag: bytes) -> bool:
        # One dict read is atomic under the GIL: no lock on the hot path (writers lock, so
        # a clear and a store never interleave).
        known = self._seen.get((user, stored_hash))
        return known is not None and hmac.compare_digest(known, tag)

    def _verify(self, user: str, password: str, stored_hash: str, tag: bytes) -> bool:
        if self._known(user, stored_hash, tag):
            return True
        if not verify_password(password, stored_hash):
            return False
        with self._lock:
            if len(self._seen) >= self._max:
                self._seen.clear()
            self._seen[(user, stored_hash)] = tag
        return True


class LoginThrottle:
    """At most `limit` failed logins per source address per minute."""

    def __init__(self, limit: int = 10, window: float = 60.0, clock=time.monotonic):
        self._limit = limit
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, address: str) -> bool:
        if not self._failures.get(address) and self._limit > 0:
            return False        # no recent failure from here (the usual case): no lock
        with self._lock:
            recent = self._prune(address)
            return len(recent) >= self._limit

    def failed(self, address: str) -> None:
        with self._lock:
            self._prune(address).append(self._clock())

    def _prune(self, address: str) -> deque:
        recent = self._failures[address]
        cutoff = self._clock() - self._window
        while recent and recent[0] < cutoff:
            recent.popleft()
        return recent
