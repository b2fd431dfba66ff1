"""Reads that may scan or sort much of the journal (a folder view, the reporting summary: 0.3
and 0.6 s at 1M messages) run off the HTTP loop's thread, so a send from another client is
answered while one runs. A real daemon over real sockets; the read is held open by a wrapper
around the journal's query so the test does not need a million rows."""

from __future__ import annotations

import urllib.request

import pytest

from conftest import ADMIN_PASSWORD
from web_kit import HeldRead


@pytest.mark.parametrize("action, marker", [
    ("querymessagelist&folder=outbox", "ORDER BY created"),
    ("receivemessage&folder=inbox", "ORDER BY created"),
    ("reporting", "GROUP BY user"),
])
def test_a_long_read_does_not_hold_up_a_send(appliance_socket, monkeypatch, action, marker):
    daemon, api = appliance_socket
    api.send("+36201234567", "something in the outbox")
    journal = daemon.journal
    held = HeldRead()
    real_query = journal.query

    def held_query(sql, params=()):
        if marker in sql:
            held.hold()
        return real_query(sql, params)

    monkeypatch.setattr(journal, "query", held_query)
    url = (f"http://127.0.0.1:{daemon.port}/api?action={action}&username=admin"
           f"&password={ADMIN_PASSWORD}")
    body = held.send_during(daemon.port,
                            lambda: urllib.request.urlopen(url, timeout=30).read().decode())
    assert "<response>" in body and "errorcode" not in body.lower()
