"""A local SMSC for tests: smpp34's SMPP server (an independent Rust implementation, not
built on smpplib), run on an asyncio loop in a thread, behind a small TCP proxy that can cut
the link or refuse connections (a network fault, which no SMPP server offers itself).

Personalities are plain attributes: `throttle` (reject the next N submit_sm with
ESME_RTHROTTLED), `hold_after` (stop answering after N submit_sm: they stay in flight),
`unbind_after` (the server unbinds after N), `receipts` (send a delivery receipt for each
accepted submit_sm, with the id written differently from the submit_sm_resp; like a real
SMSC it goes to a bind of the same account that can receive: the submitting one if it can,
else a receiver bind), `unbind_on_bind` (accept every bind and unbind it at once: how many
SMSCs answer wrong credentials).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass

import smpp34


@dataclass
class Received:
    session: str
    source: str
    destination: str
    esm_class: int
    data_coding: int
    short_message: bytes
    registered_delivery: int
    tlvs: dict
    message_id: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


RECEIPT_ANSWER_SECONDS = 5.0     # a windowed receipt not answered by then is sent again


class Smsc:
    def __init__(self, *, receipts: bool = False, receipt_stat: str = "DELIVRD",
                 id_style: str = "hex-decimal", first_id: int = 0xA0,
                 receipt_window: int = 0):
        """`id_style`: how ids are written, as a messageidbase setting would say:
        "hex-decimal" (submit_sm_resp `000000A0`, receipt `id:160`, the default),
        "decimal-hex" (resp `160`, receipt `id:a0`) or "hex" (`000000A0` in both).
        `first_id`: the first id's value.
        `receipt_window`: 0 (the default), each receipt's deliver_sm_resp is awaited before
        the next submit_sm is read, as a single-threaded SMSC does; N, receipts are queued
        and up to N are in flight while submit_sm keep being answered, as an SMSC with a
        window on each direction does."""
        self.receipts = receipts
        self.receipt_window = receipt_window
        self._receipt_queue: asyncio.Queue | None = None
        self.id_style = id_style
        self.first_id = first_id
        self.receipt_stat = receipt_stat
        self.throttle = 0
        self.hold_after: int | None = None
        self.unbind_after: int | None = None
        self.unbind_on_bind = False
        self._unanswered: list = []            # receipts pushed to receiver binds
        self.received: list[Received] = []
        self.binds: list[str] = []
        self.sessions: dict[str, smpp34.Esme] = {}
        self.held: list = []
        self._counter = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, name="smsc", daemon=True)
        self.smsc_port = 0
        self.proxy = None

    # --- life cycle ---

    def start(self) -> "Smsc":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test SMSC did not start")
        self.proxy = LinkProxy(self.smsc_port).start()
        return self

    @property
    def port(self) -> int:
        return self.proxy.port

    def stop(self) -> None:
        if self.proxy:
            self.proxy.stop()
        if self._loop:
            self._run(self._server.stop)
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _thread_main(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._start_server())
        self._ready.set()
        self._loop.create_task(self._serve())
        self._loop.run_forever()

    async def _start_server(self) -> None:
        for _ in range(5):
            self.smsc_port = free_port()
            self._server = smpp34.Server("127.0.0.1", self.smsc_port, system_id="TESTSMSC")
            try:
                await self._server.start()
                return
            except Exception:
                continue
        raise RuntimeError("no port for the test SMSC")

    def _run(self, make, timeout: float = 10.0):
        """Run `make()` (returns an awaitable) on the SMSC's loop; smpp34 objects need it."""
        async def wrapped():
            return await make()
        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout)

    # --- events ---

    async def _serve(self) -> None:
        if self.receipt_window:
            self._receipt_queue = asyncio.Queue()
            for _ in range(self.receipt_window):
                self._loop.create_task(self._send_queued_receipts())
        while True:
            event = await self._server.next()
            if isinstance(event, smpp34.Esme):
                self.sessions[event.session_id] = event
                self.binds.append(event.system_id)
                if self.unbind_on_bind:
                    await event.unbind()
            elif isinstance(event, smpp34.SubmitSmEvent):
                await self._on_submit(event)
            elif isinstance(event, smpp34.Unbound):
                self.sessions.pop(event.session_id, None)

    async def _on_submit(self, ev) -> None:
        record = Received(ev.session_id, ev.source_addr, ev.destination_addr, ev.esm_class,
                          ev.data_coding, bytes(ev.short_message), ev.registered_delivery,
                          {t.tag: bytes(t.value) for t in ev.tlvs})
        self.received.append(record)
        if self.throttle > 0:
            self.throttle -= 1
            ev.reject(smpp34.ESME_RTHROTTLED)
            return
        if self.hold_after is not None and self._counter >= self.hold_after:
            self.held.append(ev)
            return
        self._counter += 1
        record.message_id = self._message_id(self._counter)    # hex, upper case, zeros
        ev.accept(message_id=record.message_id)
        if self.receipts and record.registered_delivery:
            if self._receipt_queue is not None:
                self._receipt_queue.put_nowait((ev.session_id, record))
            else:
                try:
                    await self._receipt(ev.session_id, record)
                except Exception:   # the bind went before answering: this receipt is
                    pass            # lost, and the SMSC goes on (it used to stop here)
        if self.unbind_after is not None and self._counter >= self.unbind_after:
            self.unbind_after = None
            await self.sessions[ev.session_id].unbind()

    def _message_id(self, counter: int) -> str:
        value = self.first_id + counter - 1
        return str(value) if self.id_style == "decimal-hex" else f"{value:08X}"

    def receipt_id(self, record: Received) -> str:
        """The id a receipt for `record` carries: the resp's id in the other base (or, for
        "hex", the resp's id as it was written)."""
        if self.id_style == "hex":
            return record.message_id
        if self.id_style == "decimal-hex":
            return format(int(record.message_id, 10), "x")
        return str(int(record.message_id, 16))

    async def _receipt(self, session: str, record: Received, wait: bool = True) -> int | None:
        # the same id as the submit_sm_resp, written the way many SMSCs do: the other base
        decimal = self.receipt_id(record)
        text = (f"id:{decimal} sub:001 dlvrd:001 submit date:2401011200 "
                f"done date:2401011201 stat:{self.receipt_stat} err:000 text:x").encode()
        esme = self._receiving(session)
        push = esme.deliver_sm(record.source, text, source_addr=record.destination,
                               esm_class=0x04)
        if wait and esme.session_id == session:
            return (await push).command_status
        # Not awaited: smpp34 nacks a receiver session's deliver_sm_resp (its quirk, see
        # test_smpp.test_binds_in_each_mode), so that answer never comes.
        task = asyncio.ensure_future(push)
        self._unanswered.append(task)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _send_queued_receipts(self) -> None:
        """One of `receipt_window` senders: a receipt at a time, the next once it is answered.
        One not answered (the bind went, or none can take it now) is queued again after a
        second and goes on whichever bind of the account is there then, as an SMSC retries
        (its answer awaited there too: these senders are for transceiver binds)."""
        while True:
            session, record = await self._receipt_queue.get()
            try:
                now_on = self._receiving(session).session_id
                status = await asyncio.wait_for(self._receipt(now_on, record),
                                                RECEIPT_ANSWER_SECONDS)
            except Exception:
                status = None
            if status != 0:         # not taken: an error answer, or none from a bind gone
                self._loop.call_later(1.0, self._receipt_queue.put_nowait, (session, record))

    def _receiving(self, session: str) -> smpp34.Esme:
        """The submitting bind if it can receive, else another bind of its account that can."""
        own = self.sessions.get(session)
        if own is not None and own.can_receive:
            return own
        system_id = own.system_id if own is not None else None
        receiving = [e for e in self.sessions.values() if e.can_receive]
        for esme in receiving:
            if system_id in (None, esme.system_id):
                return esme
        if receiving:          # the SMSC's account may span system ids (smscaccount)
            return receiving[0]
        raise RuntimeError("no bind can take a receipt")

    # --- test controls (any thread) ---

    def release_held(self) -> None:
        """Answer held submit_sm (on a cut link the answers go nowhere)."""
        held, self.held = self.held, []
        self.hold_after = None
        for ev in held:
            self._counter += 1
            try:
                self._loop.call_soon_threadsafe(ev.accept, self._message_id(self._counter))
            except Exception:
                pass

    def send_mo(self, sender: str, recipient: str, body: bytes, *, data_coding: int = 0,
                esm_class: int = 0, tlvs: list | None = None, wait: bool = True) -> int | None:
        """Push a deliver_sm; with `wait` return the deliver_sm_resp status."""
        session = next(iter(self.sessions.values()))

        async def push():
            resp = await session.deliver_sm(recipient, body, source_addr=sender,
                                            source_addr_ton=1, data_coding=data_coding,
                                            esm_class=esm_class, tlvs=tlvs or [])
            return resp.command_status
        if not wait:
            asyncio.run_coroutine_threadsafe(push(), self._loop)
            return None
        return self._run(push)

    def send_receipt(self, record: Received) -> None:
        """A delivery receipt for an accepted submit_sm: on its own session if that is still
        bound, else on a bind of the same account that can receive."""
        session = record.session if record.session in self.sessions else next(iter(self.sessions))
        self._run(lambda: self._receipt(session, record, wait=False))

    def receipt_burst(self, records: list[Received], on_resp) -> None:
        """A receipt for each record, all pushed at once on the submitting session (none
        waits for another's deliver_sm_resp, as an SMSC with a window does);
        `on_resp(record, status)` runs on the SMSC's thread as each answer arrives."""
        async def one(record: Received) -> None:
            decimal = self.receipt_id(record)
            text = (f"id:{decimal} sub:001 dlvrd:001 submit date:2401011200 "
                    f"done date:2401011201 stat:{self.receipt_stat} err:000 text:x").encode()
            esme = self._receiving(record.session)
            resp = await esme.deliver_sm(record.source, text, source_addr=record.destination,
                                         esm_class=0x04)
            on_resp(record, resp.command_status)

        async def burst() -> None:
            for record in records:
                task = asyncio.ensure_future(one(record))
                self._unanswered.append(task)
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._run(burst)

    def unbind_all(self) -> None:
        for session in list(self.sessions.values()):
            self._run(session.unbind)

    def wait_received(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received


class LinkProxy:
    """TCP proxy in front of the SMSC: `cut()` drops every link, `down` refuses new ones.
    `wire` lists the submit_sm in the order they crossed the wire (smpp34's server handles
    PDUs concurrently, so its own event order is not the sending order)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.down = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self.accepted = 0
        self.wire: list[smpp34.SubmitSm] = []
        self.tap_wire = True           # a bench turns it off: decoding costs the SMSC's CPU

    def start(self) -> "LinkProxy":
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._listener.close()
        self.cut()

    def cut(self) -> None:
        with self._lock:
            links, self._links = self._links, []
        for pair in links:
            for sock in pair:
                _shut(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.down:
                _shut(client)
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._links.append((client, server))
            tap = self._tap() if self.tap_wire else None
            for a, b, tap in ((client, server, tap), (server, client, None)):
                threading.Thread(target=_pump, args=(a, b, tap), daemon=True).start()

    def _tap(self):
        buffer = bytearray()

        def tap(data: bytes) -> None:
            buffer.extend(data)
            while len(buffer) >= 4 and len(buffer) >= int.from_bytes(buffer[:4], "big"):
                size = int.from_bytes(buffer[:4], "big")
                pdu = smpp34.decode(bytes(buffer[:size]))
                del buffer[:size]
                if isinstance(pdu, smpp34.SubmitSm):
                    with self._lock:
                        self.wire.append(pdu)
        return tap


def _pump(src: socket.socket, dst: socket.socket, tap=None) -> None:
    try:
        while data := src.recv(65536):
            if tap:
                tap(data)
            dst.sendall(data)
    except OSError:
        pass
    _shut(src)
    _shut(dst)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
