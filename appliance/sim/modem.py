"""One simulated 4G modem: answers AT commands on a pty master, in its own thread.

It behaves like the modules in field-notes §3 closely enough that the worker's real code
path runs unchanged: echo until ATE0, PDU-mode AT+CMGS with the `> ` prompt, SIM storage
that survives reboots, +CMTI/+CMT/+CDS/+CDSI URCs per AT+CNMI, USSD in three encodings,
and the faults of field-notes §2 (hang, CMS 500, deregistration, unplug, garbage, slowness,
SIM busy at start). Everything the network does to it is posted to its thread.
"""

from __future__ import annotations

import logging
import os
import random
import re
import select
import threading
import time
from collections import deque

from appliance import gsm
from appliance.gsm.alphabet import pack_septets, to_septets
from appliance.sim import atcompat
from appliance.sim.profiles import PROFILES
from appliance.sim.pty import PtyEnd

log = logging.getLogger("appliance.sim")

# The modem's thread sleeps until the client writes, an action is posted (wake pipe) or its
# next timed event (a delayed answer, the end of a busy spell, an ack deadline) is due. The
# power pin (a gpiozero mock pin, which calls nobody when an output changes) is looked at
# this often while idle; its history records even a shorter cut (_PowerWatch). Polling every
# 5 ms cost ~0.6 % of a core per simulated modem in `make run`, 200 wake-ups a second each.
POWER_POLL_SECONDS = 0.1

FAULTS = ("hang", "cms500", "deregister", "unplug", "garbage", "slow", "simbusy", "noisy_cmgs",
          "none")


# TS 27.007 §9.2.1 texts of the +CME errors the simulator gives
_CME_TEXT = {3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
             14: "SIM busy", 16: "incorrect password", 30: "no network service"}


