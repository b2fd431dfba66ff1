"""Shared pieces for the modem, simulator and field tests (imported by them; no tests here).

A recording sink that implements model.ChannelSink with lists, a simulated network with
ModemWorkers on its ptys, gpiozero's MockFactory reset after each test, and a `wait_until`
that polls instead of sleeping a fixed time.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from appliance.config import GSMModemConfig
from appliance.model import OutPart
from appliance.modem.session import Timings
from appliance.modem.worker import ModemWorker
from appliance.sim.network import SimNetwork

FAST = Timings(command=1.0, keepalive=0.5, cfun=1.0, sim_ready=5.0, smsc_ready=3.0,
               race_retry=0.3, reopen=3.0, registration=3.0, poll=0.02, sweep=300.0,
               failed_retry=3600.0, ussd=3.0)


class Sink:
    """model.ChannelSink with lists, for tests that watch what a worker reported."""

    def __init__(self):
        self.submitted: list[tuple[int, str, str]] = []
        self.failed: list[tuple[int, str, str, str, bool]] = []
        self.reports = []
        self.fragments = []
        self.refuse_inbound = False       # a store that cannot commit
        self.sent_today = 0
        self._lock = threading.Lock()

    def part_submitted(self, part_id, connection, reference):
        with self._lock:
            self.submitted.append((part_id, connection, reference))

    def part_failed(self, part_id, connection, code, reason, retryable):
        with self._lock:
            self.failed.append((part_id, connection, code, reason, retryable))

    def report(self, report):
        with self._lock:
            self.reports.append(report)

    def inbound(self, fragment):
        if self.refuse_inbound:
            raise RuntimeError("store unavailable")
        with self._lock:
            self.fragments.append(fragment)

    def sent_count_since(self, connection, since):
        return self.sent_today


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def modem_config(sim_modem, name: str = "GSMModem0", **overrides) -> GSMModemConfig:
    values = dict(name=name, modemorport=sim_modem.path, slot=sim_modem.slot,
                  phonenumber=sim_modem.number, limittompm=0, keepaliveperiod=0.5,
                  boot_seconds=0.2, power_off_seconds=0.1, deregistered_timeout=1.0,
                  submittimeout=5.0)
    values.update(overrides)
    return GSMModemConfig(**values)


def part(part_id: int = 1, recipient: str = "+36701234567", text: str = "hello", **extra):
    return OutPart(id=part_id, message_id=f"m{part_id}", recipient=recipient, originator="",
                   text=text, **extra)


@pytest.fixture
def mock_factory():
    from gpiozero.pins.mock import MockFactory
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def network():
    net = SimNetwork(send_seconds=0.05, report_seconds=0.1)
    yield net
    net.close()


class Rig:
    """Workers started on sim modems, stopped at teardown."""

    def __init__(self, network):
        self.network = network
        self.workers: list[ModemWorker] = []

    def worker(self, sim_modem, sink=None, *, timings=FAST, **kwargs) -> ModemWorker:
        config_overrides = kwargs.pop("config", {})
        name = config_overrides.pop("name", f"GSMModem{len(self.workers)}")
        config = modem_config(sim_modem, name, **config_overrides)
        worker = ModemWorker(config, sink if sink is not None else Sink(), timings=timings,
                             **kwargs)
        worker.start()
        self.workers.append(worker)
        return worker

    def ready(self, worker, timeout: float = 10.0):
        wait_until(lambda: worker.free_slots() == 1, timeout, what=f"{worker.slot} ready")
        return worker

    def close(self):
        for worker in self.workers:
            worker.stop(5)


@pytest.fixture
def rig(network):
    from appliance.modem import session
    session.REFUSED_PINS.clear()          # per process: one test's refused PIN is its own
    r = Rig(network)
    yield r
    r.close()
    session.REFUSED_PINS.clear()


def with_config(config: GSMModemConfig, **changes) -> GSMModemConfig:
    return dataclasses.replace(config, **changes)
