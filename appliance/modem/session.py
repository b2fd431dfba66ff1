"""The AT conversations with one open modem: init, send, health, storage, USSD.

A session lives from one successful open to the next failure; the worker owns it and
decides what happens on errors. Nothing here sleeps except through the injected clock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from appliance import gsm
from appliance.clock import Clock
from appliance.model import OutPart
from appliance.modem import probe, quirks
from appliance.modem.at import AtCommandError, AtPort, AtTimeout, Urc
from appliance.modem.errors import InitFailed, WrongModem
from appliance.modem.pins import REFUSED_PINS

log = logging.getLogger("appliance.modem")

SIM_RETRY_CME = {14, 515}           # SIM busy, device busy: wait and ask again
SIM_MISSING_CME = {10, 13}          # not inserted, failure: may be seated late


@dataclass(frozen=True)
class Timings:
    """Seconds. Defaults suit real modules; tests shorten them."""

    command: float = 5.0            # an ordinary AT command
    keepalive: float = 3.0          # the health AT; a miss counts towards "hung"
    cfun: float = 20.0              # AT+CFUN can take long while the radio detaches
    sim_ready: float = 30.0         # CPIN busy / not inserted, after boot
    smsc_ready: float = 15.0        # CMS 330 after boot
    race_retry: float = 2.0         # pause before repeating a command that hit a race
    reopen: float = 30.0            # wait for a port to come back after a reset
    registration: float = 60.0      # after a recovery step, wait this long to register
    poll: float = 1.0               # an idle modem looks at its timers this often (a
    #                                 request or a line from the modem wakes it at once)
    sweep: float = 300.0            # re-read SIM storage for SMS whose +CMTI was lost
    failed_retry: float = 900.0     # a failed modem is probed again after this
    identity_retry: float = 60.0    # a port with the wrong IMEI/ICCID is checked again after this
    ussd: float = 30.0


@dataclass
class Identity:
    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str = ""
    iccid: str = ""


@dataclass
class Capabilities:
    cnmi: probe.CnmiChoice | None = None
    storage: str = "SM"
    sr_memory: bool = False
    quirks: quirks.Quirks = quirks.GENERIC
    ussd_packed: bool = False       # requests go GSM 7-bit packed (Huawei without USSDMODE)
    ack_direct: bool = False        # AT+CSMS=1: each +CMT/+CDS needs our AT+CNMA


@dataclass
class Health:
    registration: dict = field(default_factory=dict)   # {"CREG": 1, "CGREG": 1, "CEREG": 1}
    csq: int | None = None
    operator: str = ""

    @property
    def registered(self) -> bool:
        return any(stat in probe.REGISTERED for stat in self.registration.values()
                   if stat is not None)

    def registration_text(self) -> str:
        stats = [stat for stat in self.registration.values() if stat is not None]
        best = next((s for s in stats if s in probe.REGISTERED), stats[0] if stats else None)
        return probe.REGISTRATION_TEXT.get(best, "unknown")


class ModemSession:
    def __init__(self, port: AtPort, config, timings: Timings, clock: Clock, label: str):
        self.port = port
        self.config = config
        self.timings = timings
        self.clock = clock
        self.label = label
        self.identity = Identity()
        self.caps = Capabilities()
        self.smsc = ""
        self.initialized_at = 0.0

    # -- commands with the session's defaults ------------------------------------------

    def at(self, command: str, timeout: float | None = None) -> list[str]:
        return self.port.command(command, self.timings.command if timeout is None else timeout)

    def try_at(self, command: str, timeout: float | None = None) -> list[str] | None:
        """A command whose failure is not worth stopping for (vendor extras, identity)."""
        try:
            return self.at(command, timeout)
        except AtCommandError as exc:
            log.info("%s: %s refused (%s), carrying on", self.label, command, exc)
            return None

    # -- init ----------------------------------------------------------------------------

    def initialize(self) -> None:
        """From a freshly opened port to a modem that sends in PDU mode and reports to us."""
        self.wait_for_answer(self.timings.command * 2)
        self.try_at("ATE0")
        self.try_at("AT+CMEE=1")
        self._read_identity()
        self._check_imei()          # before the PIN: never spend our PIN on another SIM
        self.switch_radio_on()      # before the PIN: at CFUN=0 many modules power the SIM off
        self._unlock_sim()
        if not self.identity.iccid:
            self._read_iccid()
        self._check_iccid()
        self.caps.quirks = quirks.detect(self.identity.manufacturer, self.identity.model)
        for command in self.caps.quirks.init_commands:
            self.try_at(command)
        self._send_init_strings()
        self._choose_ussd_form()
        self.at("AT+CMGF=0")
        self._configure_storage()
        self._configure_notifications()
        self._configure_acknowledgement()
        self._read_smsc()
        self.port.forget_boot_urcs()
        self.initialized_at = time.monotonic()

    def _send_init_strings(self) -> None:
        """Seed GSMMODEMINIT/2/3: the operator's own commands, after ours (so they win)."""
        for command in (self.config.gsmmodeminit, self.config.gsmmodeminit2,
                        self.config.gsmmodeminit3):
            if command.strip() and command.strip().upper() != "AT":
                self.try_at(command.strip())

    def wait_for_answer(self, seconds: float) -> None:
        """Poll `AT` until OK: boot garbage, echo and a slow start are normal."""
        deadline = self.clock.monotonic() + seconds
        while True:
            try:
                self.at("AT", self.timings.keepalive)
                return
            except AtCommandError:
                return      # ERROR to AT still proves it is alive and listening
            except AtTimeout:
                if self.clock.monotonic() >= deadline:
                    raise
                self.clock.sleep(0.5)

    def _read_identity(self) -> None:
        self.identity.manufacturer = _first(self.try_at("AT+CGMI"))
        self.identity.model = _first(self.try_at("AT+CGMM"))
        self.identity.revision = _first(self.try_at("AT+CGMR"))
        self.identity.imei = probe.parse_imei(self.try_at("AT+CGSN") or [])
        self.identity.iccid = ""            # read again: the SIM may have been swapped
        log.info("%s: %s %s (IMEI %s)", self.label, self.identity.manufacturer,
                 self.identity.model, self.identity.imei or "unknown")

    def _read_iccid(self) -> None:
        vendor = quirks.detect(self.identity.manufacturer, self.identity.model).iccid_command
        for command in dict.fromkeys((vendor, "AT+CCID")):
            self.identity.iccid = probe.parse_iccid(self.try_at(command) or [])
            if self.identity.iccid:
                return

    def _check_imei(self) -> None:
        expected = self.config.imei
        if expected and self.identity.imei != expected:
            raise WrongModem(f"port answers with IMEI {self.identity.imei or 'unknown'}, "
                             f"slot is configured for {expected} (ports swapped?)")

    def _check_iccid(self) -> None:
        expected = self.config.iccid
        if expected and self.identity.iccid != expected:
            raise WrongModem(f"SIM has ICCID {self.identity.iccid or 'unknown'}, "
                             f"slot is configured for {expected} (SIM or port swapped?)")

    def switch_radio_on(self) -> None:
        """A radio left off keeps the modem off the network and nothing else in init would
        notice: our own AT+CFUN=0 whose AT+CFUN=1 never got through (the modem hung between
        them, and the reset cap then held the ladder), or flight mode left by another program."""
        level = probe.parse_cfun(self.try_at("AT+CFUN?") or [])
        if level is None or level == 1:
            return
        log.warning("%s: radio was off (+CFUN: %d), switching it on", self.label, level)
        self.try_at("AT+CFUN=1", self.timings.cfun)

    def _unlock_sim(self) -> None:
        """CPIN until READY; enter the PIN once (a wrong PIN retried would lock the SIM)."""
        deadline = self.clock.monotonic() + self.timings.sim_ready
        pin_sent = False
        while True:
            state, error = self._pin_state()
            if state == "READY":
                return
            if state == "SIM PIN" and not pin_sent:
                self._enter_pin()
                pin_sent = True
                continue
            if state in ("SIM PUK", "SIM PUK2", "PH-SIM PIN"):
                raise InitFailed(f"SIM needs {state}: unlock it in a phone", fatal=True)
            if self.clock.monotonic() >= deadline:
                raise InitFailed(f"SIM not ready after {self.timings.sim_ready:g}s ({error or state})")
            log.info("%s: SIM not ready yet (%s), waiting", self.label, error or state)
            self.clock.sleep(1.0)

    def _pin_state(self) -> tuple[str, str]:
        try:
            return probe.parse_pin_state(self.at("AT+CPIN?")), ""
        except AtCommandError as exc:
            if exc.kind == "CME" and exc.code in SIM_RETRY_CME | SIM_MISSING_CME:
                return "", f"CME {exc.code}"
            if exc.kind == "ERROR":
                return "", "ERROR"
            raise

    def _enter_pin(self) -> None:
        if not self.config.pincode:
            raise InitFailed("the SIM asks for a PIN and `pincode` is not set", fatal=True)
        if not self.identity.iccid:
            self._read_iccid()      # most modems tell it before the PIN: a swapped SIM is tried
        sim = self.identity.iccid or self.config.name
        if REFUSED_PINS.refused(sim, self.config.pincode):
            raise InitFailed("the SIM refused this `pincode` before; set the right one (not "
                             "sent again: the SIM locks after three)", fatal=True, retry=False)
        try:
            self.at(f'AT+CPIN="{self.config.pincode}"', self.timings.cfun)
            log.info("%s: PIN accepted", self.label)
        except AtCommandError as exc:
            if not _pin_refused(exc) and self._pin_taken_after(exc):
                return
            REFUSED_PINS.remember(sim, self.config.pincode)
            raise InitFailed(f"the SIM refused `pincode` (wrong PIN; {exc}); not retrying so "
                             "the SIM does not lock (PUK)", fatal=True, retry=False) from exc

    def _pin_taken_after(self, exc: AtCommandError) -> bool:
        """A PIN answered otherwise than "incorrect password" (a modem without numeric error
        codes says only ERROR): ask the SIM whether it took it. Anything but READY counts as
        refused: the PIN is never sent twice, or three inits would lock the SIM."""
        try:
            state, _ = self._pin_state()
        except AtCommandError:
            state = ""
        if state in ("SIM PUK", "SIM PUK2"):
            raise InitFailed(f"SIM needs {state}: unlock it in a phone", fatal=True) from exc
        if state == "READY":
            log.info("%s: PIN accepted (the modem answered %s)", self.label, exc.kind)
            return True
        return False

    def _choose_ussd_form(self) -> None:
        command = self.caps.quirks.ussd_text_command
        self.caps.ussd_packed = bool(command) and self.try_at(command) is None
        if self.caps.ussd_packed:
            log.info("%s: USSD requests go packed GSM 7-bit (%s refused)", self.label, command)

    def _configure_storage(self) -> None:
        supported = probe.parse_value_sets(_first(self.try_at("AT+CPMS=?")))
        self.caps.storage = probe.choose_storage(supported)
        self.caps.sr_memory = probe.supports_sr_memory(supported)
        memory = self.caps.storage
        self.try_at(f'AT+CPMS="{memory}","{memory}","{memory}"')

    def _configure_notifications(self) -> None:
        supported = probe.parse_value_sets(_first(self.try_at("AT+CNMI=?")))
        choice = probe.choose_cnmi(supported, self.config.deliveryreport)
        for candidate in _cnmi_fallbacks(choice):
            if self.try_at(candidate.command()) is not None:
                self.caps.cnmi = candidate
                log.info("%s: %s (reports %s)", self.label, candidate.command(),
                         {1: "direct +CDS", 2: "stored in SR, +CDSI"}.get(candidate.ds, "off"))
                return
        log.warning("%s: no AT+CNMI setting accepted; inbound found by polling only", self.label)

    def _configure_acknowledgement(self) -> None:
        """With +CMT (mt=2) an SMS exists only in our hands: AT+CSMS=1 makes the modem wait
        for our AT+CNMA, sent after the store committed, so a crash in between means the
        SMSC delivers it again instead of losing it (27.005 §3.4.4)."""
        cnmi = self.caps.cnmi
        if cnmi is not None and cnmi.mt == 2:
            supported = probe.parse_value_sets(_first(self.try_at("AT+CSMS=?")))
            if supported and 1 in supported[0]:
                self.try_at("AT+CSMS=1")
        self.caps.ack_direct = probe.parse_csms(self.try_at("AT+CSMS?") or []) == 1
        if self.caps.ack_direct:
            log.info("%s: +CSMS=1: +CMT/+CDS acknowledged with +CNMA after commit", self.label)

    def acknowledge(self, ok: bool) -> None:
        """+CNMA for the last +CMT/+CDS; negative (=2) makes the SMSC try again later."""
        self.try_at("AT+CNMA" if ok else "AT+CNMA=2")

    def _read_smsc(self) -> None:
        """CMS 330 right after boot is normal; a configured SMSC is written if none shows."""
        deadline = self.clock.monotonic() + self.timings.smsc_ready
        while True:
            try:
                self.smsc = probe.parse_smsc(self.at("AT+CSCA?"))
            except AtCommandError as exc:
                if not (exc.kind == "CMS" and exc.code == 330) and exc.kind != "ERROR":
                    raise
            if self.smsc or self.clock.monotonic() >= deadline:
                break
            self.clock.sleep(1.0)
        wanted = self.config.smsservicecenteraddress
        if wanted and wanted != self.smsc:
            self.at(f'AT+CSCA="{wanted}",{145 if wanted.startswith("+") else 129}')
            self.smsc = wanted
        if not self.smsc:
            log.warning("%s: SMSC address still unknown; sends may fail with CMS 330", self.label)

    # -- send ------------------------------------------------------------------------------

    def send(self, part: OutPart, validity: float | None) -> int | str:
        """AT+CMGS in PDU mode; returns TP-MR, the number the status report will carry, or
        "" when the modem answered OK without a readable +CMGS line."""
        pdu = encode(part, self.config, validity)
        lines = self.port.command_with_prompt(f"AT+CMGS={gsm.tpdu_length(pdu)}", pdu,
                                              self.config.submittimeout)
        reference = probe.parse_cmgs(lines)
        if reference is None:
            # OK is the answer to an SMS the network took (TS 27.005 §3.5.1); line noise ate
            # its +CMGS line. Sending it again would send it twice; only its report is lost.
            log.warning("%s: AT+CMGS answered OK without a readable +CMGS reference: counted "
                        "as submitted, its delivery report cannot be matched", self.label)
            return ""
        return reference

    # -- health ---------------------------------------------------------------------------

    def health(self, with_operator: bool) -> Health:
        self.at("AT", self.timings.keepalive)
        health = Health()
        for name in ("CREG", "CGREG", "CEREG"):
            lines = self.try_at(f"AT+{name}?")
            health.registration[name] = probe.parse_registration(lines or [], "+" + name)
        health.csq = probe.parse_csq(self.try_at("AT+CSQ") or [])
        if with_operator:
            health.operator = probe.parse_operator(self.try_at("AT+COPS?") or [])
        return health

    # -- storage ---------------------------------------------------------------------------

    def list_stored(self, memory: str) -> list[tuple[int, str]]:
        self._select_memory(memory)
        try:
            return probe.parse_listing(self.at("AT+CMGL=4", self.timings.command * 4))
        finally:
            self._restore_memory(memory)

    def read_stored(self, memory: str, index: int) -> str | None:
        self._select_memory(memory)
        try:
            return probe.parse_read(self.at(f"AT+CMGR={index}"))
        except AtCommandError as exc:
            if exc.kind == "CMS" and exc.code == 321:   # empty slot: already handled
                return None
            raise
        finally:
            self._restore_memory(memory)

    def delete_stored(self, memory: str, index: int) -> None:
        self._select_memory(memory)
        try:
            self.at(f"AT+CMGD={index}")
        finally:
            self._restore_memory(memory)

    def _select_memory(self, memory: str) -> None:
        if memory != self.caps.storage:
            self.at(f'AT+CPMS="{memory}"')

    def _restore_memory(self, memory: str) -> None:
        if memory != self.caps.storage:
            self.try_at(f'AT+CPMS="{self.caps.storage}"')

    # -- USSD --------------------------------------------------------------------------------

    def start_ussd(self, code: str) -> list[Urc]:
        """Send the request; returns URCs that came with the OK (some modems answer inline)."""
        if self.caps.quirks.ussd_charset_gsm:
            self.try_at('AT+CSCS="GSM"')
        if self.config.ussdmethod == "ATD":      # seed USSDMETHOD: dial the code instead
            lines = self.at(f"ATD{code};", self.timings.ussd)
            return [Urc(line) for line in lines if line.startswith("+CUSD:")]
        request = gsm.encode_ussd(code) if self.caps.ussd_packed else code
        lines = self.at(f'AT+CUSD=1,"{request}",15', self.timings.ussd)
        return [Urc(line) for line in lines if line.startswith("+CUSD:")]

    def end_ussd(self) -> None:
        self.try_at("AT+CUSD=2")


