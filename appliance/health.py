"""The appliance's health checks, one per component: pass, warn or fail with a reason.

Served as JSON by /health (200 when nothing fails, 503 otherwise), shown on the dashboard,
exported to /metrics and read by the Ansible status playbook. The `process` check is the
same thread-liveness test the systemd watchdog is fed from (Daemon.healthy); the other
checks tell an operator what to fix, and restarting the daemon would not fix them, so they
never stop the watchdog.

Every figure comes from maintained counters or indexed reads (store/counters.py): a health
probe costs the same whatever the queue depth.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from appliance.channel_down import SENDING_STATES
from appliance.config import GSMModemConfig
from appliance.store import counters

PASS, WARN, FAIL = "pass", "warn", "fail"
RANK = {PASS: 0, WARN: 1, FAIL: 2}

DISK_FAIL_BYTES, DISK_WARN_BYTES = 50 * 2 ** 20, 500 * 2 ** 20
DISK_FAIL_FRACTION, DISK_WARN_FRACTION = 0.02, 0.10
QUEUE_AGE_WARN, QUEUE_AGE_FAIL = 600.0, 3600.0          # seconds the oldest waiting part waits
CALLBACKS_WARN, CALLBACKS_FAIL = 100, 1000              # callback events not yet delivered
MODEM_FAIL_STATES = {"failed", "held", "wrong_modem"}
MODEM_WARN_STATES = {"probing", "recovering", "stopped"}
CLOCK_SYNC_GRACE = 600.0    # seconds after start NTP gets for its first synchronization


@dataclass(frozen=True)
class Check:
    component: str
    status: str
    reason: str

    def as_dict(self) -> dict:
        return {"component": self.component, "status": self.status, "reason": self.reason}


def run_checks(daemon) -> list[Check]:
    checks = [process_check(daemon), store_check(daemon)]
    checks += channel_checks(daemon)
    checks += [callbacks_check(daemon), queue_age_check(daemon), clock_check(daemon)]
    return checks


def report(daemon) -> tuple[int, dict]:
    """(HTTP status, body) for /health."""
    checks = run_checks(daemon)
    worst = max((c.status for c in checks), key=RANK.__getitem__, default=PASS)
    body = {"status": worst, "checks": [c.as_dict() for c in checks]}
    return (503 if worst == FAIL else 200), body


def process_check(daemon) -> Check:
    if daemon.healthy():
        return Check("process", PASS, "every worker thread is alive")
    return Check("process", FAIL, "a worker thread stopped or hangs (the watchdog restarts us)")


def store_check(daemon) -> Check:
    state_dir = daemon.config.state_dir
    if not daemon.journal.alive():
        return Check("store", FAIL, "the journal's writer thread is not running")
    if not os.access(state_dir, os.W_OK):
        return Check("store", FAIL, f"{state_dir} is not writable")
    usage = shutil.disk_usage(state_dir)
    free, fraction = usage.free, usage.free / usage.total if usage.total else 0.0
    text = f"{free / 2 ** 20:.0f} MiB free ({fraction:.0%}) on {state_dir}"
    if free < DISK_FAIL_BYTES or fraction < DISK_FAIL_FRACTION:
        return Check("store", FAIL, text)
    if free < DISK_WARN_BYTES or fraction < DISK_WARN_FRACTION:
        return Check("store", WARN, text)
    return Check("store", PASS, text)


def channel_checks(daemon) -> list[Check]:
    if not daemon.channels.configs:     # accepted messages wait for a way out that never comes
        return [Check("connections", WARN, "no connection is configured: messages are"
                                           " accepted and wait")]
    checks = []
    running = daemon.channels.running
    for name, conn in sorted(daemon.channels.configs.items()):
        channel = running.get(name)
        is_modem = isinstance(conn, GSMModemConfig)
        label = f"modem:{getattr(conn, 'slot', '') or name}" if is_modem else f"uplink:{name}"
        if channel is None:
            checks.append(Check(label, WARN, "stopped by the operator"))
        elif is_modem:
            checks.append(_modem_check(label, channel.status()))
        else:
            checks.append(_uplink_check(label, channel.status()))
    return checks


def _modem_check(label: str, status: dict) -> Check:
    state = status.get("state", "")
    error = status.get("last_error") or ""
    if state in MODEM_FAIL_STATES:
        return Check(label, FAIL, f"{state}: {error}".rstrip(": "))
    if state in MODEM_WARN_STATES:
        return Check(label, WARN, f"{state}: {status.get('step') or error}".rstrip(": "))
    if not status.get("registered"):
        return Check(label, WARN, f"not registered ({status.get('registration', '')})")
    dbm = (status.get("signal") or {}).get("dbm")
    signal = f", {dbm} dBm" if dbm is not None else ""
    return Check(label, PASS, f"ready on {status.get('operator') or 'network'}{signal}")


def _uplink_check(label: str, status: dict) -> Check:
    state = status.get("state", "")
    if state in SENDING_STATES:
        return Check(label, PASS, state)
    error = status.get("last_error") or ""
    if state in ("connecting", "binding", "backoff"):     # on its way back (alerts use `for:`)
        return Check(label, WARN, f"{state}: {error}".rstrip(": "))
    return Check(label, FAIL, f"{state or 'down'}: {error}".rstrip(": "))


def _graded_by_threshold(component: str, amount: float, warn_at: float, fail_at: float,
                         text: str) -> Check:
    """FAIL from `fail_at` up, WARN from `warn_at` up, PASS below."""
    if amount >= fail_at:
        return Check(component, FAIL, text)
    if amount >= warn_at:
        return Check(component, WARN, text)
    return Check(component, PASS, text)


def callbacks_check(daemon) -> Check:
    pending = counters.events_by_state(daemon.journal).get("pending", 0)
    return _graded_by_threshold("callbacks", pending, CALLBACKS_WARN, CALLBACKS_FAIL,
                                f"{pending} callbacks waiting")


def queue_age_check(daemon) -> Check:
    created = counters.oldest_waiting(daemon.journal)
    if created is None:
        return Check("queue", PASS, "nothing waiting")
    age = max(0.0, daemon.clock.now() - created)
    return _graded_by_threshold("queue", age, QUEUE_AGE_WARN, QUEUE_AGE_FAIL,
                                f"oldest waiting message accepted {age:.0f}s ago")


def clock_check(daemon) -> Check:
    """WARN, not FAIL: a box on a LAN without NTP still sends; its times are off."""
    synchronized = daemon.clock_synchronized()
    if synchronized is None:
        return Check("clock", PASS, "the kernel does not say whether the clock is synchronized")
    if synchronized:
        return Check("clock", PASS, "synchronized (NTP)")
    if daemon.clock.monotonic() - daemon.started < CLOCK_SYNC_GRACE:
        return Check("clock", PASS, "waiting for NTP's first synchronization")
    return Check("clock", WARN, "not synchronized: no NTP server answers (local times, schedules"
                 " and SMPP validity may be off; set the LAN's NTP servers)")
