"""Helpers shared by the web tests: a daemon on simulated demo modems, and a recorder of the
SQL a page or a scrape runs against the journal."""

from __future__ import annotations

import contextlib
import dataclasses
import threading

from appliance import config as cfg
from appliance import demo
from demo_support import wait_registered


@contextlib.contextmanager
def demo_daemon_on_simulated_modems(make_config, run_daemon, modems: int = 2,
                                    step_seconds: float = 0.1):
    """A ready daemon whose `modems` demo modems are registered; yields (daemon, network).
    `step_seconds` is how long the simulated network takes to send and to report."""
    config, network, pin_factory = demo.start(dataclasses.replace(
        make_config(), demo=cfg.DemoConfig(enabled=True, modems=modems,
                                           send_seconds=step_seconds,
                                           report_seconds=step_seconds)))
    daemon = run_daemon(config, pin_factory=pin_factory)
    daemon.control.sim = network
    assert daemon.wait_ready(60)
    wait_registered(daemon)
    try:
        yield daemon, network
    finally:
        network.close()


@contextlib.contextmanager
def recorded_journal_queries(journal):
    """Yields a list that collects (sql, params) of every journal.query run inside the block."""
    seen: list[tuple[str, tuple]] = []
    original = journal.query

    def recording(sql, params=()):
        seen.append((sql, tuple(params)))
        return original(sql, params)

    journal.query = recording
    try:
        yield seen
    finally:
        journal.query = original


def query_plan(conn, sql: str, params) -> str:
    """SQLite's EXPLAIN QUERY PLAN of one statement, its steps joined by ' | '."""
    return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


class HeldRead:
    """Holds a slow read open (`wrap` a reader with it) until a send has gone through the
    API meanwhile: `send_during(port, request)` runs `request()` in a thread, and once the
    read has begun sends an SMS and checks it was answered while the read still ran."""

    def __init__(self):
        self.reading, self.read, self.release = (threading.Event(), threading.Event(),
                                                 threading.Event())

    def hold(self) -> None:
        self.reading.set()
        self.release.wait(10)
        self.read.set()

    def send_during(self, port: int, request):
        from conftest import Api
        answer: dict = {}
        reader = threading.Thread(target=lambda: answer.update(value=request()))
        reader.start()
        try:
            assert self.reading.wait(10)
            assert Api(port).send("+36201234567", "an alert during a long read")
            assert not self.read.is_set()        # answered while the read still ran
        finally:
            self.release.set()
            reader.join(15)
        return answer["value"]
