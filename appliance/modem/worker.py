"""One thread per modem: it owns the port, sends parts, takes inbound SMS and reports,
checks health and balance, and climbs the recovery ladder when the modem misbehaves.

States (explicit, shown in /status):

    probing ──init ok──> ready ──hang / failures / no registration / port gone──> recovering
       ^                   ^                                                        │ step n
       │                   └─────────────────── step worked ─────────────────────────┤
       └──── after failed_retry ──── failed <──── every step tried (alert) ──────────┤
                                                                                            │
                    held: max_resets_per_hour reached; waits, no reset <─ the rung would reset ┘

    any open ──IMEI/ICCID not the configured one──> wrong_modem ──identity_retry──> probing

The ladder is in ladder.py; AT conversations in session.py; this file decides when.
"""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field

from appliance import gsm
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.errors import StoreError, ValidationError
from appliance.model import InboundFragment, OutPart
from appliance.modem import ladder, probe
from appliance.modem.at import (AtCommandError, AtPort, AtTimeout, PortBusy, PortGone,
                                Stopping, Urc, is_port_loss, open_port)
from appliance.modem.errors import InitFailed, SendFailure, WrongModem, classify
from appliance.modem.inbox import Inbox
from appliance.modem.pacing import Pacing
from appliance.modem.power import PowerControl
from appliance.modem.reports import to_fragment, to_report
from appliance.modem.session import Health, ModemSession, Timings

log = logging.getLogger("appliance.modem")

PROBING, READY, RECOVERING, FAILED, STOPPED = "probing", "ready", "recovering", "failed", "stopped"
HELD = "held"                  # recovering, but the hourly reset cap is reached
WRONG_MODEM = "wrong_modem"    # the port answers with another modem's IMEI / SIM's ICCID
MISSED_KEEPALIVES = 2          # one lost AT is noise; two in a row is a hang
RACE_RETRIES = 3               # CMS 330/331/314 right after boot: wait and retry in place
OPERATOR_EVERY = 6             # +COPS? is slower; ask every 6th health check
ALERT_REPEAT_SECONDS = 6 * 3600
REBOOT_GRACE_SECONDS = 3.0     # a RDY this soon after init belongs to the boot we handled


class UssdError(Exception):
    """The network refused, did not answer, or the modem is not ready."""


class UssdCodeError(ValidationError, UssdError):
    """The code is not a USSD request (gsm.ussd_code_problem): refused before the modem. A
    ValidationError, so the web layer answers it as bad input (400), not as a modem error."""


@dataclass
class _UssdRequest:
    code: str
    timeout: float
    done: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    error: str = ""


