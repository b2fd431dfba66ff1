"""The recovery ladder: each rung is harsher than the last (field-notes §4.2).

    reopen (only after the port vanished or the modem rebooted by itself)
    cfun_radio       AT+CFUN=0, AT+CFUN=1: radio off/on, cures most registration stalls
    cfun_reset       AT+CFUN=1,1: module reset; it re-enumerates on USB
    usb_reauthorize  sysfs authorized 0/1: logical unplug, no power cut
    power_cycle      GPIO power cut or PWRKEY pulse

A rung that cannot apply (no sysfs device, no pin) is skipped without counting. After a
rung ran, the modem must answer init again (and register, if registration was the
problem) for the rung to count as the cure. Each rung is logged with slot, reason, result.

Every rung but `reopen` is a reset, and `ResetBudget` caps them per hour (field-notes
§4.2): a dead SIM or a network outage must not turn into a reset storm. Past the cap the
worker holds and only checks whether the modem came back by itself.

A rung cut short can leave the radio off (AT+CFUN=0 answered, then the modem hung before
AT+CFUN=1). Every init, and every check while held for want of a network, switches it back
on (`Session.switch_radio_on`): otherwise the cap would keep it off by our own hand.
"""

from __future__ import annotations

import logging
from collections import deque

from appliance.modem.at import AtCommandError, AtTimeout, PortGone
from appliance.modem.errors import InitFailed
from appliance.modem.usb import find_usb_device, reauthorize

log = logging.getLogger("appliance.modem")

STEPS = ("cfun_radio", "cfun_reset", "usb_reauthorize", "power_cycle")
HOUR = 3600.0
# A port that vanishes again while it is reopened (USB still settling, a second
# re-enumeration) is reopened again rather than met with AT resets it cannot receive.
MAX_REOPENS = 3


class ResetHeld(Exception):
    """The rung would reset the modem, but the hourly cap is reached."""


class ResetBudget:
    """Resets in a sliding hour; `per_hour` <= 0 means no cap."""

    def __init__(self, clock, per_hour: int):
        self.clock = clock
        self.per_hour = per_hour
        self._times: deque[float] = deque()

    def record(self) -> None:
        self._times.append(self.clock.monotonic())

    def recent(self) -> int:
        cutoff = self.clock.monotonic() - HOUR
        while self._times and self._times[0] <= cutoff:
            self._times.popleft()
        return len(self._times)

    def exhausted(self) -> bool:
        return self.per_hour > 0 and self.recent() >= self.per_hour

    def seconds_until_free(self) -> float:
        if not self.exhausted():
            return 0.0
        return max(0.0, self._times[0] + HOUR - self.clock.monotonic())


