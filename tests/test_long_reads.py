"""Reads that may scan or sort much of the journal (a folder view, the reporting summary: 0.3
and 0.6 s at 1M messages) run off the HTTP loop's thread, so a send from another client is
answered while one runs. A real daemon over real sockets; the read is held open by a wrapper
around the journal's query so the test does not need a million rows."""

from __future__ import annotations

import threading
import urllib.request

import pytest

from conftest import ADMIN_PASSWORD, Api


@pytest.mark.parametrize("action, marker", [
    ("querymessagelist&folder=outbox", "ORDER BY created"),
    ("receivemessage&folder=inbox", "ORDER BY created"),
    ("reporting", "GROUP BY user"),
])
def test_a_long_read_does_not_hold_up_a_send(appliance_socket, monkeypatch, action, marker):
    daemon, api = appliance_socket
    api.send("+36201234567", "something in the outbox")
    journal = daemon.journal
    reading, read, release = threading.Event(), threading.Event(), threading.Event()
    real_query = journal.query

    def held_query(sql, params=()):
        if marker in sql:
            reading.set()
            release.wait(10)
            read.set()
        return real_query(sql, params)

    monkeypatch.setattr(journal, "query", held_query)
    answer: dict = {}
    url = (f"http://127.0.0.1:{daemon.port}/api?action={action}&username=admin"
           f"&password={ADMIN_PASSWORD}")
    reader = threading.Thread(target=lambda: answer.update(
        body=urllib.request.urlopen(url, timeout=30).read().decode()))
    reader.start()
    try:
        assert reading.wait(10)
        assert Api(daemon.port).send("+36201234567", "an alert during a long read")
        assert not read.is_set()                # answered while the read still ran
    finally:
        release.set()
        reader.join(15)
    assert "<response>" in answer["body"] and "errorcode" not in answer["body"].lower()
