"""The simulated mobile network: routes SMS between simulated modems, answers USSD, and
sends status reports `report_seconds` after a submit that asked for one (TP-SRR).

Numbers that belong to no simulated modem are "outside": their SMS are recorded and
reported delivered, except numbers in `undeliverable` (or starting with +999), which get
a permanent-failure report (TP-ST 0x41). A modem that cannot receive right now (hung,
unplugged, deregistered) gets the message later: the network retries, as an SMSC does.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import shutil
import tempfile
import threading
import zlib
from datetime import datetime, timezone

from appliance import gsm
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.sim.modem import SimModem, history

log = logging.getLogger("appliance.sim")

RETRY_SECONDS = 1.0
IDLE_WAKE_SECONDS = 0.5     # the timer thread sleeps at most this long (an injected clock)
STATUS_DELIVERED = 0x00
STATUS_UNDELIVERABLE = 0x41


class SimNetwork:
    def __init__(self, clock: Clock = SYSTEM_CLOCK, send_seconds: float = 1.0,
                 report_seconds: float = 1.0, *, record: bool = True):
        self.clock = clock
        self.send_seconds = send_seconds
        self.report_seconds = report_seconds
        self.modems: dict[str, SimModem] = {}
        self.undeliverable: set[str] = set()
        self.refuse: dict[str, int] = {}       # number -> CMS code the network answers at submit
        # what tests and benches read back; `record=False` (make run, `sms-appliance sim`)
        # keeps none of it: a demo left running for a week grew by every message it sent
        self.record = record
        self.outside: list[dict] = history(record)     # SMS that left the simulated network
        self.submits: list[dict] = history(record)     # every accepted AT+CMGS, in order
        self.ussd_replies: dict[str, str] = {}
        self.link_dir = tempfile.mkdtemp(prefix="sms-sim-")
        self._timers: list = []
        self._sequence = itertools.count()
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._concat_refs = itertools.count(1)
        self._thread = threading.Thread(target=self._run_timers, name="sim-network", daemon=True)
        self._thread.start()

    # -- set-up -------------------------------------------------------------------

    def add_modem(self, slot: str, number: str, *, power_pin: int | None = None,
                  pin_factory=None, profile: str = "quectel", pin: str = "",
                  power_active_high: bool = True) -> SimModem:
        imei = f"86{len(self.modems):02d}{zlib.crc32(slot.encode()) % 10**11:011d}"[:15]
        iccid = f"893670{zlib.crc32(number.encode()) % 10**13:013d}"
        modem = SimModem(self, slot, number, link_dir=self.link_dir, imei=imei, iccid=iccid,
                         profile=profile, record=self.record,
                         pin=pin, power_pin=power_pin, power_active_high=power_active_high,
                         pin_factory=pin_factory)
        self.modems[_normal(number)] = modem
        return modem

    def modem(self, slot: str) -> SimModem | None:
        """The simulated modem in `slot` (`slot2`, or just `2` as a user types it), or None."""
        if slot.strip().isdigit():
            slot = f"slot{slot.strip()}"
        for modem in self.modems.values():
            if modem.slot == slot:
                return modem
        return None

    def swap_ports(self, slot_a: str, slot_b: str) -> None:
        """Two modems re-enumerate and come back under each other's stable link (field-notes
        §2 point 3: identical dongles swap after a reboot)."""
        first, second = self.modem(slot_a), self.modem(slot_b)
        # both paths read before either moves: the modem's thread changes `path` as soon as
        # it takes the move (at once since it sleeps on a wake pipe), and the second modem
        # was then sent to the path the first had just taken
        path_a, path_b = first.path, second.path
        first.move_to(path_b)
        second.move_to(path_a)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify()
        self._thread.join(timeout=2)
        for modem in list(self.modems.values()):
            modem.close()
        shutil.rmtree(self.link_dir, ignore_errors=True)

    # -- timers -------------------------------------------------------------------

    def schedule(self, delay: float, action) -> None:
        with self._lock:
            heapq.heappush(self._timers, (self.clock.monotonic() + delay,
                                          next(self._sequence), action))
            self._lock.notify()

    def _run_timers(self) -> None:
        """Sleeps until the next timer (or a new one) is due, not in 5 ms ticks."""
        while not self._stop.is_set():
            for action in self._due():
                try:
                    action()
                except Exception:
                    log.exception("sim network: timer failed")

    def _due(self) -> list:
        with self._lock:
            while not self._stop.is_set():
                now = self.clock.monotonic()
                if self._timers and self._timers[0][0] <= now:
                    break
                wait = self._timers[0][0] - now if self._timers else IDLE_WAKE_SECONDS
                # bounded: a clock that is not the system's moves without waking anyone
                self._lock.wait(min(wait, IDLE_WAKE_SECONDS))
            due = []
            while self._timers and self._timers[0][0] <= self.clock.monotonic():
                due.append(heapq.heappop(self._timers)[2])
            return due

    # -- traffic --------------------------------------------------------------------

    def submitted(self, sender: SimModem, submit: gsm.Pdu, reference: int) -> None:
        """A modem's AT+CMGS went through: route it and, if asked, report on it later."""
        record = {"from": sender.slot, "to": submit.number, "text": submit.text,
                  "data": submit.data, "encoding": submit.encoding, "concat": submit.concat,
                  "msg_class": submit.msg_class,
                  "ports": submit.ports,
                  "reference": reference,
                  "at": self.clock.now()}
        self.submits.append(record)
        submitted_at = self._datetime()
        target = self.modems.get(_normal(submit.number))
        if target is not None:
            deliver = gsm.encode_deliver(sender.number, submit.text, data=submit.data,
                                         encoding=submit.encoding, concat=submit.concat,
                                         udh=submit.udh, scts=submitted_at,
                                         msg_class=submit.msg_class, pid=submit.pid)
            self._hand_over(target, lambda modem=target, pdu=deliver: modem.receive_deliver(pdu))
        else:
            self.outside.append(record)
        if submit.status_report_requested:
            status = self._status_for(submit.number)
            report = gsm.encode_status_report(submit.number, message_reference=reference,
                                              status=status, scts=submitted_at,
                                              discharge_time=self._datetime())
            self.schedule(self.report_seconds, lambda: self._hand_over(
                sender, lambda: sender.receive_report(report)))

    def deliver_text(self, sender: str, target: SimModem, text: str) -> None:
        """An SMS from outside to a simulated modem, split and concatenated as phones do."""
        split = gsm.segments(text)
        reference = next(self._concat_refs) % 256
        for seq, part in enumerate(split.parts, start=1):
            concat = (reference, split.count, seq, 8) if split.count > 1 else None
            pdu = gsm.encode_deliver(sender, part, encoding=split.encoding, concat=concat,
                                     scts=self._datetime())
            self._hand_over(target, lambda pdu=pdu: target.receive_deliver(pdu))

    def ussd_text(self, modem: SimModem, code: str) -> str | None:
        if code in self.ussd_replies:
            return self.ussd_replies[code]
        if code in ("*100#", "*101#", "*102#"):
            return f"Balance: {modem.balance:.2f} EUR. Valid until 2030-12-31."
        return None

    def refusal(self, number: str) -> int | None:
        return {_normal(n): code for n, code in self.refuse.items()}.get(_normal(number))

    def retry_later(self, modem: SimModem, action) -> None:
        """The modem did not acknowledge (no +CNMA, or a negative one): the SMSC tries again."""
        self.schedule(RETRY_SECONDS, lambda: self._hand_over(modem, action))

    def _hand_over(self, modem: SimModem, action) -> None:
        """Give the modem its SMS or report now, or retry later while it cannot take it."""
        if modem.reachable():
            modem.post(action)
        else:
            self.schedule(RETRY_SECONDS, lambda: self._hand_over(modem, action))

    def _status_for(self, number: str) -> int:
        normal = _normal(number)
        if normal in {_normal(n) for n in self.undeliverable} or normal.startswith("+999"):
            return STATUS_UNDELIVERABLE
        return STATUS_DELIVERED

    def _datetime(self) -> datetime:
        return datetime.fromtimestamp(int(self.clock.now()), tz=timezone.utc)


def _normal(number: str) -> str:
    digits = "".join(ch for ch in number if ch.isdigit())
    return "+" + digits