class SimModem:
    """A modem on the simulated network. `path` is the stable tty link a worker opens."""

    def __init__(self, network, slot: str, number: str, *, link_dir: str, imei: str,
                 iccid: str = "8936700000000000001", profile: str = "quectel", pin: str = "", power_pin: int | None = None,
                 power_active_high: bool = True, pin_factory=None, record: bool = True):
        self.network = network
        self.slot = slot
        self.number = number
        self.imei = imei
        self.iccid = iccid
        self.profile = PROFILES[profile]
        self.pin = pin
        self.path = os.path.join(link_dir, slot)
        self.balance = 12.5
        self.ussd_form = self.profile.ussd_form
        self.slow_seconds = 1.0
        self.replug_seconds = 1.0
        self.boot_seconds = 0.3
        self.cnma_seconds = 5.0                # how long a +CMT/+CDS waits for +CNMA (CSMS=1)
        self._unacked: tuple | None = None     # (kind, pdu, deadline) sent, not yet acked
        self._direct: deque = deque()          # direct deliveries waiting for that ack
        self.memory: dict[str, dict[int, tuple[int, str]]] = {"SM": {}, "ME": {}, "SR": {}}
        self.commands: list[str] = history(record)   # every command line (tests read it)
        self.command_log: list[tuple[float, str]] = history(record)  # (monotonic, line): bench
        self.faults: set[str] = set()
        # how +CME errors look once AT+CMEE asks for them: "numeric" (+CME ERROR: 16),
        # "verbose" (+CME ERROR: incorrect password, as after AT+CMEE=2), or "plain" (ERROR:
        # a module without error codes, whatever CMEE says)
        self.cme_style = "numeric"
        self._hang_after: int | None = None    # submits still answered before a hang
        self._refuse_after: tuple[int, int] | None = None   # (submits answered, then CMS)
        self._power = _PowerWatch(power_pin, power_active_high, pin_factory)
        self._posted: deque = deque()
        self._wake_r, self._wake_w = os.pipe()     # post() wakes the modem's thread
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._output: list[tuple[float, bytes]] = []
        self._input = b""
        self._mr = random.randrange(256)
        self._stop = threading.Event()
        self._port: PtyEnd | None = None
        self._batch: list | None = None        # answers of a `;` chain, sent as one
        self._boot(busy=False)
        self._plug()
        self._thread = threading.Thread(target=self._serve, name=f"sim-{slot}", daemon=True)
        self._thread.start()

    # -- called from other threads ---------------------------------------------

    def inject_fault(self, kind: str) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULTS)}")
        self.post(lambda: self._apply_fault(kind))

    def hang_after_submits(self, count: int) -> None:
        """Answer `count` more AT+CMGS, then hang on the next one (a modem dying
        mid-message: the part in progress gets no answer, as in field-notes §2)."""
        self.post(lambda: setattr(self, "_hang_after", count))

    def refuse_submit_after(self, count: int, cms: int) -> None:
        """Answer `count` more AT+CMGS, then refuse the next one with +CMS ERROR `cms` (a
        part of a long message the network refuses for good)."""
        self.post(lambda: setattr(self, "_refuse_after", (count, cms)))

    def deliver_inbound(self, sender: str, text: str) -> None:
        """An SMS from outside the simulated network; long texts arrive in several parts."""
        self.network.deliver_text(sender, self, text)

    def move_to(self, path: str) -> None:
        """Unplug now; come back after `replug_seconds` behind another link."""
        def move():
            self._unplug(replug=False)
            self.path = path
            self.network.schedule(self.replug_seconds, lambda: self.post(self._replug))
        self.post(move)

    def post(self, action) -> None:
        self._posted.append(action)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"w")
        except (BlockingIOError, OSError):   # full: a wake-up is pending anyway; closed
            pass

    @property
    def tty_path(self) -> str:
        """The current /dev/pts/N behind `path` (changes on every replug)."""
        return self._port.tty_path if self._port else ""

    def reachable(self) -> bool:
        """On the network. A modem whose USB link is gone (unplug fault, re-enumeration)
        but that keeps power still receives; one that reboots or lost power does not."""
        return (self._power.on and not self._rebooting and "hang" not in self.faults
                and self.cfun == 1 and self._registered())

    def close(self) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(timeout=2)
        if self._port:
            self._port.close()
            self._port = None
        if not self._thread.is_alive():
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)

    # -- the modem's own thread -------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:   # a simulator bug must not silently kill the modem
                log.exception("sim %s: internal error", self.slot)

    def _tick(self) -> None:
        self._watch_power()
        self._check_ack_timeout()
        while self._posted:
            self._posted.popleft()()
        self._flush_output()
        data = self._wait_for_input(self._sleep_seconds())
        if data and self._power.on and "hang" not in self.faults:
            self._input += data
        if self._now() >= self._busy_until:
            self._consume_input()

    def _sleep_seconds(self) -> float:
        """Until the next timed event, at most POWER_POLL_SECONDS; 0 with actions posted."""
        if self._posted:
            return 0.0
        now = self._now()
        due = [] if "hang" in self.faults else [at for at, _ in self._output]
        if self._input and self._busy_until > now:      # a command waits for a busy spell
            due.append(self._busy_until)
        if self._unacked is not None:
            due.append(self._unacked[2])
        return min([POWER_POLL_SECONDS] + [max(0.0, at - now) for at in due])

    def _wait_for_input(self, timeout: float) -> bytes:
        if self._port:
            data = self._port.read(timeout, self._wake_r)
        else:
            select.select([self._wake_r], [], [], timeout)
            data = b""
        try:
            os.read(self._wake_r, 4096)         # the wake-ups are spent: actions run next
        except BlockingIOError:
            pass
        return data

    def _watch_power(self) -> None:
        change = self._power.poll()
        if change == "off" and self._port:
            log.info("sim %s: power cut", self.slot)
            self._unplug(replug=False)
        elif change == "on":
            log.info("sim %s: power restored, booting", self.slot)
            self.faults.clear()
            self._boot(busy=False)
            self._plug()

    def _now(self) -> float:
        return self.network.clock.monotonic()

    # -- lifecycle --------------------------------------------------------------

    def _boot(self, busy: bool) -> None:
        """Power-on state. SIM storage (self.memory) survives, like a real SIM."""
        self.echo = True
        self.cmee = 0
        self.cfun = 1
        self.pin_ok = not self.pin
        self.pin_attempts = 3
        self.cnmi = (0, 0, 0, 0, 0)
        self.csms = 0
        self._rebooting = False
        self._give_back_unacked()
        self.cpms = ["SM", "SM", "SM"]
        self.urcport_set = False
        self.huawei_ussd_text = False
        self.reg_urc = {"+CREG": 0, "+CGREG": 0, "+CEREG": 0}
        self.smsc = "+36209300099"
        self._busy_until = 0.0
        self._prompt_length: int | None = None
        self._input = b""
        self._output = []
        now = self._now()
        self._sim_busy_left = 3 if busy else 0
        self._ready_at = now + (1.5 if busy else 0.0)
        atcompat.setup(self)

    def _plug(self) -> None:
        self._port = PtyEnd(self.path)
        self._emit_later(["RDY"])

    def _unplug(self, replug: bool) -> None:
        if self._port:
            self._port.close()
            self._port = None
        if replug:
            self.network.schedule(self.replug_seconds, lambda: self.post(self._replug))

    def _replug(self) -> None:
        if self._port is None and self._power.on:
            self._boot(busy=False)
            self._plug()

    def _reboot(self) -> None:
        """AT+CFUN=1,1: the module resets and re-enumerates on USB."""
        self.faults.discard("cms500")
        self.faults.discard("deregister")
        self._unplug(replug=False)
        self._rebooting = True
        self.network.schedule(self.boot_seconds, lambda: self.post(self._replug))

    def _apply_fault(self, kind: str) -> None:
        log.info("sim %s: fault %s", self.slot, kind)
        if kind == "none":
            self.faults.clear()
            if self._port is None and self._power.on:
                self._replug()
        elif kind == "unplug":
            self._unplug(replug=True)
        elif kind == "simbusy":
            self._unplug(replug=False)
            self._boot(busy=True)
            self._plug()
        else:
            self.faults.add(kind)

    # -- input parsing ------------------------------------------------------------

    def _consume_input(self) -> None:
        while self._input and self._now() >= self._busy_until:
            if self._prompt_length is not None:
                if not self._consume_pdu():
                    return
                continue
            match = re.search(rb"[\r\n]", self._input)
            if not match:
                return
            raw, self._input = self._input[:match.start()], self._input[match.end():]
            line = raw.decode("ascii", errors="replace").strip()
            if not line:
                continue
            if self.echo:
                self._write(raw + b"\r")
            self.commands.append(line)
            self.command_log.append((time.monotonic(), line))
            self._command(line)

    def _consume_pdu(self) -> bool:
        for end_byte in (b"\x1a", b"\x1b"):
            index = self._input.find(end_byte)
            if index >= 0:
                payload, self._input = self._input[:index], self._input[index + 1:]
                length, self._prompt_length = self._prompt_length, None
                if end_byte == b"\x1a":
                    self._submit(payload.decode("ascii", errors="replace").strip(), length)
                else:
                    self._reply([])
                return True
        return False

    # -- commands -------------------------------------------------------------------

    def _command(self, line: str) -> None:
        chain = atcompat.split_chain(line)
        if len(chain) > 1:
            return self._chained(chain)
        upper = line.upper()
        if self.cmgf == 1 and atcompat.PDU_ONLY.fullmatch(upper):
            return self._cms(302)
        for pattern, handler in _HANDLERS:
            match = re.fullmatch(pattern, upper)
            if match:
                handler(self, line, match)
                return
        self._error()

    def _chained(self, commands: list[str]) -> None:
        """`AT+A;+B`: every answer's lines, then one final result (the first failure's)."""
        self._batch = []
        try:
            for command in commands:
                self._command(command)
                if self._batch and self._batch[-1][1] != "OK":
                    break
        finally:
            batch, self._batch = self._batch, None
        lines = [line for answer, _ in batch for line in answer]
        finals = [final for _, final in batch if final != "OK"]
        self._reply(lines, finals[0] if finals else "OK")

    def _at(self, line, match):
        self._reply([])

    def _echo(self, line, match):
        self.echo = match.group(1) == "1"
        self._reply([])

    def _identity(self, line, match):
        self._reply([self.profile.manufacturer, self.profile.model,
                     f"Revision: {self.profile.revision}"])

    def _manufacturer(self, line, match):
        self._reply([self.profile.manufacturer])

    def _model(self, line, match):
        self._reply([self.profile.model])

    def _revision(self, line, match):
        self._reply([self.profile.revision])

    def _imei(self, line, match):
        self._reply([self.imei])

    def _iccid(self, line, match):
        command = line.strip().upper()
        own = self.profile.iccid_command.upper()
        if command == own and own == "AT^ICCID?":
            return self._reply([f"^ICCID: {_swapped_nibbles(self.iccid)}"])
        if command == own or (command == "AT+CCID" and own != "AT^ICCID?"):
            prefix = {"AT+QCCID": "+QCCID", "AT+CICCID": "+ICCID", "AT#CCID": "#CCID"}
            return self._reply([f"{prefix.get(command, '+CCID')}: {self.iccid}"])
        self._error()

    def _cmee(self, line, match):
        self.cmee = int(match.group(1))
        self._reply([])

    def _cpin_query(self, line, match):
        if self._sim_busy_left > 0:
            self._sim_busy_left -= 1
            return self._cme(14)
        if self.pin_attempts <= 0:
            return self._reply(["+CPIN: SIM PUK"])
        self._reply(["+CPIN: READY" if self.pin_ok else "+CPIN: SIM PIN"])

    def _cpin_enter(self, line, match):
        given = line.split("=", 1)[1].split(",")[0].strip().strip('"')
        if self.pin_ok:
            return self._reply([])
        if given != self.pin:
            self.pin_attempts -= 1
            return self._cme(16)
        self.pin_ok = True
        self._ready_at = max(self._ready_at, self._now() + 0.2)
        self._reply([])

    def _cfun_query(self, line, match):
        self._reply([f"+CFUN: {self.cfun}"])

    def _cfun_set(self, line, match):
        level, reset = int(match.group(1)), match.group(2)
        if reset == "1":
            self._reply([])
            self._reboot()
            return
        if level == 0:
            self.faults.discard("deregister")
            self.faults.discard("cms500")
        self.cfun = 1 if level == 1 else 0
        self._reply([])

    def _reg_query(self, line, match):
        name = "+" + match.group(1)
        self._reply([f"{name}: {self.reg_urc[name]},{self._registration()}"])

    def _reg_set(self, line, match):
        self.reg_urc["+" + match.group(1)] = int(match.group(2))
        self._reply([])

    def _csq(self, line, match):
        self._reply(["+CSQ: 21,99" if self.cfun == 1 else "+CSQ: 99,99"])

    def _cops(self, line, match):
        self._reply(['+COPS: 0,0,"SimTel",7' if self._registered() else "+COPS: 0"])

    def _ok(self, line, match):
        self._reply([])

    def _csca_query(self, line, match):
        if self._now() < self._ready_at:
            return self._cms(330)
        self._reply([f'+CSCA: "{self.smsc}",145'])

    def _csca_set(self, line, match):
        self.smsc = line.split("=", 1)[1].split(",")[0].strip().strip('"')
        self._reply([])

    def _cnmi_test(self, line, match):
        self._reply([self.profile.cnmi_support])

    def _cnmi_query(self, line, match):
        self._reply(["+CNMI: " + ",".join(str(value) for value in self.cnmi)])

    def _cnmi_set(self, line, match):
        values = [int(value) for value in match.group(1).split(",") if value.strip()]
        values += [0] * (5 - len(values))
        from appliance.modem.probe import parse_value_sets
        allowed = parse_value_sets(self.profile.cnmi_support)
        if any(value not in group for value, group in zip(values, allowed)):
            return self._error()
        self.cnmi = tuple(values[:5])
        self._reply([])

    def _cpms_test(self, line, match):
        self._reply([self.profile.cpms_support])

    def _cpms_set(self, line, match):
        names = [name.strip().strip('"') for name in line.split("=", 1)[1].split(",")]
        if any(name not in self.memory and name != "MT" for name in names):
            return self._cms(302)
        for position, name in enumerate(names[:3]):
            self.cpms[position] = "SM" if name == "MT" else name
        counts = [f"{len(self.memory[name])},{255 if name != 'SM' else 50}" for name in self.cpms]
        self._reply(["+CPMS: " + ",".join(counts)])

    def _cmgl(self, line, match):
        wanted = int(match.group(1))
        memory = self.memory[self.cpms[0]]
        lines = []
        for index in sorted(memory):
            stat, pdu = memory[index]
            if wanted == 4 or wanted == stat:
                lines += [f"+CMGL: {index},{stat},,{gsm.tpdu_length(pdu)}", pdu]
                memory[index] = (1 if stat == 0 else stat, pdu)
        self._reply(lines)

    def _cmgr(self, line, match):
        memory = self.memory[self.cpms[0]]
        index = int(match.group(1))
        if index not in memory:
            return self._cms(321)
        stat, pdu = memory[index]
        memory[index] = (1 if stat == 0 else stat, pdu)
        self._reply([f"+CMGR: {stat},,{gsm.tpdu_length(pdu)}", pdu])

    def _cmgd(self, line, match):
        memory = self.memory[self.cpms[0]]
        index, flag = int(match.group(1)), int(match.group(2) or 0)
        if flag == 4:
            memory.clear()
        elif index in memory:
            del memory[index]
        self._reply([])

    def _cmgs(self, line, match):
        self._prompt_length = int(match.group(1))
        self._write(b"\r\n> ")

    def _cusd(self, line, match):
        mode = int(match.group(1))
        if mode == 2 or match.group(2) is None:
            return self._reply([])
        if not self._registered():
            return self._cme(30)
        code = match.group(2)
        if self.profile.huawei_ussd and not self.huawei_ussd_text:
            code = _unpacked_request(code)
            if code is None:          # Huawei in packed mode: a plain-text request fails
                return self._error()
        self._reply([])
        self.network.schedule(0.2, lambda: self.post(lambda: self._ussd_answer(code)))

    def _csms_test(self, line, match):
        self._reply([self.profile.csms_support])

    def _csms_query(self, line, match):
        self._reply([f"+CSMS: {self.csms},1,1,1"])

    def _csms_set(self, line, match):
        from appliance.modem.probe import parse_value_sets
        service = int(match.group(1))
        if service not in parse_value_sets(self.profile.csms_support)[0]:
            return self._cms(303)
        self.csms = service
        self._reply(["+CSMS: 1,1,1"])

    def _cnma(self, line, match):
        if self._unacked is None:
            return self._cms(340)               # no +CNMA acknowledgement expected
        kind, pdu_hex, _ = self._unacked
        self._unacked = None
        self._reply([])
        if match.group(1) == "2":               # negative: the SMSC keeps it and retries
            self._redeliver(kind, pdu_hex)
        self._next_direct()

    def _urcport(self, line, match):
        if '"URCPORT"' in line.upper():
            self.urcport_set = '"USBAT"' in line.upper()
        self._reply([])

    def _ussdmode(self, line, match):
        if self.profile.ussdmode_refused:
            return self._error()
        self.huawei_ussd_text = match.group(1) == "0"
        self._reply([])

    # -- SMS submit, inbound, reports, USSD ----------------------------------------

    def _submit(self, pdu_hex: str, length: int) -> None:
        try:
            submit = gsm.decode(pdu_hex, has_smsc=True)
            valid_length = gsm.tpdu_length(pdu_hex) == length
        except gsm.PduError:
            submit, valid_length = None, False
        if submit is None or submit.type != "submit" or not valid_length:
            return self._cms(304)
        if self._hang_after is not None:
            if self._hang_after == 0:
                self._hang_after = None
                log.info("sim %s: hanging in the middle of a submit", self.slot)
                return self.faults.add("hang")
            self._hang_after -= 1
        if self._refuse_after is not None:
            left, cms = self._refuse_after
            self._refuse_after = (left - 1, cms) if left else None
            if not left:
                return self._cms(cms)
        if "cms500" in self.faults:
            return self._cms(500)
        if self._now() < self._ready_at:
            return self._cms(330)
        if not self._registered():
            return self._cms(331)
        refusal = self.network.refusal(submit.number)
        if refusal is not None:
            return self._cms(refusal)
        self._mr = (self._mr + 1) % 256
        reference = self._mr
        seconds = self.network.send_seconds * (2 if "slow" in self.faults else 1)
        self._busy_until = self._now() + seconds
        # noisy_cmgs: line noise garbles the +CMGS line; the SMS left and the OK arrives
        cmgs = "+CMGS: \x85\x92" if "noisy_cmgs" in self.faults else f"+CMGS: {reference}"
        self._emit_later([cmgs, "OK"], delay=seconds)
        self.network.schedule(seconds, lambda: self.network.submitted(self, submit, reference))

    def receive_deliver(self, pdu_hex: str) -> None:
        """Network -> modem (runs on this thread): store and announce, or deliver direct."""
        mode_mt = self.cnmi[1]
        if mode_mt == 2 and self._can_route():
            self._route_direct("+CMT", pdu_hex)
            return
        memory_name = self.cpms[2]
        index = self._store(memory_name, 0, pdu_hex)
        if mode_mt in (1, 3) and self._can_route():
            self._emit_later([f'+CMTI: "{memory_name}",{index}'])

    def receive_report(self, pdu_hex: str) -> None:
        """ds=1: +CDS; ds=2: into SR with +CDSI. A report that cannot be routed (no USB
        link, ds=0 after a reboot) is kept in SR where the modem has SR, else dropped."""
        ds = self.cnmi[3]
        if ds == 1 and self._can_route():
            self._route_direct("+CDS", pdu_hex)
        elif ds == 2 or self._keeps_reports():
            index = self._store("SR", 0, pdu_hex)
            if ds == 2 and self._can_route():
                self._emit_later([f'+CDSI: "{self.profile.cdsi_memory}",{index}'])
        else:
            log.info("sim %s: report dropped (not routable, no SR memory)", self.slot)

    # -- direct routing and +CNMA (27.005 §3.4.4) ----------------------------------

    def _route_direct(self, kind: str, pdu_hex: str) -> None:
        if self.csms != 1:
            self._emit_direct(kind, pdu_hex)     # phase 2: the modem acknowledged it itself
            return
        self._direct.append((kind, pdu_hex))
        self._next_direct()

    def _next_direct(self) -> None:
        if self._unacked is None and self._direct:
            kind, pdu_hex = self._direct.popleft()
            self._unacked = (kind, pdu_hex, self._now() + self.cnma_seconds)
            self._emit_direct(kind, pdu_hex)

    def _emit_direct(self, kind: str, pdu_hex: str) -> None:
        length = gsm.tpdu_length(pdu_hex)
        self._emit_later([f"+CMT: ,{length}" if kind == "+CMT" else f"+CDS: {length}", pdu_hex])

    def _check_ack_timeout(self) -> None:
        """No +CNMA in time: routing to the TE stops (mt=ds=0) and the SMSC retries."""
        if self._unacked is not None and self._now() >= self._unacked[2]:
            log.info("sim %s: no +CNMA for %s; routing to TE disabled", self.slot,
                     self._unacked[0])
            mode, _, bm, _, bfr = self.cnmi
            self.cnmi = (mode, 0, bm, 0, bfr)
            self._give_back_unacked()

    def _give_back_unacked(self) -> None:
        pending = ([self._unacked[:2]] if self._unacked else []) + list(self._direct)
        self._unacked = None
        self._direct.clear()
        for kind, pdu_hex in pending:
            self._redeliver(kind, pdu_hex)

    def _redeliver(self, kind: str, pdu_hex: str) -> None:
        receive = self.receive_deliver if kind == "+CMT" else self.receive_report
        self.network.retry_later(self, lambda: receive(pdu_hex))

    def _store(self, memory_name: str, stat: int, pdu_hex: str) -> int:
        memory = self.memory[memory_name]
        index = next(i for i in range(len(memory) + 1) if i not in memory)
        memory[index] = (stat, pdu_hex)
        return index

    def _ussd_answer(self, code: str) -> None:
        text = self.network.ussd_text(self, code)
        if text is None:
            self._emit_later(["+CUSD: 4"])
            return
        form = "text" if self.profile.huawei_ussd and self.huawei_ussd_text else self.ussd_form
        payload, dcs = _ussd_payload(text, form)
        self._emit_later([f'+CUSD: 0,"{payload}",{dcs}'])

    # -- output -----------------------------------------------------------------------

    def _reply(self, lines: list[str], final: str = "OK") -> None:
        if self._batch is not None:
            self._batch.append((lines, final))
            return
        self._emit_later(lines + [final], delay=self.slow_seconds if "slow" in self.faults else 0)

    def _error(self) -> None:
        self._reply([], "ERROR")

    def _cme(self, code: int) -> None:
        if not self.cmee or self.cme_style == "plain":
            return self._reply([], "ERROR")
        text = _CME_TEXT.get(code, "unknown") if self.cme_style == "verbose" else code
        self._reply([], f"+CME ERROR: {text}")

    def _cms(self, code: int) -> None:
        self._reply([], f"+CMS ERROR: {code}")

    def _emit_later(self, lines: list[str], delay: float = 0.0) -> None:
        data = b"".join(b"\r\n" + line.encode("ascii", errors="replace") + b"\r\n"
                        for line in lines)
        if "garbage" in self.faults:
            data = _garbage() + data
        self._output.append((self._now() + delay, data))

    def _flush_output(self) -> None:
        if not self._output or "hang" in self.faults:
            return
        now = self._now()
        due = [item for item in self._output if item[0] <= now]
        self._output = [item for item in self._output if item[0] > now]
        for _, data in sorted(due, key=lambda item: item[0]):
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._port and self._power.on:
            self._port.write(data)

    # -- state helpers ----------------------------------------------------------------

    def _registered(self) -> bool:
        return self._registration() in (1, 5)

    def _registration(self) -> int:
        if self.cfun != 1 or not self.pin_ok:
            return 0
        if "deregister" in self.faults or self._now() < self._ready_at:
            return 2
        return 1

    def _can_route(self) -> bool:
        return self._port is not None and self._urcs_visible()

    def _keeps_reports(self) -> bool:
        return '"SR"' in self.profile.cpms_support

    def _urcs_visible(self) -> bool:
        return not (self.profile.urcs_need_urcport and not self.urcport_set)