class Ladder:
    def __init__(self, worker, *, port_gone: bool = False, rebooted: bool = False):
        self.worker = worker
        self.reason = worker._recovery_reason
        self.needs_registration = "not registered" in self.reason
        self.steps = (["reopen"] if port_gone or rebooted else []) + list(STEPS)
        self.index = 0
        self.reopens = 0
        self._port_lost = False

    def current(self) -> str:
        return self.steps[self.index] if self.index < len(self.steps) else ""


    def run_next(self) -> str:
        """Run one rung: "recovered", "next" (try the following rung), "held" (the rung
        applies but the reset cap is reached; it runs on a later call) or "exhausted"."""
        if self.index >= len(self.steps):
            return "exhausted"
        step = self.steps[self.index]
        self.index += 1
        self._port_lost = False
        try:
            cured = self._attempt(step)
        except ResetHeld:
            self.index -= 1
            return "held"
        if cured:
            return "recovered"
        if self._port_lost:
            self._reopen_next()
        return "exhausted" if self.index >= len(self.steps) else "next"

    def _reopen_next(self) -> None:
        """Port loss is port loss wherever it surfaced (a rung, init after it): the next
        rung reopens the port, up to MAX_REOPENS times, before any AT reset is tried."""
        if self.reopens >= MAX_REOPENS or self.current() == "reopen":
            return
        self.steps.insert(self.index, "reopen")

    def _attempt(self, step: str) -> bool:
        worker = self.worker
        if step == "reopen":
            self.reopens += 1
        try:
            done = getattr(self, "_" + step)()
        except (AtTimeout, AtCommandError, PortGone, OSError) as exc:
            self._port_lost = isinstance(exc, (PortGone, OSError))
            self._count(step)
            log.warning("%s: recovery step %s failed: %s", worker.slot, step, exc)
            return False
        if done is None:
            log.info("%s: recovery step %s skipped: not available on this slot", worker.slot, step)
            return False
        self._count(step)
        cured = self._modem_works()
        log.warning("%s: recovery step %s (%s): %s", worker.slot, step, done,
                    "recovered" if cured else "still not working")
        return cured

    # -- rungs: each returns what it did, or None when it cannot apply ------------------------

    def _reopen(self) -> str:
        log.warning("%s: recovery step reopen, because: %s", self.worker.slot, self.reason)
        return "reopened the port"

    def _cfun_radio(self) -> str | None:
        session = self._session()
        if session is None:
            return None
        self._allow_reset("cfun_radio")
        session.at("AT+CFUN=0", self.worker.timings.cfun)
        session.at("AT+CFUN=1", self.worker.timings.cfun)
        return "AT+CFUN=0 then AT+CFUN=1"

    def _cfun_reset(self) -> str | None:
        session = self._session()
        if session is None:
            return None
        self._allow_reset("cfun_reset")
        try:
            session.at("AT+CFUN=1,1", self.worker.timings.cfun)
        except PortGone:
            pass            # the module reset before its OK left: that is success
        self._wait_boot()
        return "AT+CFUN=1,1"

    def _usb_reauthorize(self) -> str | None:
        worker = self.worker
        device = find_usb_device(worker.config.modemorport, worker.sysfs_root,
                                 worker.config.usb_device)
        if device is None:
            return None
        self._allow_reset("usb_reauthorize")
        worker._close_session()
        reauthorize(device, worker.clock)
        self._wait_boot()
        return f"re-authorized {device.name}"

    def _power_cycle(self) -> str | None:
        worker = self.worker
        if worker.power is None or not worker.power.available():
            return None
        self._allow_reset("power_cycle")
        worker._close_session()
        done = worker.power.cycle()
        self._wait_boot()
        return done

    def works_now(self) -> bool:
        """While resets are held back: has the modem come back by itself (network back,
        hang over)? Cheap: one health check on the open port, init only if it answers."""
        session = self._session()
        if session is None:
            return False
        try:
            health = session.health(with_operator=False)
            if self.needs_registration and not health.registered:
                session.switch_radio_on()   # no network may be our own radio left off
                return False
            session.initialize()
            return True
        except (PortGone, OSError):
            # Re-enumerated (it rebooted by itself, a USB glitch): the path leads to a new
            # tty. Reopening is no reset; the next check opens it afresh.
            self.worker._close_session()
            return False
        except (AtTimeout, AtCommandError, InitFailed) as exc:
            log.debug("%s: held; not back: %s", self.worker.slot, exc)
            return False

    # -- helpers --------------------------------------------------------------------------------

    def _allow_reset(self, step: str) -> None:
        if self.worker.resets.exhausted():
            raise ResetHeld(step)
        log.warning("%s: recovery step %s, because: %s", self.worker.slot, step, self.reason)

    def _count(self, step: str) -> None:
        self.worker.recoveries[step] += 1
        if step != "reopen":
            self.worker.resets.record()

    def _session(self):
        """The open session, or a fresh port for the AT rungs; None when it cannot open."""
        worker = self.worker
        if worker.session is not None and not _closed(worker.session.port):
            return worker.session
        try:
            worker._open_and_init(wait=0)
        except (PortGone, AtTimeout, AtCommandError, InitFailed):
            return worker.session if worker.session and not _closed(worker.session.port) else None
        return worker.session

    def _wait_boot(self) -> None:
        self.worker._close_session()
        self.worker._sleep(self.worker.config.boot_seconds)

    def _modem_works(self) -> bool:
        worker = self.worker
        try:
            self._reinitialize()
            return self._registers() if self.needs_registration else True
        except (PortGone, AtTimeout, AtCommandError, InitFailed) as exc:
            self._port_lost = isinstance(exc, PortGone)
            log.info("%s: modem not back yet: %s", worker.slot, exc)
            return False

    def _reinitialize(self) -> None:
        """Init again; on the same port when it is still open, because reopening a tty
        discards what the modem already sent (a +CDS report, a +CMTI)."""
        worker = self.worker
        if worker.session is not None and not _closed(worker.session.port):
            try:
                worker.session.initialize()
                return
            except (PortGone, AtTimeout, AtCommandError, InitFailed):
                pass
        worker._open_and_init(wait=worker.timings.reopen)

    def _registers(self) -> bool:
        worker = self.worker
        deadline = worker.clock.monotonic() + worker.timings.registration
        while True:
            if worker.session.health(with_operator=False).registered:
                return True
            if worker.clock.monotonic() >= deadline:
                return False
            worker._sleep(1.0)


def _closed(port) -> bool:
    return not getattr(port.link, "is_open", True)