class ModemWorker:
    """A `model.Channel` over one GSM modem."""

    def __init__(self, config, sink, *, clock: Clock = SYSTEM_CLOCK,
                 power: PowerControl | None = None, sysfs_root: str = "/sys",
                 on_alert=None, timings: Timings | None = None, pin_factory=None,
                 resets: ladder.ResetBudget | None = None):
        self.config = config
        self.name = config.name
        self.slot = config.slot or config.name
        self.sink = sink
        self.clock = clock
        self.timings = timings or Timings()
        self.power = power if power is not None else PowerControl.from_config(
            config, clock=clock, pin_factory=pin_factory)
        self.sysfs_root = sysfs_root
        self.on_alert = on_alert
        self.pacing = Pacing(clock, config.limittompm, config.random_delay_seconds,
                             config.daily_limit)
        # `resets`: the slot's budget from an earlier worker (a driver stopped and started
        # again), so a restart through the API does not wipe the hour's count
        self.resets = resets or ladder.ResetBudget(clock, config.max_resets_per_hour)
        self.resets.per_hour = config.max_resets_per_hour
        self.state = STOPPED
        self.step = ""
        self.session: ModemSession | None = None
        self.health = Health()
        self.counters = collections.Counter()
        self.recoveries = collections.Counter()
        self._retry_failed = True
        self.last_error = ""
        self.balance: float | None = None
        self.balance_text = ""
        self.balance_at: float | None = None
        self._requests = Inbox()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = time.monotonic()
        self._missed_keepalives = 0
        self._send_failures = 0
        self._unregistered_since: float | None = None
        self._health_checks = 0
        self._next_health = 0.0
        self._next_sweep = 0.0
        self._next_balance = 0.0
        self._last_alert: dict[str, float] = {}
        self._recovery_reason = ""
        self._failed_at = 0.0
        self._wrong_at = 0.0
        self.identity_error = ""
        self._wake = None

    # -- Channel ---------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"modem-{self.slot}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._requests.wake()
        if self._thread:
            self._thread.join(timeout)
        self._give_back_queued("the appliance is stopping")
        # its GPIO pins go with it: a worker started for the same slot (a driver restarted
        # or reconfigured through the API) found them "already in use" and lost its power
        # cycle, the last rung of its recovery ladder
        if self.power is not None:
            self.power.close()

    def free_slots(self) -> int:
        ready = (self.state == READY and self.health.registered and self.config.send
                 and self._pending == 0 and self.pacing.may_send())
        return 1 if ready else 0

    def set_wake(self, wake) -> None:
        """`wake()` is called when this modem can take a part again (dispatcher latency)."""
        self._wake = wake

    def submit(self, part: OutPart) -> None:
        with self._pending_lock:
            self._pending += 1
        self._requests.put(("send", part))

    def alive(self) -> bool:
        longest = max(self.config.submittimeout, self.timings.cfun, self.timings.ussd) + 30
        return bool(self._thread and self._thread.is_alive()
                    and time.monotonic() - self._heartbeat < longest)

    def status(self) -> dict:
        session = self.session
        identity = session.identity if session else None
        # the last check's figures hold only while the modem answers: a failed, recovering
        # or unplugged one showed "registered, -71 dBm" in /status, /metrics and the dashboard
        health = self.health if self.state == READY else Health()
        return {
            "name": self.name, "slot": self.slot, "port": self.config.modemorport,
            "state": self.state, "step": self.step,
            "registered": health.registered,
            "registration": health.registration_text(),
            "registration_detail": dict(health.registration),
            "signal": {"csq": health.csq, "dbm": probe.csq_to_dbm(health.csq)},
            "operator": health.operator,
            "imei": identity.imei if identity else "",
            "iccid": identity.iccid if identity else "",
            "expected_imei": self.config.imei, "expected_iccid": self.config.iccid,
            "identity_error": self.identity_error,
            "model": f"{identity.manufacturer} {identity.model}".strip() if identity else "",
            "balance": self.balance, "balance_text": self.balance_text,
            "balance_at": self.balance_at,
            "sent": self.counters["sent"], "failed": self.counters["failed"],
            "received": self.counters["received"], "reports": self.counters["reports"],
            "sent_today": self.pacing.sent_today, "daily_limit": self.config.daily_limit,
            "recoveries": dict(self.recoveries), "last_error": self.last_error,
            "resets_last_hour": self.resets.recent(),
            "max_resets_per_hour": self.config.max_resets_per_hour,
            "reset_cap_waits": self.counters["reset_cap_waits"],
            "reset_wait_seconds": round(self.resets.seconds_until_free()) if self.state == HELD else 0,
        }

    def run_ussd(self, code: str, timeout: float = 30.0) -> str:
        """Run a USSD code on the worker thread (it owns the port); returns the decoded text."""
        problem = gsm.ussd_code_problem(code)
        if problem:
            raise UssdCodeError("ussd_code", problem, "code")
        if self.state != READY:
            raise UssdError(f"modem {self.slot} is {self.state}")
        request = _UssdRequest(code, timeout)
        self._requests.put(("ussd", request))
        if not request.done.wait(timeout + self.config.submittimeout + 5):
            raise UssdError(f"no USSD answer from {self.slot} within {timeout:g}s")
        if request.error:
            raise UssdError(request.error)
        return request.text

    def request_reset(self, reason: str) -> bool:
        """An operator asks for a reset: the worker thread runs the recovery ladder from its
        first step (it owns the port). False when the modem is not ready (already recovering,
        held or failed: the ladder is running or waiting anyway)."""
        if self.state != READY:
            return False
        self._requests.put(("reset", reason))
        return True

    # -- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        self._enter(PROBING)
        handlers = {PROBING: self._probe, READY: self._serve, RECOVERING: self._recover_step,
                    HELD: self._wait_reset_cap, FAILED: self._wait_failed,
                    WRONG_MODEM: self._wait_wrong_modem}
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            if self.state != READY:
                self._give_back_queued(f"{self.slot} is {self.state}")
            try:
                handlers[self.state]()
            except Stopping:
                break
            except WrongModem as exc:     # from any (re)open: probe, ladder, held check
                self._wrong_modem(str(exc))
            except AtTimeout as exc:      # e.g. hung while reading the SIM on becoming ready
                self._begin_recovery(f"modem stopped answering ({exc})")
            except Exception as exc:     # one modem's bug must not end its thread
                if is_port_loss(exc):    # pyserial or the OS, wherever it surfaced
                    self._begin_recovery(f"port gone: {exc}", port_gone=True)
                    continue
                log.exception("%s: unexpected error in state %s", self.slot, self.state)
                self._begin_recovery(f"internal error: {exc}")
        self._close_session()
        self._give_back_queued("the appliance is stopping")
        self._enter(STOPPED)

    def _enter(self, state: str, step: str = "") -> None:
        if state != self.state or step != self.step:
            log.info("%s: state %s%s", self.slot, state, f" ({step})" if step else "")
        self.state, self.step = state, step

    # -- probing ------------------------------------------------------------------------------

    def _probe(self) -> None:
        try:
            self._open_and_init(wait=self.timings.reopen)
        except PortBusy as exc:
            return self._port_busy(str(exc))
        except InitFailed as exc:
            if exc.fatal:
                return self._fail(exc.reason, retry=exc.retry)
            return self._begin_recovery(f"init failed: {exc.reason}")
        except PortGone as exc:
            return self._begin_recovery(f"port gone during init: {exc}", port_gone=True)
        except (AtTimeout, AtCommandError) as exc:
            return self._begin_recovery(f"init failed: {exc}")
        self._became_ready()

    def _port_busy(self, reason: str) -> None:
        """No rung of the ladder frees a port another process holds: say so and wait."""
        if self.last_error != reason:
            log.error("%s: %s", self.slot, reason)
            self._alert("busy", f"modem {self.slot}: {reason}")
        self.last_error = reason
        self._sleep(self.timings.race_retry)

    def _open_and_init(self, wait: float) -> None:
        self._close_session()
        port = self._open_port(wait)
        self.session = ModemSession(port, self.config, self.timings, self.clock, self.slot)
        self.session.initialize()

    def _open_port(self, wait: float) -> AtPort:
        deadline = self.clock.monotonic() + wait
        while True:
            try:
                port = open_port(self.config.modemorport, self.config.baudrate)
                port.cancelled = self._stop.is_set     # a stop ends any wait on the modem
                return port
            except PortBusy:
                raise
            except PortGone:
                if self.clock.monotonic() >= deadline or self._stop.is_set():
                    raise
                self._sleep(0.5)

    def _became_ready(self) -> None:
        self.identity_error = ""
        self._missed_keepalives = 0
        self._send_failures = 0
        self._unregistered_since = None
        self._next_health = 0.0
        self._next_sweep = self.clock.monotonic() + self.timings.sweep
        if self.config.ussd_balance and self._next_balance == 0.0:
            self._next_balance = self.clock.monotonic()
        self._start_budget_day()
        self._enter(READY)
        self._check_health()
        self._read_all_stored()
        self._notify_free()

    def _notify_free(self) -> None:
        if self._wake is not None and self.free_slots():
            try:
                self._wake()
            except Exception:
                log.exception("%s: dispatcher wake-up failed", self.slot)

    def _start_budget_day(self) -> None:
        """Today's count from the journal (an index range): without a daily limit too, or
        the dashboard's "today: N sent" and sms_modem_sent_today restarted at 0 with
        every restart of the daemon or the modem."""
        counter = getattr(self.sink, "sent_count_since", None)
        if counter is None:
            return
        try:
            self.pacing.start_day(counter(self.name, self.pacing.midnight()))
        except Exception:
            log.exception("%s: could not read today's sent count", self.slot)

    # -- ready ----------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            self._wait_for_work()
            self._take_request()
            if self.state != READY:
                return
            self._handle_urcs(self.session.port.read_urcs(0.0))
            self._periodic()
        except PortGone as exc:
            self._begin_recovery(f"port gone: {exc}", port_gone=True)
        except AtTimeout as exc:
            self._keepalive_missed(str(exc))
        except AtCommandError as exc:     # ERROR to a plain AT: confused, maybe a late answer
            self._keepalive_missed(f"unexpected {exc}")

    def _wait_for_work(self) -> None:
        """Sleeps until a request, a line from the modem, or the next look at the timers
        (`timings.poll`); a part starts at once, not at the next look (inbox.py)."""
        port = self.session.port
        timeout = 0.0 if port.has_pending() else self.timings.poll
        if self._requests.wait(port.fileno(), timeout):
            port.read_ready()

    def _take_request(self) -> None:
        try:
            kind, item = self._requests.get_nowait()
        except queue.Empty:
            return
        if kind == "send":
            try:
                self._send(item)
            finally:
                with self._pending_lock:
                    self._pending -= 1
                self._notify_free()
        elif kind == "reset":
            self._begin_recovery(item)
        else:
            self._answer_ussd(item)

    def _periodic(self) -> None:
        now = self.clock.monotonic()
        if self.config.keepaliverequest and now >= self._next_health:
            self._check_health()
        if self.state == READY and now >= self._next_sweep:
            self._next_sweep = now + self.timings.sweep
            self._read_all_stored()
        if self.state == READY and self.config.ussd_balance and now >= self._next_balance:
            self._check_balance()

    # -- sending ---------------------------------------------------------------------------------

    def _send(self, part: OutPart) -> None:
        if self.state != READY or not self.health.registered:
            why = self.state if self.state != READY else "not registered on the network"
            return self._part_failed(part, SendFailure("modem not ready", f"{self.slot} is {why}",
                                                       True, False))
        validity = self._validity(part)
        if validity is not None and validity <= 0:
            return self._part_failed(part, SendFailure("expired", "validity ended before sending",
                                                       False, False))
        self._wait_for_pacing()
        try:
            reference, failure = self._send_with_retries(part, validity)
        except Stopping:        # it may have left: sent again, as after a crash
            self._part_failed(part, SendFailure("stopped", f"{self.slot} stopped while sending"
                                                " it", True, False))
            raise
        self.pacing.record_attempt(counted=reference is not None)
        if reference is None and failure.code == "AT timeout" and \
                self.config.submittimeoutaction == "SubmitSuccess":
            log.warning("%s: part %s got no +CMGS answer, counted as submitted (SubmitSuccess)",
                        self.slot, part.id)
            self._part_submitted(part, "")
            self._after_send_failure(failure)
        elif reference is not None:
            self._part_submitted(part, reference)
        else:
            self._part_failed(part, failure)
            self._after_send_failure(failure)

    def _send_with_retries(self, part: OutPart, validity):
        for attempt in range(1, RACE_RETRIES + 1):
            try:
                return self.session.send(part, validity), None
            except (AtTimeout, PortGone, AtCommandError, gsm.PduError, gsm.EncodingError,
                    ValueError) as exc:
                failure = classify(exc)
                if not failure.race or attempt == RACE_RETRIES:
                    return None, failure
                log.info("%s: part %s hit %s (%s), retrying in place", self.slot, part.id,
                         failure.code, failure.reason)
                self._sleep(self.timings.race_retry)
        return None, failure

    def _validity(self, part: OutPart) -> float | None:
        if part.valid_until is None:
            return None
        return part.valid_until - self.clock.now()

    def _wait_for_pacing(self) -> None:
        wait = self.pacing.seconds_until_allowed()
        if wait > 0:
            self._sleep(wait)

    def _part_submitted(self, part: OutPart, reference: int | str) -> None:
        self.counters["sent"] += 1
        self._send_failures = 0
        log.debug("%s: part %s to %s submitted, reference %s", self.slot, part.id,
                 _masked(part.recipient), reference)
        self._keep(f"part {part.id} submitted", self.sink.part_submitted, part.id, self.name,
                   reference=str(reference))

    def _part_failed(self, part: OutPart, failure: SendFailure, *, as_error: bool = True) -> None:
        """`as_error`: the failure is the modem's last error (a part handed back because
        the modem is down is not: the reason it went down stays shown)."""
        self.counters["failed"] += 1
        if as_error:
            self.last_error = f"{failure.code}: {failure.reason}"
        log.warning("%s: part %s failed: %s: %s (%s)", self.slot, part.id, failure.code,
                    failure.reason, "will retry" if failure.retryable else "final")
        self._keep(f"part {part.id} failed", self.sink.part_failed, part.id, self.name,
                   failure.code, failure.reason, failure.retryable)

    def _keep(self, what: str, write, *args, **kwargs) -> None:
        """A result the store must have: written again until it is (a full or failing disk),
        never taken for a modem fault. A send whose record was lost stayed `sending` until a
        restart sent it again, and the error reset a healthy modem. On stop the part is left
        in flight, and the next start sends it again, as after a crash."""
        delay = 0.5
        for attempt in itertools.count(1):
            try:
                write(*args, **kwargs)
                if attempt > 1:
                    log.info("%s: %s recorded after %d attempts", self.slot, what, attempt)
                return
            except (StoreError, TimeoutError) as exc:
                if attempt == 1:
                    log.error("%s: %s not recorded, the store failed (%s); retrying until"
                              " it takes it", self.slot, what, exc)
                if self._stop.is_set():
                    raise Stopping(f"{self.slot} stopped with {what} not recorded") from None
                self._sleep(delay)
                delay = min(delay * 2, 30.0)

    def _after_send_failure(self, failure: SendFailure) -> None:
        if failure.code == "AT timeout":
            return self._keepalive_missed("AT+CMGS got no answer")
        if failure.code == "port gone":
            return self._begin_recovery(failure.reason, port_gone=True)
        if failure.modem_fault:
            self._send_failures += 1
            if self._send_failures >= self.config.max_failures:
                self._begin_recovery(f"{self._send_failures} sends failed in a row "
                                     f"(last {failure.code})")

    # -- health -----------------------------------------------------------------------------------

    def _check_health(self) -> None:
        self._next_health = self.clock.monotonic() + self.config.keepaliveperiod
        with_operator = self._health_checks % OPERATOR_EVERY == 0
        self._health_checks += 1
        health = self.session.health(with_operator)
        if not with_operator:
            health.operator = self.health.operator
        self.health = health
        self._missed_keepalives = 0
        self._watch_registration()

    def _watch_registration(self) -> None:
        if self.health.registered:
            if self._unregistered_since is not None:
                log.info("%s: registered again (%s)", self.slot, self.health.registration_text())
            self._unregistered_since = None
            return
        now = self.clock.monotonic()
        if self._unregistered_since is None:
            self._unregistered_since = now
            log.warning("%s: not registered (%s)", self.slot, self.health.registration_text())
        elif now - self._unregistered_since >= self.config.deregistered_timeout:
            self._begin_recovery(f"not registered for {now - self._unregistered_since:.0f}s "
                                 f"({self.health.registration_text()})")

    def _keepalive_missed(self, what: str) -> None:
        self._missed_keepalives += 1
        log.warning("%s: %s (%d in a row)", self.slot, what, self._missed_keepalives)
        if self._missed_keepalives >= MISSED_KEEPALIVES:
            self._begin_recovery(f"modem stopped answering ({what})")
        else:
            self._next_health = self.clock.monotonic()   # ask again right away

    # -- inbound and reports ------------------------------------------------------------------------

    def _handle_urcs(self, urcs: list[Urc]) -> None:
        for urc in urcs:
            try:
                self._handle_urc(urc)
            except (AtTimeout, PortGone):
                raise
            except AtCommandError as exc:   # e.g. a late answer's ERROR: read at the next sweep
                log.warning("%s: %s not read now (%s); left in the modem's memory", self.slot,
                            urc.line, exc)
            except Exception:
                log.exception("%s: could not handle %s", self.slot, urc.line)

    def _handle_urc(self, urc: Urc) -> None:
        line = urc.line
        if line.startswith(("+CMTI:", "+CDSI:")):
            stored = probe.parse_index_urc(line)
            if stored and line.startswith("+CDSI:"):
                self._take_announced_report(stored.memory, stored.index)
            elif stored:
                self._take_stored(stored.memory, stored.index)
        elif line.startswith(("+CMT:", "+CDS:")):
            self._take_direct(urc.body)
        elif line in ("RDY", "^BOOT") or line.startswith("+CPIN: NOT READY"):
            if time.monotonic() - self.session.initialized_at > REBOOT_GRACE_SECONDS:
                self._begin_recovery("the modem restarted by itself", rebooted=True)
        elif line.startswith("+CUSD:"):
            log.info("%s: late USSD answer ignored", self.slot)

    def _take_stored(self, memory: str, index: int) -> bool:
        pdu_hex = self.session.read_stored(memory, index)
        if pdu_hex is None:
            return False
        self._take_pdu(pdu_hex)
        # Only now, with the store's commit behind us, may the SIM forget it.
        self.session.delete_stored(memory, index)
        return True

    def _take_announced_report(self, memory: str, index: int) -> None:
        """+CDSI. Quectel EC25/EG25 say `+CDSI: "SM",n` while the report sits in SR
        (field-notes §2 point 6): where SR exists, look there first, then the named slot."""
        if memory == "SR" or not self.session.caps.sr_memory:
            self._take_stored(memory, index)
            return
        if self._take_stored("SR", index) or self._read_memory("SR"):
            log.info("%s: +CDSI named %s %s but the report was in SR", self.slot, memory, index)
            return
        self._take_stored(memory, index)

    def _take_direct(self, pdu_hex: str) -> None:
        """+CMT/+CDS: the modem holds no copy; acknowledge only once the store has it."""
        try:
            self._take_pdu(pdu_hex)
        except (AtTimeout, PortGone):
            raise
        except Exception:
            self._acknowledge(ok=False)
            raise
        self._acknowledge(ok=True)

    def _acknowledge(self, ok: bool) -> None:
        if self.session.caps.ack_direct:
            self.session.acknowledge(ok)

    def _take_pdu(self, pdu_hex: str) -> None:
        try:
            pdu = gsm.decode(pdu_hex, has_smsc=True)
        except gsm.PduError as exc:
            self._keep_undecodable(pdu_hex, exc)
            return
        now = self.clock.now()
        if pdu.type == "status_report":
            self.counters["reports"] += 1
            self._keep("a status report", self.sink.report, to_report(pdu, self.name, now))
        elif pdu.type == "deliver":
            if not self.config.receive:
                raise RuntimeError("receiving is off for this modem; left on the SIM")
            self.counters["received"] += 1
            log.debug("%s: SMS from %s received", self.slot, _masked(pdu.number))
            self._keep("a received SMS", self.sink.inbound,
                       to_fragment(pdu, self.name, self.config.phonenumber, now))

    def _keep_undecodable(self, pdu_hex: str, error: Exception) -> None:
        """A PDU we cannot read is kept in the inbox as it came (SMS:BINARY, the whole PDU
        in hex) before the SIM forgets it: it was deleted with only a log line, and whatever
        it said was gone for good."""
        log.warning("%s: undecodable PDU (%s) kept in the inbox as raw data: %s", self.slot,
                    error, pdu_hex[:80])
        try:
            data = bytes.fromhex(pdu_hex)
        except ValueError:
            data = pdu_hex.encode("ascii", "replace")
        self.counters["received"] += 1
        self._keep("an undecodable SMS", self.sink.inbound, InboundFragment(
            connection=self.name, sender="", recipient=self.config.phonenumber,
            encoding="8bit", text=None, data=data, received_at=self.clock.now()))

    def _read_all_stored(self) -> None:
        """Messages and reports that arrived while we were down, or whose URC was lost."""
        memories = [self.session.caps.storage]
        if self.session.caps.sr_memory and self.config.deliveryreport:
            memories.append("SR")
        for memory in memories:
            self._read_memory(memory)

    def _read_memory(self, memory: str) -> int:
        """Take every PDU stored in `memory` (commit, then delete); returns how many."""
        try:
            stored = self.session.list_stored(memory)
        except AtCommandError as exc:
            log.info("%s: cannot list %s memory: %s", self.slot, memory, exc)
            return 0
        taken = 0
        for index, pdu_hex in stored:
            try:
                self._take_pdu(pdu_hex)
                self.session.delete_stored(memory, index)
                taken += 1
            except (AtTimeout, PortGone):
                raise
            except Exception:
                log.exception("%s: stored message %s/%s kept on the SIM", self.slot,
                              memory, index)
        return taken

    # -- USSD and balance -----------------------------------------------------------------------------

    def _answer_ussd(self, request: _UssdRequest) -> None:
        try:
            request.text = self._ussd(request.code, request.timeout)
        except UssdError as exc:
            request.error = str(exc)
        except (AtCommandError, AtTimeout) as exc:
            request.error = f"USSD {request.code}: {exc}"
        except Stopping:
            request.error = f"USSD {request.code}: {self.slot} is stopping"
            raise
        finally:
            request.done.set()

    def _ussd(self, code: str, timeout: float) -> str:
        log.info("%s: USSD %s", self.slot, code)
        urcs = self.session.start_ussd(code)
        deadline = time.monotonic() + timeout     # real time: we wait for the serial line
        while True:
            answers = [u for u in urcs if u.line.startswith("+CUSD:")]
            # Reports and SMS that came with the answer were taken off the port: handle them
            # before returning, or they are lost.
            self._handle_urcs([u for u in urcs if not u.line.startswith("+CUSD:")])
            if answers:
                return self._ussd_text(answers[0].line)
            if time.monotonic() >= deadline:
                self.session.end_ussd()
                raise UssdError(f"no USSD answer to {code} within {timeout:g}s")
            urcs = self.session.port.read_urcs(0.2)

    def _ussd_text(self, line: str) -> str:
        reply = probe.parse_cusd(line)
        if reply is None or reply.status in (4, 5) or (reply.status == 2 and not reply.payload):
            raise UssdError(f"USSD refused by the network ({line})")
        if reply.status == 1:
            self.session.end_ussd()      # a menu: we never answer it, so close the session
        return gsm.decode_ussd(reply.payload, reply.dcs)

    def _check_balance(self) -> None:
        interval = self.config.ussd_interval_hours * 3600
        try:
            text = self._ussd(self.config.ussd_balance, self.timings.ussd)
        except (UssdError, AtCommandError) as exc:
            self._next_balance = self.clock.monotonic() + min(interval, 3600)
            log.warning("%s: balance check failed: %s", self.slot, exc)
            return
        self._next_balance = self.clock.monotonic() + interval
        self._record_balance(text)

    def _record_balance(self, text: str) -> None:
        self.balance_text = text
        self.balance_at = self.clock.now()
        match = re.search(self.config.balance_regex, text)
        if not match:
            log.warning("%s: balance_regex found no amount in %r", self.slot, text)
            return
        found = match.group(1) if match.groups() else match.group(0)
        amount = probe.parse_amount(found or "")
        if amount is None:      # an operator's odd text is no reason to reset the modem
            log.warning("%s: balance_regex found %r in %r, which is not an amount", self.slot,
                        found, text)
            return
        self.balance = amount
        log.info("%s: balance %s", self.slot, self.balance)
        if self.config.balance_low >= 0 and self.balance < self.config.balance_low:
            self._alert("balance", f"{self.slot}: SIM balance {self.balance:g} is below "
                                   f"{self.config.balance_low:g}", repeat=True)

    # -- recovery ------------------------------------------------------------------------------------

    def _begin_recovery(self, reason: str, *, port_gone: bool = False,
                        rebooted: bool = False) -> None:
        if self.state in (RECOVERING, HELD):
            return
        self.last_error = reason
        self._recovery_reason = reason
        log.warning("%s: recovery needed: %s", self.slot, reason)
        self._give_back_queued(f"{self.slot} is recovering")
        self._ladder = ladder.Ladder(self, port_gone=port_gone, rebooted=rebooted)
        self._enter(RECOVERING, self._ladder.current())

    def _recover_step(self) -> None:
        outcome = self._ladder.run_next()
        if outcome == "recovered":
            self._became_ready()
        elif outcome == "held":
            self._hold()
        elif outcome == "exhausted":
            self._fail(f"every recovery step failed ({self._recovery_reason})")
        else:
            self._enter(RECOVERING, self._ladder.current())

    def _hold(self) -> None:
        """The hourly reset cap is reached: wait instead of resetting again (no storm)."""
        self.counters["reset_cap_waits"] += 1
        self._enter(HELD, f"{self._ladder.current()} waits: {self.resets.recent()} resets in "
                          f"the last hour, max {self.config.max_resets_per_hour}")
        log.warning("%s: reset cap reached, next reset in %.0fs (%s)", self.slot,
                    self.resets.seconds_until_free(), self._recovery_reason)

    def _wait_reset_cap(self) -> None:
        wait = self.resets.seconds_until_free()
        if wait <= 0:
            return self._enter(RECOVERING, self._ladder.current())
        self._sleep(min(wait, self.config.keepaliveperiod))
        if self._ladder.works_now():
            log.info("%s: the modem came back without a reset", self.slot)
            self._became_ready()
        else:
            self._read_stored_while_held()

    def _read_stored_while_held(self) -> None:
        """Held, but the modem may still answer (typically: no network): SMS already stored
        on its SIM are read into the store now, not when the cap lifts up to an hour later.
        A modem that does not answer is left to the wait."""
        if self.session is None:
            return
        try:
            self._read_all_stored()
        except (AtTimeout, PortGone, AtCommandError, OSError) as exc:
            log.debug("%s: held; stored SMS not readable now: %s", self.slot, exc)
            if is_port_loss(exc):
                self._close_session()       # reopened by the next works_now check

    def _wrong_modem(self, reason: str) -> None:
        """Another modem behind our link: send nothing, leave it alone, say so, look again."""
        self._close_session()
        self._give_back_queued(f"{self.slot}: wrong modem on the port")
        self._wrong_at = self.clock.monotonic()
        self.last_error = reason
        if self.identity_error != reason:
            self.counters["identity_mismatches"] += 1
            log.error("%s: refusing to use %s: %s", self.slot, self.config.modemorport, reason)
            self._alert("identity", f"modem {self.slot}: {reason}")
        self.identity_error = reason
        self._enter(WRONG_MODEM)

    def _wait_wrong_modem(self) -> None:
        if self.clock.monotonic() - self._wrong_at >= self.timings.identity_retry:
            self._enter(PROBING)
            return
        self._sleep(min(0.5, self.timings.identity_retry))

    def _fail(self, reason: str, retry: bool = True) -> None:
        """`retry`: probe it again after `failed_retry` (not after a refused PIN)."""
        self.last_error = reason
        self._retry_failed = retry
        self._close_session()
        self._give_back_queued(f"{self.slot} failed")
        self._failed_at = self.clock.monotonic()
        self._enter(FAILED)
        log.error("%s: failed: %s", self.slot, reason)
        self._alert("failed", f"modem {self.slot} failed: {reason}")

    def _wait_failed(self) -> None:
        if self._retry_failed and \
                self.clock.monotonic() - self._failed_at >= self.timings.failed_retry:
            log.info("%s: trying a failed modem again", self.slot)
            self._enter(PROBING)
            return
        self._sleep(min(0.5, self.timings.failed_retry))

    def _alert(self, kind: str, text: str, repeat: bool = False) -> None:
        now = self.clock.monotonic()
        last = self._last_alert.get(kind)
        if last is not None and not repeat and now - last < ALERT_REPEAT_SECONDS:
            return
        self._last_alert[kind] = now
        if self.on_alert is None:
            return
        try:
            self.on_alert(self.slot, text)
        except Exception:
            log.exception("%s: alert callback failed", self.slot)

    # -- helpers --------------------------------------------------------------------------------------

    def _give_back_queued(self, reason: str) -> None:
        """Parts waiting in this worker go back to the queue for another modem."""
        while True:
            try:
                kind, item = self._requests.get_nowait()
            except queue.Empty:
                return
            if kind == "send":
                self._part_failed(item, SendFailure("modem down", reason, True, False),
                                  as_error=False)
                with self._pending_lock:
                    self._pending -= 1
            elif kind == "reset":
                continue        # the ladder runs already: a second click asks nothing more
            else:
                item.error = reason
                item.done.set()

    def _close_session(self) -> None:
        if self.session is not None:
            self.session.port.close()

    def _sleep(self, seconds: float) -> None:
        """Sleep through the clock, waking for stop; keeps the heartbeat fresh."""
        end = self.clock.monotonic() + seconds
        while not self._stop.is_set():
            left = end - self.clock.monotonic()
            if left <= 0:
                return
            self.clock.wait(self._stop, min(left, 1.0))
            self._heartbeat = time.monotonic()


def _masked(number: str) -> str:
    """Numbers in logs keep their country and last digits only (the rule of every layer)."""
    from appliance.logmask import masked
    return masked(number)
