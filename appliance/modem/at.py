"""AT transport over one serial port: command/response framing, the `> ` prompt, URCs.

The only module that imports pyserial. One thread (the modem worker) owns an AtPort;
nothing here starts threads. Lines that arrive while no command waits for them, or that
carry a URC prefix the running command did not ask for, are queued as `Urc`s. After a
command timed out, the next one first resyncs (`AT`, then quiet), so a late answer is
never read as another command's.
"""

from __future__ import annotations

import logging
import re
import termios
import time
from collections import deque
from dataclasses import dataclass

import serial

from appliance.errors import ApplianceError

log = logging.getLogger("appliance.modem")

CTRL_Z = b"\x1a"
# A healthy modem answers AT+CMGS in 1-5 s (field-notes); within the channel's 10 s stop.
STOP_GRACE_SECONDS = 5.0
ESC = b"\x1b"

# URCs whose text continues on the next line (the PDU).
_TWO_LINE_URCS = ("+CMT:", "+CDS:")
_URC_PREFIXES = (
    "+CMTI:", "+CMT:", "+CDS:", "+CDSI:", "+CUSD:", "+CREG:", "+CGREG:", "+CEREG:",
    "+CPIN:", "+CFUN:", "+QIND:", "+QUSIM:", "+CRING:", "+CLIP:", "+CIEV:", "+PACSP",
    "^BOOT:", "^RSSI:", "^MODE:", "^SRVST:", "^SIMST:", "^HCSQ:", "^RSSILVL:", "#QSS:",
)
_URC_WORDS = {"RING", "RDY", "SMS DONE", "PB DONE", "SMS Ready", "Call Ready", "NO CARRIER",
              "POWERED DOWN", "NORMAL POWER DOWN"}
BOOT_URCS = {"RDY", "^BOOT", "SMS DONE", "PB DONE", "SMS Ready", "Call Ready", "+CPIN: READY",
             "+CFUN: 1", "+QUSIM: 1", "+CPIN: NOT READY"}
_FINAL_OK = {"OK"}
_FINAL_ERROR = re.compile(r"^(ERROR|\+CME ERROR: ?(.*)|\+CMS ERROR: ?(.*)|COMMAND NOT SUPPORT|TOO MANY PARAMETERS)$")
_LINE_END = re.compile(rb"[\r\n]")
_TEXT_LINE_END = re.compile(rb"\r\n|\r|\n")     # one line break inside a quoted text
_SECRET_COMMANDS = re.compile(r'^(AT\+CPIN=|AT\+CLCK=|AT\+CPWD=)(.*)$', re.IGNORECASE)
# After a timeout: this long without a byte after a final result means the late answers
# are all in (a modem answers its commands in order, so they come before our AT's OK).
RESYNC_QUIET_SECONDS = 0.3
# The longest line a modem sends is a few KiB (a +COPS=? list, a UCS-2 +CUSD menu); a port
# that sends more without a line end is not speaking AT (a GPS or diagnostics port picked by
# mistake, line noise). Unbounded, its bytes piled up in the buffer, each read copying all of
# them: memory and CPU without end. Past MAX_PENDING_BYTES the run without a line end is
# dropped (keeping its last bytes, where a `> ` prompt would be).
MAX_PENDING_BYTES = 64 * 1024
MAX_LINE_BYTES = 16 * 1024
# A USSD text is at most 182 characters; spread over lines (an operator's menu) it takes a
# dozen. A +CUSD whose closing quote has not come within this many lines never will.
MAX_QUOTED_LINES = 32
_NO_CLOSING_QUOTE = object()


class PortGone(ApplianceError):
    """The serial device vanished or failed (unplugged, re-enumerating, closed)."""


class PortBusy(PortGone):
    """Another process holds the port (ModemManager, a CLI tool, a second daemon)."""


class Stopping(BaseException):
    """The worker was asked to stop while waiting for the modem. A BaseException, like
    asyncio's CancelledError: the handlers that keep a worker alive through a modem's
    trouble (`except Exception`) must let it through."""


def _never() -> bool:
    return False


class AtTimeout(ApplianceError):
    """No final result in time: the modem may hang. Keeps what it had read."""

    def __init__(self, command: str, lines: list[str]):
        super().__init__(f"no answer to {redact(command)}")
        self.command = command
        self.lines = lines


class AtCommandError(ApplianceError):
    """A final error result. `kind` is ERROR, CME or CMS; `code` the number when given."""

    def __init__(self, command: str, kind: str, code: int | None, text: str = ""):
        detail = code if code is not None else ("" if text == kind else text)
        super().__init__(f"{redact(command)}: {kind} {detail}".strip())
        self.command = command
        self.kind = kind
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Urc:
    line: str
    body: str = ""    # the PDU line of +CMT / +CDS


