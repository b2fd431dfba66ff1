"""The token an HTTP Client connection's delivery reports must carry (`report_route.py`).

A report settles a message, so the report URL is never open: REPORTTOKEN when it is set,
else a token the appliance makes once per connection and keeps in the state dir (the
documents, table `report_tokens`: the same after a restart or an upgrade). The admin reads
the whole URL, token included, on the dashboard's admin page; it is never in /status (no
login) or in the log.

An upgrade must not lose a fleet's reports: a box already in use when it first runs a release
with report tokens has providers calling token-less URLs. Its HTTP Client connections then
(no reporttoken) take token-less reports, with a warning at each start, until the provider
first calls with the token; connections made after that first start never do.
"""

from __future__ import annotations

import logging
import secrets
import threading
import urllib.parse

from appliance.provider.settings import HTTPClientConfig

log = logging.getLogger("appliance.provider")

TABLE = "report_tokens"
SINCE = "report_tokens_since"     # one document: this store has run a release with tokens


class ReportTokens:
    """One per daemon (`ControlPlane.report_tokens`), over its documents."""

    def __init__(self, documents):
        self._documents = documents
        self._making = threading.Lock()   # two first reports at once make one token
        self._told: set[str] = set()      # connections whose refusals were logged

    def token(self, conn: HTTPClientConfig) -> str:
        """REPORTTOKEN, else the kept one, made now if there is none."""
        if conn.reporttoken:
            return conn.reporttoken
        with self._making:
            kept = self._documents.get(TABLE, conn.name)
            if kept and kept.get("token"):
                return kept["token"]
            token = secrets.token_urlsafe(24)
            self._documents.put(TABLE, {"name": conn.name, "token": token})
        log.info("%s: made the token its delivery reports must carry; the report URL with "
                 "it is on the dashboard's admin page (or set reporttoken)", conn.name)
        return token

    def adopt(self, connections, in_use: bool) -> None:
        """At start. On the first start with report tokens of a store already `in_use`, the
        HTTP Client connections without reporttoken keep taking token-less reports."""
        if self._documents.get(SINCE, "first") is None:
            for conn in connections:
                if isinstance(conn, HTTPClientConfig) and not conn.reporttoken and in_use:
                    self._documents.put(TABLE, {"name": conn.name, "tokenless": True,
                                                "token": secrets.token_urlsafe(24)})
            self._documents.put(SINCE, {"name": "first"})
        for conn in connections:
            if isinstance(conn, HTTPClientConfig) and self.tokenless(conn):
                log.warning("%s: delivery reports without a token are still taken (it was set "
                            "up before report tokens); give the provider the report URL on "
                            "the dashboard's admin page, or set reporttoken", conn.name)

    def tokenless(self, conn: HTTPClientConfig) -> bool:
        """Whether this connection still takes a report without a token (see adopt)."""
        if conn.reporttoken:
            return False
        kept = self._documents.get(TABLE, conn.name)
        return bool(kept and kept.get("tokenless"))

    def token_used(self, conn: HTTPClientConfig) -> None:
        """The provider called with the token: token-less reports end for this connection."""
        if self.tokenless(conn):
            self._documents.update(TABLE, conn.name, {"tokenless": False})
            log.info("%s: its provider calls with the report token; reports without it are "
                     "refused from now on", conn.name)

    def forget(self, name: str) -> None:
        """A deleted connection's token goes with it: a new connection of the same name (maybe
        another provider) must not take reports from whoever held the old URL."""
        with self._making:
            self._documents.remove(TABLE, name)
        self._told.discard(name)

    def first_refusal(self, name: str) -> bool:
        """True once per connection: a flood of forged reports must not flood the log."""
        if name in self._told:
            return False
        self._told.add(name)
        return True


def path(name: str, token: str) -> str:
    """The report URL's path and query."""
    return (f"/connections/{urllib.parse.quote(name, safe='')}/report?"
            f"{urllib.parse.urlencode({'token': token})}")
