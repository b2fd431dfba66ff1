"""AT framing with an in-memory link: finals, errors, echo, URCs amid answers, the prompt,
noise, timeouts, late answers, a vanished port, and PINs kept out of messages."""

from __future__ import annotations

import termios
import time

import pytest
import serial

from appliance.modem.at import (AtCommandError, AtPort, AtTimeout, PortGone, Urc, expected_prefix,
                                is_port_loss, redact)


class ScriptedLink:
    """Answers each command (bytes up to CR or Ctrl-Z) with the bytes a script returns."""

    def __init__(self, script):
        self.script = script
        self.rx = bytearray()
        self.written = []
        self.fail = False

    @property
    def in_waiting(self):
        return len(self.rx)

    def read(self, size):
        if self.fail:
            raise serial.SerialException("device reports readiness to read but returned no data")
        data, self.rx[:] = bytes(self.rx[:size]), self.rx[size:]
        return data

    def write(self, data):
        self.written.append(data)
        answer = self.script(data)
        if answer:
            self.rx += answer

    def flush(self):
        pass

    def close(self):
        pass


def port_with(answers: dict):
    return AtPort(ScriptedLink(lambda data: answers.get(data, b"")))


def test_information_lines_and_ok():
    port = port_with({b"AT+CSQ\r": b"AT+CSQ\r\r\n+CSQ: 21,99\r\n\r\nOK\r\n"})   # with echo
    assert port.command("AT+CSQ", 0.5) == ["+CSQ: 21,99"]


