"""A minimal SMSC for measuring an SMPP client, not a peer: it answers binds, enquire_link,
unbind and submit_sm (message ids counted in hex), one recv and one sendall per batch of
PDUs, a thread per connection. Every other request gets a generic_nack; it sends nothing of
its own (no receipts, no MO).

Why: the test SMSC (smpp34) spends 55-120 µs of its own CPU per submit_sm, more than either
client measured against it, so through it `bench/uplink.py` compares the peer with itself.
This one spends 2-5 µs, so the client sets the pace.

Run: python bench/fast_smsc.py   (prints its port, serves until stdin closes)
"""

from __future__ import annotations

import socket
import struct
import sys
import threading

HEADER = struct.Struct(">IIII")         # command_length, command_id, command_status, sequence
RESPONSE_BIT = 0x80000000
GENERIC_NACK = 0x80000000
ESME_RINVCMDID = 0x00000003
BINDS = {0x00000001, 0x00000002, 0x00000009}       # receiver, transmitter, transceiver
SUBMIT_SM, UNBIND, ENQUIRE_LINK = 0x00000004, 0x00000006, 0x00000015
SYSTEM_ID = b"fast\0"


class Session:
    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.buffer = b""
        self.counter = 0

    def serve(self) -> None:
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.conn:
            while data := self.conn.recv(256 * 1024):
                self.buffer += data
                answers, closing = self._answer_whole_pdus()
                if answers:
                    self.conn.sendall(b"".join(answers))
                if closing:
                    return

    def _answer_whole_pdus(self) -> tuple[list[bytes], bool]:
        answers, position, data = [], 0, self.buffer
        while len(data) - position >= HEADER.size:
            length, command, _, sequence = HEADER.unpack_from(data, position)
            if length < HEADER.size or len(data) - position < length:
                break
            position += length
            if command & RESPONSE_BIT:
                continue
            answers.append(self._answer(command, sequence))
            if command == UNBIND:
                self.buffer = b""
                return answers, True
        self.buffer = data[position:]
        return answers, False

    def _answer(self, command: int, sequence: int) -> bytes:
        if command == SUBMIT_SM:
            self.counter += 1
            body = b"%08X\0" % self.counter
        elif command in BINDS:
            body = SYSTEM_ID
        elif command in (ENQUIRE_LINK, UNBIND):
            body = b""
        else:
            return HEADER.pack(HEADER.size, GENERIC_NACK, ESME_RINVCMDID, sequence)
        return HEADER.pack(HEADER.size + len(body), command | RESPONSE_BIT, 0, sequence) + body


def listen() -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server


def accept_forever(server: socket.socket) -> None:
    while True:
        conn, _ = server.accept()
        threading.Thread(target=Session(conn).serve, daemon=True).start()


def main() -> None:
    server = listen()
    print(server.getsockname()[1], flush=True)
    threading.Thread(target=accept_forever, args=(server,), daemon=True).start()
    sys.stdin.read()                    # until the parent closes the pipe


if __name__ == "__main__":
    main()