class _Unrecorded(list):
    """A history that keeps nothing (SimNetwork(record=False))."""

    def append(self, item) -> None:
        pass


def history(record: bool) -> list:
    return [] if record else _Unrecorded()


class _PowerWatch:
    """Reads the modem's power pin as the module would: a cut, then power back = boot."""

    def __init__(self, pin_number, active_high: bool, pin_factory):
        self._pin = pin_factory.pin(pin_number) if pin_number is not None and pin_factory else None
        self._off_level = bool(active_high)
        self._seen = 0
        self._was_cut = False
        self.on = True

    def poll(self) -> str | None:
        if self._pin is None:
            return None
        states = list(self._pin.states)
        new, self._seen = states[self._seen:], len(states)
        if any(bool(change.state) == self._off_level for change in new) and self.on:
            self._was_cut = True
        now_on = bool(self._pin.state) != self._off_level
        if self._was_cut and self.on:
            self.on = False
            return "off"
        if now_on and not self.on:
            self.on = True
            self._was_cut = False
            return "on"
        return None


def _ussd_payload(text: str, form: str) -> tuple[str, int]:
    if form == "ucs2":
        return text.encode("utf-16-be").hex().upper(), 72
    if form == "gsm7":
        return pack_septets(to_septets(text)).hex().upper(), 15
    return text, 15


