"""/metrics and /health over a real socket: a daemon in this process, a real SQLite journal,
simulated pty modems where a test needs modems."""

from __future__ import annotations

import base64
import dataclasses
import sqlite3
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance import config as cfg
from appliance.clock import FakeClock
from appliance.store import counters
from appliance.store.journal import Journal
from conftest import ADMIN_PASSWORD, Api
from web_kit import demo_daemon_on_simulated_modems, query_plan, recorded_journal_queries


def scrape(api: Api, headers=None) -> dict:
    """{(sample name, frozenset(labels)): value} of one /metrics answer."""
    request = urllib.request.Request(api.base + "/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, metric: str, **labels) -> float:
    return samples[(metric, frozenset(labels.items()))]


def health(api: Api) -> tuple[int, dict]:
    import json
    status, body = api.get("/health")
    return status, json.loads(body)


def check(body: dict, component: str) -> dict:
    return next(c for c in body["checks"] if c["component"] == component)


@pytest.fixture
def with_modems(make_config, run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        yield daemon, Api(daemon.port), network


def test_metrics_count_accepted_messages_parts_and_requests_by_dialect(appliance_socket):
    daemon, api = appliance_socket
    for _ in range(3):
        api.send("+36201234567", "hello")
    status, _ = api.get("/", command="SendSms", Username="admin", Password=ADMIN_PASSWORD,
                        ApiExtension="1", Recipient="+36201234568", Message="x" * 200)
    assert status == 200
    samples = scrape(api)
    assert value(samples, "sms_messages_accepted_total", dialect="ozeki", user="admin") == 3
    assert value(samples, "sms_messages_accepted_total", dialect="phonesystem", user="admin") == 1
    assert value(samples, "sms_parts", state="queued") == 5          # 3 + a two-part message
    assert value(samples, "sms_queue_depth") == 5
    assert value(samples, "sms_queue_oldest_age_seconds") >= 0
    assert value(samples, "sms_http_request_duration_seconds_count", dialect="ozeki") >= 3
    assert value(samples, "sms_http_request_duration_seconds_count", dialect="phonesystem") == 1
    assert value(samples, "sms_store_commit_batch_size_count") >= 4
    assert value(samples, "sms_store_commit_seconds_bucket", le="+Inf") >= 4
    assert value(samples, "sms_callbacks_pending") == 0
    assert value(samples, "sms_up") == 1


def test_modem_metrics_follow_sends_and_faults(with_modems):
    daemon, api, network = with_modems
    message_id = api.send("+36201234567", "to a modem")
    api.wait_state(message_id, 10)          # delivered
    samples = scrape(api)
    slots = {"slot1", "slot2"}
    for slot in slots:
        name = "GSMModem0" if slot == "slot1" else "GSMModem1"
        assert value(samples, "sms_modem_registered", slot=slot, name=name) == 1
        assert value(samples, "sms_modem_state", slot=slot, name=name, state="ready") == 1
        assert value(samples, "sms_modem_signal_dbm", slot=slot, name=name) < 0
    sent = sum(value(samples, "sms_modem_sent_total", slot=s, name=n)
               for s, n in (("slot1", "GSMModem0"), ("slot2", "GSMModem1")))
    assert sent == 1
    assert value(samples, "sms_parts", state="delivered") == 1
    assert value(samples, "sms_health_status", component="modem:slot1") == 0

    network.modem("slot1").inject_fault("unplug")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        samples = scrape(api)
        if value(samples, "sms_modem_state", slot="slot1", name="GSMModem0", state="ready") == 0:
            break
        time.sleep(0.1)
    assert value(samples, "sms_modem_state", slot="slot1", name="GSMModem0", state="ready") == 0
    assert value(samples, "sms_health_status", component="modem:slot1") >= 1


def test_health_is_200_when_all_pass_and_names_every_component(with_modems):
    daemon, api, network = with_modems
    status, body = health(api)
    assert status == 200, body
    assert body["status"] == "pass", body
    names = {c["component"] for c in body["checks"]}
    assert names == {"process", "store", "modem:slot1", "modem:slot2", "callbacks", "queue",
                     "clock"}
    assert all(c["reason"] for c in body["checks"])


def test_health_fails_with_503_when_the_queue_is_old(make_config, run_daemon):
    clock = FakeClock(start=time.time())
    daemon = run_daemon(make_config(), clock=clock)
    api = Api(daemon.port)
    api.send("+36201234567", "waits: there is no connection")
    status, body = health(api)
    assert status == 200 and check(body, "queue")["status"] == "pass"
    clock.advance(700)        # (the fake clock also makes worker heartbeats look stale)
    assert check(health(api)[1], "queue")["status"] == "warn"
    clock.advance(3600)
    status, body = health(api)
    assert status == 503 and body["status"] == "fail"
    assert check(body, "queue")["status"] == "fail"
    assert "oldest waiting message accepted 4300s ago" in check(body, "queue")["reason"]


def test_health_warns_about_a_connection_stopped_by_the_operator(with_modems):
    daemon, api, network = with_modems
    api.action("stopdriver", name="GSMModem1")
    status, body = health(api)
    assert status == 200 and body["status"] == "warn"
    assert check(body, "modem:slot2") == {"component": "modem:slot2", "status": "warn",
                                          "reason": "stopped by the operator"}
    samples = scrape(api)
    assert value(samples, "sms_connection_stopped", name="GSMModem1") == 1
    # its state series stay, saying stopped (found by a helper: they vanished)
    assert value(samples, "sms_modem_state", slot="slot2", name="GSMModem1",
                 state="stopped") == 1
    assert value(samples, "sms_modem_state", slot="slot2", name="GSMModem1",
                 state="ready") == 0


def test_metrics_basic_auth_and_allow_list(make_config, run_daemon):
    secured = make_config(metrics=cfg.MetricsConfig(username="prom", password="scrape-me"))
    api = Api(run_daemon(secured).port)
    status, body = api.get("/metrics")
    assert status == 401 and "credential" in body
    bad = base64.b64encode(b"prom:wrong").decode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(api, {"Authorization": f"Basic {bad}"})
    assert refused.value.code == 401
    good = base64.b64encode(b"prom:scrape-me").decode()
    assert value(scrape(api, {"Authorization": f"Basic {good}"}), "sms_up") == 1
    assert api.get("/health")[0] == 200           # health stays open

    for _ in range(20):                     # guessing meets the login throttle
        api.get("/metrics")
        try:
            scrape(api, {"Authorization": f"Basic {bad}"})
        except urllib.error.HTTPError as exc:
            last = exc.code
    assert last == 429

    fenced = dataclasses.replace(make_config(), metrics=cfg.MetricsConfig(allow=("10.9.0.0/24",)),
                                 store=cfg.StoreConfig(state_dir=secured.store.state_dir + "2"))
    api = Api(run_daemon(fenced).port)
    assert api.get("/metrics")[0] == 403
    allowed = dataclasses.replace(fenced, metrics=cfg.MetricsConfig(allow=("127.0.0.0/8",)),
                                  store=cfg.StoreConfig(state_dir=secured.store.state_dir + "3"))
    assert value(scrape(Api(run_daemon(allowed).port)), "sms_up") == 1


def test_metrics_config_section_is_strict():
    config = cfg.from_dict({"metrics": {"username": "p", "password": "x",
                                        "allow": ["10.0.0.0/8"]}})
    assert config.metrics.allow == ("10.0.0.0/8",)
    with pytest.raises(cfg.ConfigError):
        cfg.from_dict({"metrics": {"passwd": "x"}})


# --- the counters behind them -----------------------------------------------------------------


def _truth(path) -> tuple[dict, dict]:
    conn = sqlite3.connect(path)
    parts = dict(conn.execute("SELECT state, count(*) FROM parts GROUP BY state").fetchall())
    events = dict(conn.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
    conn.close()
    return parts, events


def _nonzero(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if v}


def test_counters_backfill_existing_rows_then_track_every_change(appliance_socket, tmp_path):
    daemon, api = appliance_socket
    ids = [api.send(f"+3620123456{i}", "count me") for i in range(6)]
    journal = daemon.journal
    # parts change state through the journal's own paths: claim, submit, fail, report
    parts = journal.due_parts(10)
    claimed = journal.claim([(p.id, "x") for p in parts[:4]])
    journal.part_submitted(claimed[0], "x", "ref0")
    journal.part_failed(claimed[1], "x", "E1", "no", retryable=False)
    journal.part_failed(claimed[2], "x", "E2", "later", retryable=True)
    journal.delete_messages([ids[5]])
    journal.purge_deleted(None, "deleted")
    truth_parts, truth_events = _truth(journal.path)
    assert _nonzero(counters.parts_by_state(journal)) == truth_parts
    assert _nonzero(counters.events_by_state(journal)) == truth_events

    # a journal written before the counters existed is counted once, when they are installed
    daemon.stop()
    conn = sqlite3.connect(journal.path)
    for name in ("parts_count_insert", "parts_count_update", "parts_count_delete",
                 "accepted_count_insert", "events_count_insert", "events_count_update",
                 "events_count_delete"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE state_counts")
    conn.execute("UPDATE parts SET state='queued' WHERE state='submitted'")
    conn.commit()
    conn.close()
    reopened = Journal.open(journal.path.parent)
    try:
        counters.ensure(reopened)
        assert _nonzero(counters.parts_by_state(reopened)) == _truth(reopened.path)[0]
        assert sum(n for d, _, _, n in counters.accepted(reopened) if d == "out") == 5
    finally:
        reopened.close()


def test_callback_counters_never_go_down_when_the_deleted_folder_is_emptied(appliance_socket):
    """Found by a helper: delivered and given-up callbacks were read from the events table,
    and emptying the deleted folder purges its events: the *_total counters dropped to 0,
    which Prometheus reads as a reset (the shipped given-up alert could fire on it)."""
    from fakes.lan import Endpoint
    daemon, api = appliance_socket
    endpoint = Endpoint()
    try:
        ids = [api.send("+36201234567", f"tell me {i}", reporturl=endpoint.url + "/r")
               for i in range(3)]
        journal = daemon.journal
        parts = journal.due_parts(10)
        for part_id in journal.claim([(p.id, "x") for p in parts]):
            journal.part_submitted(part_id, "x", f"ref{part_id}")
        deadline = time.monotonic() + 20
        while value(scrape(api), "sms_callbacks_delivered_total") < 3 \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered = value(scrape(api), "sms_callbacks_delivered_total")
        assert delivered >= 3
        journal.delete_messages(ids)
        journal.purge_deleted(None, "deleted")
        assert value(scrape(api), "sms_callbacks_delivered_total") == delivered
    finally:
        endpoint.close()


def test_a_scrape_reads_no_table_scan_of_the_queue(appliance_socket):
    """Scrape cost is constant in queue depth: every statement a scrape runs is answered from
    the counter tables or by an index seek, never by scanning parts, messages or events."""
    daemon, api = appliance_socket
    for i in range(20):
        api.send("+36201234567", f"queued {i}", priority=("alert", "normal", "bulk")[i % 3] if i % 2 else "")
    journal = daemon.journal
    with recorded_journal_queries(journal) as seen:
        from appliance import health
        from appliance.web.metrics import ApplianceCollector
        list(ApplianceCollector(daemon, {}).collect())
        health.run_checks(daemon)
    assert seen
    conn = sqlite3.connect(journal.path)
    for sql, params in seen:
        plan = query_plan(conn, sql, params)
        for table in ("parts", "messages", "events"):
            assert f"SCAN {table}" not in plan.replace("SCAN counter_", ""), (sql, plan)
    conn.close()
    created = counters.oldest_waiting(journal)
    first = journal.query("SELECT min(created) AS t FROM messages WHERE direction='out'")[0]["t"]
    assert created == first


# --- an SMPP uplink against smpp34's server -----------------------------------------------


def test_uplink_metrics_and_health_follow_the_link(make_config, run_daemon):
    from fakes.smsc import Smsc
    from test_smpp import wait_until
    smsc = Smsc(receipts=True).start()
    try:
        uplink = cfg.connection_from_table("SMPP0", {
            "type": "SMPP", "host": "127.0.0.1", "port": str(smsc.port), "username": "esme",
            "password": "secret", "reconnectdelay": "0.05"})
        daemon = run_daemon(make_config(connections=(uplink,)))
        api = Api(daemon.port)
        wait_until(lambda: daemon.channels.running["SMPP0"].status()["state"] == "bound")
        api.wait_state(api.send("+36201234567", "through the uplink"), 10)
        samples = scrape(api)
        assert value(samples, "sms_uplink_up", name="SMPP0") == 1
        assert value(samples, "sms_uplink_state", name="SMPP0", state="bound") == 1
        assert value(samples, "sms_uplink_events_total", name="SMPP0", event="submitted") == 1
        assert value(samples, "sms_uplink_events_total", name="SMPP0", event="receipts") == 1
        assert value(samples, "sms_uplink_window_in_use", name="SMPP0") == 0
        assert check(health(api)[1], "uplink:SMPP0")["status"] == "pass"
        smsc.proxy.down = True          # the link drops and reconnects are refused
        smsc.proxy.cut()
        wait_until(lambda: daemon.channels.running["SMPP0"].status()["state"] != "bound")
        assert check(health(api)[1], "uplink:SMPP0")["status"] in ("warn", "fail")
        assert value(scrape(api), "sms_uplink_up", name="SMPP0") == 0
    finally:
        smsc.stop()