def encode(part: OutPart, config, validity: float | None) -> str:
    concat = None
    if part.total > 1:
        concat = (part.concat_ref, part.total, part.seq, 16 if part.concat_16bit else 8)
    return gsm.encode_part(
        part.recipient, text=part.text, data=part.data, encoding=part.encoding, concat=concat,
        udh=part.udh, pid=part.pid, dcs=part.dcs, msg_class=part.msg_class,
        request_status_report=part.want_report and config.deliveryreport,
        validity=validity, smsc=config.smsservicecenteraddress or None)


def _cnmi_fallbacks(choice: probe.CnmiChoice) -> list[probe.CnmiChoice]:
    """The probed choice first, then safer ones: some firmwares lie in their `=?` answer."""
    fallbacks = [choice, probe.CnmiChoice(choice.mode, choice.mt, 0, 1, 0),
                 probe.CnmiChoice(2, 1, 0, 2, 0), probe.CnmiChoice(2, 1, 0, 0, 0),
                 probe.CnmiChoice(1, 1, 0, 0, 0)]
    unique = []
    for item in fallbacks:
        if item not in unique:
            unique.append(item)
    return unique


def _first(lines: list[str] | None) -> str:
    return lines[0].strip() if lines else ""


def _pin_refused(exc: AtCommandError) -> bool:
    """+CME ERROR 16, numeric or verbose (AT+CMEE=2): "incorrect password" (TS 27.007 §9.2)."""
    return exc.kind == "CME" and (exc.code == 16 or "incorrect password" in exc.text.lower())