def _swapped_nibbles(iccid: str) -> str:
    """EF_ICCID as stored on the SIM (and as Huawei's ^ICCID prints it): BCD, nibbles swapped."""
    padded = iccid + "F" * (len(iccid) % 2)
    return "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))


def _unpacked_request(code: str) -> str | None:
    """A USSD request as Huawei wants it in packed mode (GSM 7-bit hex), or None."""
    if not code or len(code) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", code):
        return None
    return gsm.decode_ussd(code, 15)


def _garbage() -> bytes:
    noise = bytes(random.choice(range(0x80, 0x100)) for _ in range(random.randint(3, 20)))
    return b"\r\n" + noise + b"\r\n"


_HANDLERS = [
    (r"AT", SimModem._at),
    (r"ATE([01]?)", SimModem._echo),
    (r"ATI", SimModem._identity),
    (r"AT\+CGMI|AT\+GMI", SimModem._manufacturer),
    (r"AT\+CGMM|AT\+GMM", SimModem._model),
    (r"AT\+CGMR|AT\+GMR", SimModem._revision),
    (r"AT\+CGSN|AT\+GSN|AT\+CGSN=1", SimModem._imei),
    (r"AT\+CMEE=(\d)", SimModem._cmee),
    (r"AT\+CCID|AT\+QCCID|AT\+CICCID|AT\^ICCID\?|AT#CCID", SimModem._iccid),
    (r"AT\+CPIN\?", SimModem._cpin_query),
    (r"AT\+CPIN=.*", SimModem._cpin_enter),
    (r"AT\+CFUN\?", SimModem._cfun_query),
    (r"AT\+CFUN=(\d)(?:,(\d))?", SimModem._cfun_set),
    (r"AT\+(CREG|CGREG|CEREG)\?", SimModem._reg_query),
    (r"AT\+(CREG|CGREG|CEREG)=(\d)", SimModem._reg_set),
    (r"AT\+CSQ", SimModem._csq),
    (r"AT\+COPS\?", SimModem._cops),
    (r"AT\+CMGF=[01]|AT\+CSCS=.*|AT\+CSMP=.*|AT\^CURC=.*|AT\+CMMS=.*", SimModem._ok),
    (r"AT\+CSMS=\?", SimModem._csms_test),
    (r"AT\+CSMS\?", SimModem._csms_query),
    (r"AT\+CSMS=(\d)", SimModem._csms_set),
    (r"AT\+CNMA(?:=([012]))?", SimModem._cnma),
    (r"AT\+CSCA\?", SimModem._csca_query),
    (r"AT\+CSCA=.*", SimModem._csca_set),
    (r"AT\+CNMI=\?", SimModem._cnmi_test),
    (r"AT\+CNMI\?", SimModem._cnmi_query),
    (r"AT\+CNMI=([\d,]+)", SimModem._cnmi_set),
    (r"AT\+CPMS=\?", SimModem._cpms_test),
    (r"AT\+CPMS=.+", SimModem._cpms_set),
    (r"AT\+CMGL=(\d)", SimModem._cmgl),
    (r"AT\+CMGR=(\d+)", SimModem._cmgr),
    (r"AT\+CMGD=(\d+)(?:,(\d))?", SimModem._cmgd),
    (r"AT\+CMGS=(\d+)", SimModem._cmgs),
    (r'AT\+CUSD=(\d)(?:,"([^"]*)"(?:,\d+)?)?', SimModem._cusd),
    (r"AT\+QURCCFG=.*", SimModem._urcport),
    (r"AT\^USSDMODE=(\d)", SimModem._ussdmode),
]

# The start-up commands of other AT clients first: they answer `?`/`=?` forms that the
# catch-all patterns above (AT\+CSCS=.*, AT\+CMGF=[01]) would otherwise swallow.
_HANDLERS[:0] = atcompat.HANDLERS
