"""A tiny SMSC on a raw socket, built on smpplib's PDU classes, for what smpp34's server
cannot be told to do: answer a submit_sm with generic_nack.

`nacks` is a list of (command_status, sequence or None) consumed one per submit_sm: None
answers with the submit_sm's own sequence, a number (0) with that one. Other submit_sm get
submit_sm_resp OK. Binds, enquire_link and unbind are answered.

Refusing binds, which smpp34's server cannot: `refuse` is None (accept), an SMPP status
(answer the bind with that error), "unbind" (accept, then unbind at once), "close" (accept,
then close the socket) or "unbind_instead" (answer the bind with an unbind). `on_bind()` is
called as each bind arrives (a test reads its fake clock there). With `password` set, a
bind carrying another password is refused with 0x0E, however long either is (as the
aggregators that hand out passwords longer than SMPP's 8 characters do).

Misbehaving on the wire: `after_submit` (raw bytes) goes out in the same write as every
submit_sm_resp, `push(raw)` writes raw bytes to the open sessions, and `answers` records
the (command, sequence, status) of every response the ESME sends, in order.
"""

from __future__ import annotations

import socket
import struct
import threading

import smpplib.smpp


class _Seq:
    """What smpplib's PDU classes want from a client: a sequence counter."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


class RawSmsc:
    def __init__(self):
        self.nacks: list[tuple[int, int | None]] = []
        self.submits: list[bytes] = []          # short_message of every submit_sm received
        self.validity: list[bytes] = []         # validity_period of every submit_sm received
        self.binds = 0
        self.bind_fields: list[dict] = []       # system_id, password, addr_ton/npi, range per bind
        self.enquire_links = 0
        self.silent = False                     # True: submit_sm get no answer at all
        self.refuse: int | str | None = None
        self.password: bytes | None = None     # set: a bind with another one is refused (0x0E)
        self.on_bind = lambda: None
        self.after_submit = b""
        self.answers: list[tuple[str, int, int]] = []
        self._counter = 0
        self._seq = _Seq()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []

    def start(self) -> "RawSmsc":
        threading.Thread(target=self._accept, name="raw-smsc", daemon=True).start()
        return self

    def stop(self) -> None:
        self._listener.close()
        self.drop_links()

    def drop_links(self) -> None:
        """Close every open session (a network fault)."""
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def push(self, raw: bytes) -> None:
        """Write `raw` (whole PDUs, or not) to every open session."""
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            sock.sendall(raw)

    def pdu(self, command: str, **fields) -> bytes:
        """A PDU's bytes, numbered by this SMSC's sequence."""
        return smpplib.smpp.make_pdu(command, client=self._seq, **fields).generate()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            while (pdu := _read(sock)) is not None:
                if pdu.command.startswith("bind_") and self._refuse_bind(sock, pdu):
                    break
                answer = self._answer(pdu)
                if answer is not None:
                    extra = self.after_submit if pdu.command == "submit_sm" else b""
                    sock.sendall(answer.generate() + extra)
                if pdu.command == "unbind":
                    break
        except OSError:
            pass
        sock.close()

    def _refuse_bind(self, sock: socket.socket, pdu) -> bool:
        """Refuse this bind the way `refuse` says; True when the session ends here."""
        self.on_bind()
        refuse = self.refuse
        if self.password is not None and pdu.password != self.password:
            refuse = 0x0E                                # ESME_RINVPASWD
        if refuse is None:
            return False
        self.binds += 1
        if isinstance(refuse, int):
            sock.sendall(self._resp(pdu, f"{pdu.command}_resp", status=refuse).generate())
            return True
        if refuse == "unbind_instead":
            sock.sendall(smpplib.smpp.make_pdu("unbind", client=self._seq).generate())
            return True
        sock.sendall(self._resp(pdu, f"{pdu.command}_resp", system_id="RAWSMSC").generate())
        if refuse == "unbind":
            sock.sendall(smpplib.smpp.make_pdu("unbind", client=self._seq).generate())
            _read(sock)                                  # the unbind_resp
        return True

    def _answer(self, pdu):
        command = pdu.command
        if command.endswith("_resp") or command == "generic_nack":
            self.answers.append((command, pdu.sequence, pdu.status))
            return None
        if command.startswith("bind_"):
            self.binds += 1
            self.bind_fields.append({"command": command, "system_id": pdu.system_id,
                                     "password": pdu.password, "addr_ton": pdu.addr_ton,
                                     "addr_npi": pdu.addr_npi,
                                     "address_range": pdu.address_range})
            return self._resp(pdu, f"{command}_resp", system_id="RAWSMSC")
        if command == "enquire_link":
            self.enquire_links += 1
        if command in ("enquire_link", "unbind"):
            return self._resp(pdu, f"{command}_resp")
        if command == "submit_sm":
            return self._on_submit(pdu)
        return None

    def _on_submit(self, pdu):
        with self._lock:
            self.submits.append(bytes(pdu.short_message or b""))
            self.validity.append(bytes(pdu.validity_period or b""))
            if self.silent:
                return None
            nack = self.nacks.pop(0) if self.nacks else None
            self._counter += 1
            number = self._counter
        if nack is not None:
            status, sequence = nack
            answer = smpplib.smpp.make_pdu("generic_nack", client=self._seq, status=status)
            answer.sequence = pdu.sequence if sequence is None else sequence
            return answer
        return self._resp(pdu, "submit_sm_resp", message_id=f"{number:X}")

    def _resp(self, pdu, command: str, **fields):
        answer = smpplib.smpp.make_pdu(command, client=self._seq, **fields)
        answer.sequence = pdu.sequence
        return answer


def _read(sock: socket.socket):
    header = _exactly(sock, 4)
    if header is None:
        return None
    (length,) = struct.unpack(">L", header)
    body = _exactly(sock, length - 4)
    if body is None:
        return None
    return smpplib.smpp.parse_pdu(header + body, client=_Seq())


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