def test_registration_answer_is_not_taken_for_a_urc():
    port = port_with({b"AT+CREG?\r": b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"})
    assert port.command("AT+CREG?", 0.5) == ["+CREG: 0,1"]
    assert port.pending_urcs() == []


def test_urcs_inside_an_answer_are_queued_with_their_pdu_line():
    answer = (b"\r\n+CMTI: \"SM\",3\r\n\r\n+CDS: 25\r\n07911326040000F0ABCD\r\n"
              b"\r\n+CSQ: 9,99\r\n\r\nOK\r\n")
    port = port_with({b"AT+CSQ\r": answer})
    assert port.command("AT+CSQ", 0.5) == ["+CSQ: 9,99"]
    assert port.pending_urcs() == [Urc('+CMTI: "SM",3'), Urc("+CDS: 25", "07911326040000F0ABCD")]


@pytest.mark.parametrize("final,kind,code", [(b"+CME ERROR: 14", "CME", 14),
                                             (b"+CMS ERROR: 330", "CMS", 330),
                                             (b"ERROR", "ERROR", None)])
def test_error_results_carry_kind_and_code(final, kind, code):
    port = port_with({b"AT+CPIN?\r": b"\r\n" + final + b"\r\n"})
    with pytest.raises(AtCommandError) as caught:
        port.command("AT+CPIN?", 0.5)
    assert (caught.value.kind, caught.value.code) == (kind, code)


def test_timeout_keeps_partial_answer_and_a_late_ok_does_not_end_the_next_command():
    link = ScriptedLink(lambda data: {b"AT+CSQ\r": b"\r\n+CSQ: 5,99\r\n\r\nOK\r\n",
                                      b"AT+CGSN\r": b"\r\n+CGSN partial\r\n"}.get(data, b""))
    port = AtPort(link)
    with pytest.raises(AtTimeout) as caught:
        port.command("AT+CGSN", 0.1)
    assert caught.value.lines == ["+CGSN partial"]
    link.rx += b"\r\nOK\r\n"                        # the late final of the timed-out command
    assert port.command("AT+CSQ", 0.5) == ["+CSQ: 5,99"]


class SequentialModem:
    """A modem that answers its commands in order, each `latency[command]` seconds after
    it got to it (0.01 s unless said): a slow answer delays every answer behind it."""

    def __init__(self, answers: dict, latency: dict):
        self.answers, self.latency = answers, latency
        self.rx, self.pending, self.busy_until = bytearray(), [], 0.0

    def _release(self):
        now = time.monotonic()
        while self.pending and self.pending[0][0] <= now:
            self.rx += self.pending.pop(0)[1]

    @property
    def in_waiting(self):
        self._release()
        return len(self.rx)

    def read(self, size):
        self._release()
        if not self.rx:
            time.sleep(0.005)
        data, self.rx[:] = bytes(self.rx[:size]), self.rx[size:]
        return data

    def write(self, data):
        command = data.decode().strip()
        start = max(time.monotonic(), self.busy_until)
        self.busy_until = start + self.latency.get(command, 0.01)
        self.pending.append((self.busy_until, self.answers.get(command, b"") + b"\r\nOK\r\n"))

    def flush(self):
        pass


def test_a_late_answer_is_never_read_as_the_next_commands():
    """AT+CMGR=3 answers after its timeout. Read as the answer to AT+CMGR=4, the worker
    would store SMS 3 again and delete slot 4 unread. The next command first resyncs."""
    modem = SequentialModem({"AT+CMGR=3": b"\r\n+CMGR: 0,,20\r\nPDU-OF-3\r\n",
                             "AT+CMGR=4": b"\r\n+CMGR: 0,,20\r\nPDU-OF-4\r\n"},
                            latency={"AT+CMGR=3": 0.4})
    port = AtPort(modem)
    with pytest.raises(AtTimeout):
        port.command("AT+CMGR=3", 0.1)
    assert port.command("AT+CMGR=4", 1.0) == ["+CMGR: 0,,20", "PDU-OF-4"]
    assert port.command("AT+CMGR=3", 1.0) == ["+CMGR: 0,,20", "PDU-OF-3"]   # in step


def test_a_modem_still_silent_after_a_timeout_times_out_again():
    modem = SequentialModem({}, latency={"AT+CFUN=0": 60, "AT": 60})
    port = AtPort(modem)
    with pytest.raises(AtTimeout):
        port.command("AT+CFUN=0", 0.1)
    with pytest.raises(AtTimeout) as caught:
        port.command("AT+CFUN=1,1", 0.1)
    assert caught.value.command == "AT+CFUN=1,1"


def test_prompt_then_pdu_then_reference():
    def script(data):
        if data == b"AT+CMGS=18\r":
            return b"\r\n> "
        if data.endswith(b"\x1a"):
            return b"\r\n+CMGS: 42\r\n\r\nOK\r\n"
        return b""
    link = ScriptedLink(script)
    assert AtPort(link).command_with_prompt("AT+CMGS=18", "0011ABCD", 0.5) == ["+CMGS: 42"]
    assert link.written[-1] == b"0011ABCD\x1a"


def test_error_instead_of_prompt():
    port = port_with({b"AT+CMGS=18\r": b"\r\n+CMS ERROR: 304\r\n"})
    with pytest.raises(AtCommandError) as caught:
        port.command_with_prompt("AT+CMGS=18", "00", 0.5)
    assert caught.value.code == 304


def test_missing_prompt_cancels_with_escape():
    link = ScriptedLink(lambda data: b"")
    with pytest.raises(AtTimeout):
        AtPort(link).command_with_prompt("AT+CMGS=18", "00", 0.2)
    assert link.written[-1] == b"\x1b"


def test_noise_lines_are_dropped():
    port = port_with({b"AT\r": b"\r\n\xff\xfe\x93garbage\r\n\r\nOK\r\n"})
    assert port.command("AT", 0.5) == []
    assert port.noise_lines == 1


def test_vanished_port_raises_port_gone():
    link = ScriptedLink(lambda data: b"")
    link.fail = True
    with pytest.raises(PortGone):
        AtPort(link).command("AT", 0.5)


def test_port_gone_while_flushing_a_command_raises_port_gone():
    """pyserial's flush is tcdrain, whose termios.error is no OSError: a modem dropping off
    USB as a command is written must read as a lost port, not as an internal error."""
    class DrainFails(ScriptedLink):
        def flush(self):
            raise termios.error(5, "Input/output error")

    with pytest.raises(PortGone):
        AtPort(DrainFails(lambda data: b"")).command("AT+CFUN=1,1", 0.5)
    assert is_port_loss(termios.error(5, "Input/output error"))


def test_error_results_read_once_in_messages():
    port = port_with({b"AT+CMGR=0\r": b"\r\nERROR\r\n",
                      b"AT+X\r": b"\r\nCOMMAND NOT SUPPORT\r\n"})
    with pytest.raises(AtCommandError, match=r"^AT\+CMGR=0: ERROR$"):
        port.command("AT+CMGR=0", 0.5)
    with pytest.raises(AtCommandError, match=r"^AT\+X: ERROR COMMAND NOT SUPPORT$"):
        port.command("AT+X", 0.5)


def test_pin_is_redacted_in_errors_and_logs():
    assert redact('AT+CPIN="1234"') == "AT+CPIN=****"
    port = port_with({b'AT+CPIN="1234"\r': b"\r\n+CME ERROR: 16\r\n"})
    with pytest.raises(AtCommandError) as caught:
        port.command('AT+CPIN="1234"', 0.5)
    assert "1234" not in str(caught.value)


def test_expected_prefix():
    assert expected_prefix("AT+CREG?") == "+CREG"
    assert expected_prefix("AT^USSDMODE=0") == "^USSDMODE"
    assert expected_prefix("ATI") is None


def test_urcs_while_idle():
    link = ScriptedLink(lambda data: b"")
    link.rx += b'\r\n+CMTI: "ME",7\r\n\r\n+CUSD: 0,"Hi",15\r\n\r\nRING\r\n'
    assert [u.line for u in AtPort(link).read_urcs(0.05)] == ['+CMTI: "ME",7',
                                                             '+CUSD: 0,"Hi",15', "RING"]


def test_urc_read_while_draining_before_a_command_is_kept():
    link = ScriptedLink(lambda data: {b"AT\r": b"\r\nOK\r\n"}.get(data, b""))
    link.rx += b"\r\n+CDS: 25\r\n0791AB\r\n"          # arrived while the worker was idle
    port = AtPort(link)
    assert port.command("AT", 0.5) == []
    assert port.read_urcs(0.0) == [Urc("+CDS: 25", "0791AB")]


@pytest.fixture
def pty_modem(tmp_path):
    """An AtPort on the slave side of a real pty (pyserial, as for a modem), and the master
    end the test writes the "modem's" bytes to."""
    from appliance.modem.at import open_port
    from appliance.sim.pty import PtyEnd
    end = PtyEnd(str(tmp_path / "ttyModem"))
    port = open_port(end.link_path)
    yield port, end
    port.close()
    end.close()


def read_while_sending(port, end, chunks) -> list[str]:
    """The worker's idle reads, each when the port polls readable (as modem/inbox.py
    waits), while another thread writes `chunks` to the pty; the URC lines read."""
    import select
    import threading
    from appliance.modem.at import MAX_PENDING_BYTES
    sender = threading.Thread(target=lambda: [end.write(chunk, 10) for chunk in chunks])
    sender.start()
    lines = []
    while sender.is_alive() or port.link.in_waiting:
        select.select([port.fileno()], [], [], 0.05)
        lines += [u.line for u in port.read_urcs(0.0)]
        assert len(port._buffer) <= MAX_PENDING_BYTES + 4096
    sender.join()
    return lines


def test_a_port_that_never_ends_a_line_is_bounded_and_said_once(pty_modem, caplog):
    """A GPS or diagnostics port picked as the modem's sends bytes without line ends: they
    piled up in the buffer, each read copying them all, memory and CPU without end."""
    import threading
    port, end = pty_modem
    caplog.set_level("WARNING", "appliance.modem")
    binary = bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"") * 256
    read_while_sending(port, end, [binary] * 64)     # 4 MiB without a line end
    assert port.dropped_bytes > 3 * 1024 * 1024
    assert len([r for r in caplog.records if "no modem line" in r.getMessage()]) == 1
    end.write(b'\r\n+CMTI: "SM",3\r\n')             # the modem's lines still come through
    assert [u.line for u in port.read_urcs(0.5)] == ['+CMTI: "SM",3']

    def answer_at():
        received = b""
        while b"AT\r" not in received:
            received += end.read(1.0)
        end.write(b"\r\nOK\r\n")
    threading.Thread(target=answer_at, daemon=True).start()
    assert port.command("AT", 5) == []


def test_a_cusd_whose_closing_quote_never_comes_does_not_hold_every_line_after_it(pty_modem):
    port, end = pty_modem
    end.write(b'\r\n+CUSD: 0,"Balance: 12\r\n')     # the rest of the menu is lost
    lines = read_while_sending(port, end, [b"\r\n+CREG: 1\r\n" * 400] * 20)   # 80 KiB
    end.write(b'\r\n+CMTI: "SM",4\r\n')
    lines += [u.line for u in port.read_urcs(0.5)]
    assert lines[-1] == '+CMTI: "SM",4' and lines.count("+CREG: 1") > 7000


def test_a_cusd_without_its_closing_quote_is_read_alone_after_a_few_dozen_lines(pty_modem):
    """Held until 64 KiB had come, each read scanned every line after it again: 33 s of CPU
    for 80 KiB of them (measured). A USSD text takes a dozen lines at most."""
    from appliance.modem.at import MAX_QUOTED_LINES
    port, end = pty_modem
    end.write(b'\r\n+CUSD: 0,"Balance: 12\r\n' + b"+CREG: 1\r\n" * MAX_QUOTED_LINES
              + b'+CMTI: "SM",5\r\n')
    lines = []
    for _ in range(20):
        lines += [u.line for u in port.read_urcs(0.1)]
        if '+CMTI: "SM",5' in lines:
            break
    assert lines[0] == '+CUSD: 0,"Balance: 12' and lines[-1] == '+CMTI: "SM",5'
    assert lines.count("+CREG: 1") == MAX_QUOTED_LINES
