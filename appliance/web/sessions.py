"""Dashboard sessions: a random cookie token per login, kept in RAM (a restart logs users
out, which is what an appliance's reboot should do), with a per-session CSRF token.

Bounded: at most MAX_SESSIONS live sessions, idle ones expire; the oldest goes first.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

COOKIE = "sms_session"
IDLE_SECONDS = 8 * 3600
MAX_SESSIONS = 256


@dataclass
class Session:
    user: str
    admin: bool
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    last_seen: float = field(default_factory=time.monotonic)

    def csrf_ok(self, token: str) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionStore:
    def __init__(self, clock=time.monotonic, idle: float = IDLE_SECONDS,
                 limit: int = MAX_SESSIONS):
        self._clock = clock
        self._idle = idle
        self._limit = limit
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, admin: bool) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._expire()
            while len(self._sessions) >= self._limit:
                oldest = min(self._sessions, key=lambda t: self._sessions[t].last_seen)
                del self._sessions[oldest]
            self._sessions[token] = Session(user, admin, last_seen=self._clock())
        return token

    def get(self, token: str) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if self._clock() - session.last_seen > self._idle:
                del self._sessions[token]
                return None
            session.last_seen = self._clock()
            return session

    def drop(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def drop_user(self, user: str) -> None:
        """A disabled or deleted user is logged out everywhere."""
        with self._lock:
            for token in [t for t, s in self._sessions.items() if s.user == user]:
                del self._sessions[token]

    def _expire(self) -> None:
        cutoff = self._clock() - self._idle
        for token in [t for t, s in self._sessions.items() if s.last_seen < cutoff]:
            del self._sessions[token]