def is_port_loss(exc: BaseException) -> bool:
    """A failure of the device itself, however it surfaced: our PortGone, or pyserial's and
    the OS's own errors from a call that escaped the framing (a pty whose other end closed
    reports readiness and returns no data)."""
    return isinstance(exc, (PortGone, serial.SerialException, OSError, termios.error))


def redact(command: str) -> str:
    """Commands as they may appear in logs: PINs and passwords replaced."""
    match = _SECRET_COMMANDS.match(command)
    return f"{match.group(1)}****" if match else command


def open_port(url: str, baudrate: int = 115200, *, exclusive: bool = True) -> "AtPort":
    """Open a device path or any pyserial URL. `exclusive` keeps a second process off it."""
    try:
        kwargs = {"exclusive": True} if exclusive and not _is_url(url) else {}
        link = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=5,
                                     **kwargs)
    except (serial.SerialException, OSError, ValueError) as exc:
        if "lock" in str(exc).lower() or "busy" in str(exc).lower():
            raise PortBusy(f"{url} is held by another process ({exc}); stop ModemManager "
                           f"or the other program") from exc
        raise PortGone(f"cannot open {url}: {exc}") from exc
    return AtPort(link)


def _is_url(url: str) -> bool:
    return "://" in url


class AtPort:
    """Framing over an open pyserial object (anything with read/write/in_waiting/close)."""

    def __init__(self, link):
        self.link = link
        # () -> bool: stop waiting (Stopping) instead of sitting out an AT+CMGS or a
        # hung modem's timeout; the worker sets its stop event's is_set
        self.cancelled = _never
        # A stop does not cut the wait for an AT+CMGS answer short at once: the SMS may be
        # leaving, and a part given back unanswered is sent again after the restart (a
        # duplicate on every `systemctl restart` under load). It waits up to this long more.
        self._stop_grace = 0.0
        self._grace_ends: float | None = None
        self._buffer = b""
        self._urcs: deque[Urc] = deque()
        self.noise_lines = 0
        self.dropped_bytes = 0       # no modem line (MAX_PENDING_BYTES), said once per port
        self._said_dropped = False
        self._answer_owed = False    # a command timed out: its answer may still come

    # -- public ---------------------------------------------------------------

    def command(self, command: str, timeout: float = 5.0) -> list[str]:
        """Send one command; return its information lines; raise on an error result."""
        self._resync_if_owed(command, timeout)
        self.drain()
        self._write(command.encode("ascii") + b"\r")
        return self._collect(command, time.monotonic() + timeout)

    def command_with_prompt(self, command: str, payload: str, timeout: float) -> list[str]:
        """AT+CMGS style: send the command, wait for `> `, send payload + Ctrl-Z."""
        self._resync_if_owed(command, timeout)
        self.drain()
        self._write(command.encode("ascii") + b"\r")
        deadline = time.monotonic() + min(timeout, 10.0)
        if not self._wait_prompt(command, deadline):
            self._write(ESC)   # leave the modem in command mode, not in text entry
            self._answer_owed = True
            raise AtTimeout(command, [])
        self._write(payload.encode("ascii") + CTRL_Z)
        self._stop_grace = STOP_GRACE_SECONDS
        try:
            return self._collect(command, time.monotonic() + timeout)
        finally:
            self._stop_grace, self._grace_ends = 0.0, None

    def read_urcs(self, timeout: float = 0.0) -> list[Urc]:
        """URCs already queued plus any arriving within `timeout` seconds."""
        self._fill_available()
        self._queue_arriving(timeout)
        return self._take_urcs()

    def _queue_arriving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline)
            if line is None:
                break
            if self._is_urc(line, None) or _is_final(line):
                self._queue_urc(line, deadline + 1.0)
            elif line:
                log.debug("stray line %r", line)

    def _resync_if_owed(self, command: str, timeout: float) -> None:
        """After a timeout the late answer would be read as the next command's: an
        AT+CMGR answered with the SMS of the index asked before, then AT+CMGD of an index
        never read, is an SMS lost. So first an AT, read up to its final result and a quiet
        spell; what came before it belonged to earlier commands (URCs among it are kept)."""
        if not self._answer_owed:
            return
        self._write(b"AT\r")
        deadline = time.monotonic() + timeout
        finals, dropped, quiet_until = 0, 0, None
        while True:
            line = self._next_line(min(deadline, quiet_until or deadline))
            if line is None:
                if finals:
                    break
                raise AtTimeout(command, [])     # still silent: the modem may hang
            if not line or _is_echo(line, "AT"):
                continue
            if _is_final(line):
                finals += 1
                quiet_until = time.monotonic() + RESYNC_QUIET_SECONDS
            elif self._is_urc(line, None):
                self._queue_urc(line, deadline)
            else:
                dropped += 1
        self._answer_owed = False
        if finals > 1 or dropped:
            log.info("late answer dropped before %s: %d lines, %d results", redact(command),
                     dropped, finals - 1)

    def drain(self) -> None:
        """Read what is pending so a late answer never ends the next command; URCs among
        it stay queued for the worker (dropping them here once lost +CDS reports)."""
        self._fill_available()
        self._queue_arriving(0.0)

    def fileno(self) -> int | None:
        """The descriptor to wait on for the modem's next line; None for a pyserial URL
        without one (loop://)."""
        try:
            fd = self.link.fileno()
        except (AttributeError, OSError, ValueError, serial.SerialException):
            return None
        return fd if isinstance(fd, int) and fd >= 0 else None

    def has_pending(self) -> bool:
        """URCs queued, or whole lines in the buffer (read with a command's answer): the
        worker must handle them before it sleeps on the port, which has nothing new."""
        self._queue_arriving(0.0)
        return bool(self._urcs)

    def read_ready(self) -> None:
        """The port polled ready: read it. Ready with nothing to read is how a tty says its
        device is gone; pyserial raises for it, and this raises PortGone."""
        self._fill()

    def pending_urcs(self) -> list[Urc]:
        return self._take_urcs()

    def forget_boot_urcs(self) -> None:
        """RDY, SMS DONE and friends read during init describe the boot we just handled."""
        self._urcs = deque(urc for urc in self._urcs if urc.line not in BOOT_URCS)

    def close(self) -> None:
        try:
            self.link.close()
        except (serial.SerialException, OSError):
            pass

    # -- framing --------------------------------------------------------------

    def _collect(self, command: str, deadline: float) -> list[str]:
        expected = expected_prefix(command)
        lines: list[str] = []
        while True:
            line = self._next_line(deadline)
            if line is None:
                self._answer_owed = True
                raise AtTimeout(command, lines)
            if not line or _is_echo(line, command):
                continue
            if line in _FINAL_OK:
                return lines
            error = _FINAL_ERROR.match(line)
            if error:
                raise _command_error(command, line, error)
            if self._is_urc(line, expected):
                self._queue_urc(line, deadline)
            else:
                lines.append(line)

    def _wait_prompt(self, command: str, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self._take_prompt():
                return True
            if self.cancelled():
                raise Stopping(command)
            line = self._pop_line()
            if line is not None:
                if _FINAL_ERROR.match(line):
                    raise _command_error(command, line, _FINAL_ERROR.match(line))
                if line and self._is_urc(line, None):
                    self._queue_urc(line, deadline)
                continue
            self._fill()
        return self._take_prompt()

    def _take_prompt(self) -> bool:
        stripped = self._buffer.lstrip(b"\r\n")
        if stripped.startswith(b">"):
            self._buffer = stripped[1:].lstrip(b" ")
            return True
        return False

    def _next_line(self, deadline: float) -> str | None:
        """The next non-noise line, or None when the deadline passes first."""
        while True:
            line = self._pop_line()
            if line is not None:
                if _is_noise(line):
                    self.noise_lines += 1
                    continue
                return line
            if time.monotonic() >= deadline:
                return None
            if self.cancelled() and self._stop_now():
                raise Stopping()
            self._fill()

    def _stop_now(self) -> bool:
        """Asked to stop: at once, or after the grace of an AT+CMGS answer (see __init__)."""
        if not self._stop_grace:
            return True
        if self._grace_ends is None:
            self._grace_ends = time.monotonic() + self._stop_grace
        return time.monotonic() >= self._grace_ends

    def _pop_line(self) -> str | None:
        match = _LINE_END.search(self._buffer)
        if not match:
            return None
        raw = self._buffer[:match.start()]
        if raw.lstrip().startswith(b"+CUSD:") and raw.count(b'"') % 2:
            quoted = self._pop_quoted_lines()
            if quoted is not _NO_CLOSING_QUOTE:
                return quoted
        self._buffer = self._buffer[match.end():]
        return raw.decode("ascii", errors="replace").strip()

    def _pop_quoted_lines(self):
        """A +CUSD answer whose text spans lines (operators send menus and balances on
        several): its lines up to the closing quote, joined with newlines; None until they
        have all arrived. Read line by line, it was taken for a refusal. Past
        MAX_QUOTED_LINES without the quote, _NO_CLOSING_QUOTE: the line is read alone (each
        read scanned every line after it again, 33 s of CPU for 80 KiB of them)."""
        lines, at, quotes = [], 0, 0
        for match in _TEXT_LINE_END.finditer(self._buffer):
            line = self._buffer[at:match.start()]
            lines.append(line)
            quotes += line.count(b'"')
            at = match.end()
            if quotes % 2 == 0:
                self._buffer = self._buffer[at:]
                return b"\n".join(lines).decode("ascii", errors="replace").strip()
            if len(lines) >= MAX_QUOTED_LINES:
                return _NO_CLOSING_QUOTE
        return None

    def _fill_available(self) -> None:
        """Take what the port already holds, without waiting."""
        try:
            waiting = self.link.in_waiting
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            raise PortGone(str(exc)) from exc
        if waiting:
            self._fill()

    def _fill(self) -> None:
        try:
            chunk = self.link.read(max(1, self.link.in_waiting))
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            raise PortGone(str(exc)) from exc
        self._buffer += chunk
        if len(self._buffer) > MAX_PENDING_BYTES:
            self._shed()

    def _shed(self) -> None:
        """Drops what cannot be a modem's line (MAX_PENDING_BYTES): a run without a line end,
        or else a +CUSD line whose closing quote never came, which held every line after it."""
        buffer = self._buffer
        last_end = max(buffer.rfind(b"\r"), buffer.rfind(b"\n"))
        if len(buffer) - last_end - 1 > MAX_LINE_BYTES:
            kept, dropped = buffer[:last_end + 1] + buffer[-2:], len(buffer) - last_end - 3
            why = f"over {MAX_LINE_BYTES // 1024} KiB without a line end: is it the AT port?"
        else:
            first_end = _LINE_END.search(buffer)
            kept, dropped = buffer[first_end.end():], first_end.end()
            why = "a +CUSD answer whose closing quote never came"
        self._buffer = kept
        self.noise_lines += 1
        self.dropped_bytes += dropped
        if not self._said_dropped:
            self._said_dropped = True
            log.warning("modem port %s: dropped %d bytes that were no modem line (%s)",
                        getattr(self.link, "port", "?"), dropped, why)

    def _write(self, data: bytes) -> None:
        try:
            self.link.write(data)
            self.link.flush()           # tcdrain: its termios.error is no OSError
        except (serial.SerialException, OSError, termios.error) as exc:
            raise PortGone(str(exc)) from exc

    # -- URCs -----------------------------------------------------------------

    def _is_urc(self, line: str, expected: str | None) -> bool:
        if expected and line.startswith(expected):
            return False
        return line.startswith(_URC_PREFIXES) or line in _URC_WORDS

    def _queue_urc(self, line: str, deadline: float) -> None:
        if _is_final(line):
            log.debug("late final result %r dropped", line)
            return
        body = ""
        if line.startswith(_TWO_LINE_URCS):
            body = self._body_line(max(deadline, time.monotonic() + 1.0))
        self._urcs.append(Urc(line, body))

    def _body_line(self, deadline: float) -> str:
        while True:
            line = self._next_line(deadline)
            if line != "":
                return line or ""

    def _take_urcs(self) -> list[Urc]:
        urcs = list(self._urcs)
        self._urcs.clear()
        return urcs


def expected_prefix(command: str) -> str | None:
    """`AT+CSQ` -> `+CSQ`: information lines the command itself answers with."""
    match = re.match(r"^AT([+^#$][A-Z0-9]+)", command, re.IGNORECASE)
    return match.group(1).upper() if match else None


def _is_echo(line: str, command: str) -> bool:
    return line.upper().startswith("AT") and line.upper() == command.upper()[: len(line)]


def _is_final(line: str) -> bool:
    return line in _FINAL_OK or bool(_FINAL_ERROR.match(line))


def _is_noise(line: str) -> bool:
    """Bytes that are not printable ASCII: line noise, boot garbage, a wrong baud rate."""
    # a newline is only inside a text joined across lines (_pop_quoted_lines)
    return any(ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n") for ch in line)


def _command_error(command: str, line: str, match: re.Match) -> AtCommandError:
    if line.startswith("+CME"):
        return AtCommandError(command, "CME", _code(match.group(2)), match.group(2) or "")
    if line.startswith("+CMS"):
        return AtCommandError(command, "CMS", _code(match.group(3)), match.group(3) or "")
    return AtCommandError(command, "ERROR", None, line)


def _code(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None
