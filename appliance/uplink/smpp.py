"""SmppChannel: one SMPP aggregator connection, owned by one worker thread.

The only smpplib importer. smpplib's `Client` sends one PDU and waits for its answer; we use
its socket and PDU classes but pipeline: up to `windowsize` submit_sm are in flight, matched
to their submit_sm_resp by sequence number, while one select loop reads whatever the SMSC
sends (responses, receipts, MO, enquire_link, unbind). The worker thread is the only one that
touches the socket; `submit()` only queues and pokes it through a socketpair.

Failure handling: a dropped link, an unanswered enquire_link or a submit_sm_resp that does not
come returns every part in flight to the store as retryable (so only those may be sent
twice), then the worker reconnects with exponential backoff and jitter. A refused bind
(bind_resp error, or an unbind or close soon after the bind) keeps the backoff growing up to
`reconnectmaxdelay` and marks the uplink failing with the SMSC's reason until a bind holds
(uplink/link_health.py). ESME_RTHROTTLED and
ESME_RMSGQFUL (in a submit_sm_resp or a generic_nack) pause the sender, longer each time in a
row; the channel keeps the throttled part and sends it again itself, first, after the pause,
so the store's retry delay does not apply and the part does not leave its preferred route;
during the pause the channel still takes parts up to its window (they wait in order).
Only a part throttled MAX_THROTTLED times in a row goes back to the store (retryable).
With `usetlvmessagepayload` a long text message goes whole in part 1's submit_sm; parts 2..n
wait in the channel for part 1's answer and share its fate. Part 1's success is recorded with
`whole_message=True`: the journal gives every part of the message part 1's reference in one
transaction, so one receipt settles them all, also after a restart.

`free_slots` offers the window plus `max(window, READY_PARTS)` parts waiting here, so each
submit_sm_resp is followed by the next submit_sm at once; the dispatcher is woken when half
of those are gone. The worker drives smpplib's PDU classes from its own socket loop (one
recv for all that came, one sendall per refill) and packs the per-message PDUs by hand
(uplink/wire.py). The sink calls of one read go to the journal together (`write_many`: one
transaction, one fsync) without this thread waiting: a deliver_sm_resp leaves only when the
writer reports the receipt or message durable (`then=`). A sink without `then` is waited
for; a sink without `write_many` gets its calls from a small thread pool. Parts given back
by a dropped link are due again at once (the journal skips its retry delay for `link_down`).
"""

from __future__ import annotations

import inspect
import logging
import random
import select
import socket
import struct
import sys
import threading
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor

import smpplib.client
import smpplib.command
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from appliance import clock_sync
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.config import SMPPConfig, normalize_connection
from appliance.model import OutPart, Report
from appliance.uplink import bind_fields, codec, receipts, wire
from appliance.uplink.backoff import Backoff
from appliance.uplink.link_health import STABLE_AFTER, LinkHealth
from appliance.uplink.window import Rate, Throttle, Window

log = logging.getLogger("appliance.uplink")
# smpplib logs every PDU in hex at DEBUG (logger `smpp.Client.<id>`): the bind password and
# every number and text. `-v` is what an operator turns on to debug a refused bind; it must
# not write secrets to the journal (docs/api.md §7), so smpplib's loggers stop at INFO.
logging.getLogger("smpp").setLevel(logging.INFO)


class _OncePerTag(logging.Filter):
    """smpplib warns of an unknown TLV at every PDU that carries one: an SMSC that adds a
    vendor tag to each data_sm wrote a WARNING line per message to the SD card. Each tag is
    told once per process (at most MAX_TAGS of them); the PDUs are read all the same."""

    MESSAGE = "Unknown optional parameter type 0x%x, skipping"
    MAX_TAGS = 32

    def __init__(self):
        super().__init__()
        self._told: set = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.MESSAGE:
            return True
        tag = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if tag in self._told or len(self._told) >= self.MAX_TAGS:
            return False
        self._told.add(tag)     # a race between two channels at worst tells a tag twice
        record.msg = "smpp: the SMSC sends optional parameter 0x%x, unknown here; skipped" \
                     " (said once per tag)"
        return True


logging.getLogger("smpplib.command").addFilter(_OncePerTag())

ESME_ROK = 0x00
ESME_RMSGQFUL = 0x14
ESME_RSYSERR = 0x08
ESME_RTHROTTLED = 0x58
ESME_RINVCMDID = 0x03
SLOWING = {ESME_RTHROTTLED: "throttled", ESME_RMSGQFUL: "queue_full"}
TRANSIENT = {ESME_RSYSERR, ESME_RMSGQFUL, 0x45, ESME_RTHROTTLED, 0x64, 0xFF}
RECV_BYTES = 256 * 1024     # one recv takes every PDU waiting (a window of answers, receipts)
MAX_PDU = 1 << 20           # a longer command_length is a garbled stream, not a PDU
PDU_HEADER = 16
# Parts waiting here beyond the window (at least one window). A backlog is claimed in
# batches of about half of this (one commit each); an alert handed over meanwhile goes
# before the bulk waiting here (`_reorder`).
READY_PARTS = 400
MAX_THROTTLED = 5
PAYLOAD_MEMORY = 1000       # message ids sent whole, remembered for late parts 2..n
TICK = 0.5
# submit_sm_resp OKs are handed to the store together: this many, or after this long.
# Each hand-over is about one commit (fsync and WAL pages); a kill -9 before it sends these
# parts again at restart, as it does for the window in flight.
RESULTS_PER_WRITE = 128
RESULT_HOLD = 0.02
UNRECORDED_RETRY = 1.0      # seconds before submit results the store refused are written again
ORPHAN_SWEEP = 60.0         # seconds between sweeps of this bind's unmatched receipts
CLOCK_LOOK = 30.0           # seconds between looks at whether the system clock is synchronized


# The interpreter lets a thread that holds the GIL run this long before one waiting for it
# gets it (5 ms by default). A worker woken by an answer waits that long whenever the writer
# or the dispatcher is in a stretch of Python (a claim of a few hundred parts), and with a
# window of 10 at ~4,000/s the window runs dry in 2.5 ms: 1 ms keeps it filling
# (`bench/uplink.py --backlog`, alternating runs: drain/alone 0.88-0.90 against 0.82-0.86,
# the same CPU per message).
GIL_SWITCH_SECONDS = 0.001


def _short_gil_turns() -> None:
    """Process-wide, and only ever shortened (another part of the process may want less)."""
    if sys.getswitchinterval() > GIL_SWITCH_SECONDS:
        sys.setswitchinterval(GIL_SWITCH_SECONDS)


def _no_delay(sock) -> None:
    """Small PDUs leave at once. With Nagle's algorithm a deliver_sm_resp or an enquire_link
    written while an earlier write waits for its ACK is held until that ACK comes, up to the
    peer's delayed-ACK time (40 ms on Linux), and every receipt and submit behind it waits."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LinkDown(Exception):
    """The session is unusable: reconnect."""


class SmppChannel:
    """A `model.Channel` over one SMPP bind."""

    def __init__(self, conn: SMPPConfig, sink, *, clock: Clock = SYSTEM_CLOCK,
                 rng=random.random, throttle_pause: float = 1.0,
                 stable_after: float = STABLE_AFTER, clock_synchronized=None):
        self.name = conn.name
        self.conn = normalize_connection(conn)     # MODE narrowed by SEND/RECEIVE
        self.sink = sink
        self.clock = clock
        self.state = "stopped"
        self.last_error = ""
        self.heartbeat = clock.monotonic()
        self._clock_synchronized = clock_synchronized or clock_sync.synchronized
        self._clock_checked = None          # monotonic time of the last look
        self._relative_validity = False     # our clock is not synchronized: count from now
        self.counts = dict.fromkeys(("submitted", "failed", "retried", "throttled", "receipts",
                                     "inbound", "generic_nacks", "binds", "link_drops",
                                     "bind_failures", "orphans_dropped"), 0)
        self._backoff = Backoff(conn.reconnectdelay, conn.reconnectmaxdelay, rng=rng)
        self._health = LinkHealth(self._backoff, stable_after)
        self._orphans_waiting = 0
        self._next_sweep = clock.monotonic()
        self._alphabet = codec.alphabet_of(conn)
        self._throttle = Throttle(throttle_pause)
        self._rate = Rate()
        # LIMITTOMPM: submit_sm spaced evenly, 60/limit seconds apart (0: no limit)
        self._spacing = 60.0 / conn.limittompm if conn.limittompm > 0 else 0.0
        self._next_send_at = 0.0
        self._window = Window(conn.windowsize)
        self._inbox: deque[OutPart] = deque()
        self._inbox_lock = threading.Lock()   # appends (any thread) vs reordering (worker)
        self._reorder_inbox = False
        self._throttled: list[OutPart] = []       # kept here, sent first after the pause
        self._throttle_counts: dict[int, int] = {}
        self._client = None
        self._retry_at = 0.0
        self._last_rx = 0.0
        self._enquire_sent: float | None = None
        self._payload_waiting: dict[str, list[OutPart]] = {}   # message id -> parts 2..n
        self._payload_sent: OrderedDict[str, str] = OrderedDict()  # message id -> reference
        self._resp_base, self._receipt_base = receipts.id_bases(conn.messageidbase)
        self._id_base_learned = ""      # "auto": the convention the receipts showed (journal)
        # "auto": which side has yet to show an id with a hex letter (then told to the journal)
        self._letters_unseen = {"resp", "receipt"} if conn.messageidbase == "auto" else set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_dispatcher = lambda: None
        self._rx = bytearray()                    # bytes read and not yet parsed
        self._session = 0                         # which bind a committed reply belongs to
        self._committed: deque = deque()          # (session, effects, errors) from the writer
        self._replies_pending = 0                 # batches whose commit has not come back
        self._unrecorded: deque = deque()         # (due, effects): submit results to write again
        write_many = getattr(sink, "write_many", None)
        self._write_later = (write_many is not None
                             and "then" in inspect.signature(write_many).parameters)
        # a sink that records many submit results in one set-based write (the journal)
        self._record_batches = hasattr(sink, "parts_submitted")
        self._held: _SubmittedBatch | None = None     # submit results not yet handed over
        self._held_since = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None   # only for sinks without write_many

    # --- the Channel interface (any thread) ---

    def start(self) -> None:
        _short_gil_turns()
        self._register_account()
        for note in bind_fields.over_limit(self.conn):
            log.warning("%s: %s", self.name, note)
        self.state = "connecting"
        self._thread = threading.Thread(target=self._run, name=f"smpp-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._poke()
        if self._thread:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._wake_r.close()
        self._wake_w.close()

    def set_wake(self, wake) -> None:
        """`wake()` is called when slots free up, so the dispatcher need not poll."""
        self._wake_dispatcher = wake

    def free_slots(self) -> int:
        if self.state != "bound" or self.conn.mode == "receiver":
            return 0
        # A throttle pause is not a dead link: parts keep coming here and wait for the
        # pause, so they do not fail over (failover is for unbound links).
        waiting = len(self._inbox) + len(self._throttled)
        return max(0, self.capacity - len(self._window) - waiting)

    @property
    def capacity(self) -> int:
        """The window plus parts waiting here, so the window refills from memory as each
        submit_sm_resp comes, not after a round trip through the store. Under LIMITTOMPM
        about ten seconds' worth waits here; the rest stays in the store, where another
        route can still take it."""
        if self._spacing:
            return self.conn.windowsize + max(1, min(READY_PARTS, int(10 / self._spacing)))
        return self.conn.windowsize + max(self.conn.windowsize, READY_PARTS)

    def submit(self, part: OutPart) -> None:
        self.submit_batch([part])

    def submit_batch(self, parts: list[OutPart]) -> None:
        """Many parts, in order, with one wake-up of the worker. Parts more urgent than
        those already waiting here (an alert during a bulk backlog) are put before them by
        the worker (`_reorder`), in the store's send order: priority, then acceptance."""
        with self._inbox_lock:
            try:
                last = self._inbox[-1].priority   # the worker may take it meanwhile
            except IndexError:
                last = None
            if parts and last is not None and min(p.priority for p in parts) < last:
                self._reorder_inbox = True
            self._inbox.extend(parts)
        self._poke()

    def holding(self) -> set[int] | None:
        """The ids of the parts this uplink took and has not handed back to the store: in
        flight, waiting here, throttled, waiting for their part 1 (message_payload), and
        results held for the next write. None while refused results wait to be written
        again (not all their part ids are known here). For lost_parts.py, on the
        dispatcher's thread: each container is copied whole before it is read."""
        if self._unrecorded:
            return None
        ids = {part.id for part in self._window.parts()}
        with self._inbox_lock:
            inbox = list(self._inbox)           # the worker takes from it without the lock
        ids.update(part.id for part in inbox)
        ids.update(part.id for part in list(self._throttled))
        for followers in list(self._payload_waiting.values()):
            ids.update(part.id for part in list(followers))
        held = self._held
        if held is not None:
            ids.update(part_id for part_id, _ in list(held.results))
        return ids

    def alive(self) -> bool:
        fresh = self.clock.monotonic() - self.heartbeat < 30.0
        return bool(self._thread and self._thread.is_alive() and fresh)

    def status(self) -> dict:
        now = self.clock.monotonic()
        return {
            "name": self.name, "type": "SMPP", "host": self.conn.host, "port": self.conn.port,
            "mode": self.conn.mode, "state": self.state, "bound": self.state == "bound",
            "window": {"size": self.conn.windowsize, "in_use": len(self._window)},
            "queued": len(self._inbox) + len(self._throttled),
            "throttled_for": round(max(0.0, self._throttle.until - now), 1),
            "last_error": self.last_error,
            "failing": self._health.failing,
            "failed_binds_in_a_row": self._health.failures,
            "retry_in": round(max(0.0, self._retry_at - now), 1) if self.state == "backoff"
            else 0.0,
            "smsc_account": receipts.account_key(self.conn),
            "orphan_receipts": self._orphans_now(),
            "messageidbase": self.conn.messageidbase,
            "messageidbase_learned": self._id_base_learned,
            "submits_per_second": self._rate.per_second(now),
            "counts": dict(self.counts),
        }

    def _register_account(self) -> None:
        """Receipts on any bind of this SMSC account match parts sent on any other one."""
        register = getattr(self.sink, "register_smsc_account", None)
        if register is None:
            return
        try:
            register(self.name, receipts.account_key(self.conn))
        except Exception:  # the store reports its own trouble; the uplink still runs
            log.exception("%s: could not record the SMSC account", self.name)
        self._register_id_base()

    def _register_id_base(self) -> None:
        """In "auto" the journal reads an unmatched receipt's id the mixed ways too and
        tells us which convention matched; a convention learned before a restart is kept."""
        register = getattr(self.sink, "register_id_base", None)
        if register is None:
            return
        try:
            learned = register(self.name, self.conn.messageidbase, self._learn_id_base)
        except Exception:
            log.exception("%s: could not record the message id base", self.name)
            return
        if learned:
            self._learn_id_base(learned)

    def _note_letters(self, side: str, raw_id) -> None:
        """The first id with a hex letter on `side` goes to the journal (once per side and
        run): which mixed convention may be guessed (store/receipt_match.py `plausible`)."""
        if side not in self._letters_unseen or not receipts.has_hex_letter(raw_id):
            return
        self._letters_unseen.discard(side)
        note = getattr(self.sink, "id_letters_seen", None)
        if note is None:
            return
        try:
            note(self.name, side)
        except Exception:
            log.exception("%s: could not record the id base evidence", self.name)

    def _learn_id_base(self, convention: str) -> None:
        """Read ids by `convention` from now on (called on the journal's writer thread;
        the journal still tries the other readings for parts sent before)."""
        if self.conn.messageidbase != "auto" or convention == self._id_base_learned:
            return
        self._id_base_learned = convention
        self._resp_base, self._receipt_base = receipts.id_bases(convention)
        log.info("%s: receipts use %s; reading them so", self.name,
                 receipts.CONVENTION_WORDS.get(convention, convention))

    def _poke(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    # --- the worker thread ---

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self.clock.monotonic()
            try:
                self._sweep_orphans()
                if self._client is None:
                    self._connect_or_wait()
                else:
                    self._cycle()
            except LinkDown as exc:
                self._drop(str(exc))
            except Exception as exc:  # one bad PDU must not end the uplink
                log.exception("%s: worker step failed", self.name)
                self._drop(f"internal error: {exc}")
        self._flush_results()
        self._close_politely()
        self._return_all("stopped", "the uplink was stopped")
        self.state = "stopped"

    def _connect_or_wait(self) -> None:
        self._return_all("not_bound", "the uplink is not bound")
        wait = self._retry_at - self.clock.monotonic()
        if wait > 0:
            self.clock.wait(self._stop, min(wait, TICK))
            return
        self.state = "connecting"
        client = smpplib.client.Client(self.conn.host, self.conn.port,
                                       timeout=max(1.0, self.conn.submittimeout),
                                       allow_unknown_opt_params=True)
        reason = self._bind(client)
        if reason:
            _close(client)
            self.counts["bind_failures"] += 1
            self._schedule_retry(reason, self._health.refused(reason))
            return
        self._bound(client)

    def _bind(self, client) -> str:
        """Connect and bind; '' when bound, else why not (the SMSC's reason if it gave one)."""
        try:
            client.connect()
            _no_delay(client._socket)
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            return f"connect failed: {str(exc) or 'no answer'}"
        command = f"bind_{self.conn.mode}"
        try:
            resp = _send_bind(client, command, self._bind_args())
        except smpplib.exceptions.PDUError as exc:
            return _with_length_notes(_bind_error(command, exc), self.conn)
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            return f"{command} failed: {str(exc) or 'the SMSC closed the link before answering'}"
        except UnicodeEncodeError:      # a value the config did not check (it refuses them)
            return f"{command} not sent: a field has a character outside Latin-1"
        if resp.command == "unbind":           # some SMSCs answer bad credentials this way
            try:       # smpplib's send_pdu refuses an unbind_resp before a bind: raw bytes
                client._socket.sendall(self._reply_with(client, resp, "unbind_resp").generate())
            except OSError:
                pass
            return _with_length_notes(f"{command} refused: the SMSC answered with unbind",
                                      self.conn)
        if resp.command != f"{command}_resp":
            return f"{command} refused: the SMSC answered with {resp.command}"
        return ""

    def _bind_args(self) -> dict:
        version = self.conn.protocolversion.replace(".", "")
        return {"system_id": self.conn.username, "password": self.conn.password,
                "system_type": self.conn.systemtype,
                "interface_version": int(version, 16) if version.isdigit() else 0x34,
                "addr_ton": max(0, self._bind_or_source(self.conn.bindton,
                                                        self.conn.sourceaddrton)),
                "addr_npi": max(0, self._bind_or_source(self.conn.bindnpi,
                                                        self.conn.sourceaddrnpi)),
                "address_range": self.conn.addressrange}

    @staticmethod
    def _bind_or_source(bind_value: int, source_value: int) -> int:
        """Seed BINDTON/BINDNPI; unset, the source TON/NPI as before."""
        return bind_value if bind_value >= 0 else source_value

    def _bound(self, client) -> None:
        self._client = client
        self._rx.clear()
        self._session += 1
        self._health.bound(self.clock.monotonic())   # the backoff resets once the bind holds
        self._last_rx = self.clock.monotonic()
        self._enquire_sent = None
        self.counts["binds"] += 1
        self.state = "bound"
        log.info("%s: bound as %s to %s:%s", self.name, self.conn.mode, self.conn.host,
                 self.conn.port)
        self._wake_dispatcher()

    def _schedule_retry(self, reason: str, delay: float) -> None:
        self._retry_at = self.clock.monotonic() + delay
        if reason != self.last_error:
            log.warning("%s: %s; retrying in %.1fs", self.name, reason, delay)
        self.last_error = reason
        self.state = "backoff"

    def _sweep_orphans(self) -> None:
        """Receipts on this bind that found no part within the report timeout are dropped
        (by then the part they were for has ended without its report)."""
        now = self.clock.monotonic()
        sweep = getattr(self.sink, "drop_orphan_reports", None)
        if sweep is None or now < self._next_sweep:
            return
        self._next_sweep = now + ORPHAN_SWEEP
        max_age = self.conn.report_timeout_hours * 3600.0
        try:
            dropped, self._orphans_waiting = sweep(self.name, max_age)
        except Exception:  # a busy store is no reason to drop the link
            log.exception("%s: could not sweep unmatched receipts", self.name)
            return
        if dropped:
            self.counts["orphans_dropped"] += dropped
            log.warning("%s: %d receipts matched no sent part within %gh; dropped", self.name,
                        dropped, self.conn.report_timeout_hours)

    def _orphans_now(self) -> int:
        """Receipts on this bind waiting for their part, as the store has them now (the
        sweep's figure was up to a minute old, in both directions)."""
        count = getattr(self.sink, "orphans_waiting", None)
        if count is None:
            return self._orphans_waiting
        try:
            return count(self.name)
        except Exception:       # a busy or closed store: the sweep's figure
            return self._orphans_waiting

    def _cycle(self) -> None:
        self._send_committed()
        if self._unrecorded:
            self._write_unrecorded()
        self._send_ready()
        self._flush_results(idle=True)
        sock = self._client._socket
        readable, _, _ = select.select([sock, self._wake_r], [], [], self._select_timeout())
        if self._wake_r in readable:
            self._drain_wake()
        if sock in readable:
            self._read_batch(sock)
        self._timers()

    def _select_timeout(self) -> float:
        now = self.clock.monotonic()
        timeout = min(TICK, self._keepalive_due() - now)
        if (self._inbox or self._throttled) and self._throttle.paused(now):
            timeout = min(timeout, self._throttle.until - now)
        if (self._inbox or self._throttled) and self._spacing and self._window.room():
            timeout = min(timeout, self._next_send_at - now)
        if self._held is not None:
            timeout = min(timeout, self._held_since + RESULT_HOLD - now)
        return max(0.0, timeout)

    def _keepalive_due(self) -> float:
        """When `_timers` next has keepalive work: the enquire_link to send, or the answer
        to give up on. Not the time the link went quiet: without KEEPALIVEREQUEST, or while
        an enquire_link waits for its answer, that time is past and select() spun at 100 %
        CPU (an idle link, a half-open one)."""
        if not self.conn.keepaliverequest:
            return float("inf")
        if self._enquire_sent is not None:
            return self._enquire_sent + max(5.0, self.conn.keepaliveperiod)
        return self._last_rx + self.conn.keepaliveperiod

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    # --- sending ---

    def _send_ready(self) -> None:
        if self.conn.mode == "receiver":
            self._return_inbox("receiver", "a receiver bind cannot send")
            return
        if self._reorder_inbox:
            self._reorder()
        now = self.clock.monotonic()
        out: list[bytes] = []           # the whole window refill leaves in one sendall
        while self._window.room() and not self._throttle.paused(now):
            if self._spacing and now < self._next_send_at:
                break                   # LIMITTOMPM: _select_timeout wakes us for the next
            if self._throttled:
                part = self._throttled.pop(0)
            elif self._inbox:
                part = self._inbox.popleft()
            else:
                break
            data = self._submit_sm(part, now)
            if data is not None:
                out.append(data)
                if self._spacing:
                    self._next_send_at = max(self._next_send_at, now) + self._spacing
        if out:
            self._send_bytes(b"".join(out))

    def _reorder(self) -> None:
        """More urgent parts came after those waiting: send order again (worker thread;
        only it takes parts out, so nothing is taken while the lock is held)."""
        with self._inbox_lock:
            self._reorder_inbox = False
            waiting = sorted(self._inbox, key=_send_order)
            self._inbox.clear()
            self._inbox.extend(waiting)

    def _submit_sm(self, part: OutPart, now: float) -> bytes | None:
        """The submit_sm for `part`, put in the window; None when part 1 carries it whole."""
        whole = None
        if self._payload_mode(part):
            if part.seq > 1 and self._covered_by_part_one(part):
                return None
            whole = self._whole_text(part) if part.seq == 1 else None
            if whole is not None:
                self._payload_waiting.setdefault(part.message_id, [])
        fields = codec.submit_fields(part, self.conn, whole_text=whole,
                                     relative_from=self._validity_base(now))
        sequence = self._client.next_sequence()
        data = wire.encode_submit_sm(sequence, fields)
        if data is None:                # a field only smpplib's SubmitSM knows
            data = smpplib.smpp.make_pdu("submit_sm", client=self._client, sequence=sequence,
                                         **fields).generate()
        self._window.add(sequence, part, now)
        return data

    def _validity_base(self, now: float) -> float | None:
        """None while our clock is synchronized (absolute validity, as Kannel sends it);
        else our wall time, to send the validity as the time left: a board whose NTP server
        never answered may be days behind, and an absolute validity days in the past is
        refused or expired at once by the SMSC. Asked every CLOCK_LOOK seconds."""
        if self._clock_checked is None or now - self._clock_checked >= CLOCK_LOOK:
            self._clock_checked = now
            relative = self._clock_synchronized() is False
            if relative != self._relative_validity:
                log.warning("%s: the system clock is %s; validity periods go %s", self.name,
                            "not synchronized" if relative else "synchronized again",
                            "as the time left (relative)" if relative else "absolute again")
            self._relative_validity = relative
        return self.clock.now() if self._relative_validity else None

    def _payload_mode(self, part: OutPart) -> bool:
        return self.conn.usetlvmessagepayload and part.total > 1

    def _covered_by_part_one(self, part: OutPart) -> bool:
        """Part 2..n of a message whose part 1 goes (or went) whole: wait for it, or take
        its reference. False when part 1 was not sent whole here: send this segment."""
        waiting = self._payload_waiting.get(part.message_id)
        if waiting is not None:
            waiting.append(part)
            return True
        reference = self._payload_sent.get(part.message_id)
        if reference is None:
            log.info("%s: part %s of %s: part 1 was not sent whole here; sending the segment",
                     self.name, part.seq, part.message_id)
            return False
        self._submitted(part, reference)
        return True

    def _followers(self, part: OutPart) -> list[OutPart]:
        """Parts 2..n that waited for this part 1 (sent whole); they share its fate."""
        if part.seq != 1 or not self._payload_mode(part):
            return []
        return self._payload_waiting.pop(part.message_id, [])

    def _whole_text(self, part: OutPart) -> str | None:
        get = getattr(self.sink, "get_message", None)
        message = get(part.message_id) if get else None
        return message["body"] if message and part.encoding in ("gsm7", "ucs2") else None

    def _send(self, pdu) -> None:
        self._send_bytes(pdu.generate())

    def _send_bytes(self, data: bytes) -> None:
        """Straight to the socket: smpplib's send_pdu would hex-dump every PDU for a debug
        line nobody logs, and we keep our own idea of the session state."""
        try:
            self._client._socket.sendall(data)
        except OSError as exc:
            raise LinkDown(f"send failed: {exc}") from None

    def _reply(self, pdu, command: str, status: int = ESME_ROK):
        return self._reply_with(self._client, pdu, command, status)

    @staticmethod
    def _reply_with(client, pdu, command: str, status: int = ESME_ROK):
        answer = smpplib.smpp.make_pdu(command, client=client, status=status)
        answer.sequence = pdu.sequence
        return answer

    # --- reading ---

    def _read_batch(self, sock) -> None:
        """Everything the SMSC sent so far, in one recv: its results go to the store
        together, and the dispatcher is woken once for all the slots they freed."""
        self._receive(sock)
        effects: list = []          # (fn, reply pdu or None)
        freed = False
        try:
            for pdu in self._parse_buffer():
                freed |= self._handle(pdu, effects)
            if freed and self._client is not None:
                self._send_ready()  # refill the window first: the SMSC waits, the store can
        except Exception:
            # the link goes (a bad PDU, or the refill's send failed), but what this read
            # settled (submit results already out of the window) is recorded first:
            # dropped, their parts stayed `sending` until a restart sent them again
            self._record_before_drop(effects)
            raise
        self._hold_results(effects)
        self._apply(effects)
        if freed and self._running_low():
            self._wake_dispatcher()

    def _record_before_drop(self, effects: list) -> None:
        """A read whose link goes before its effects were applied: the results held from
        earlier reads, then this read's, in the order they came."""
        if self._held is not None:
            effects.insert(0, (self._held, None))
            self._held = None
        self._apply(effects, settle_now=True)

    def _hold_results(self, effects: list) -> None:
        """A read that brought only submit_sm_resp OKs: keep its results to record with the
        next reads' (one writer call per RESULTS_PER_WRITE results or RESULT_HOLD seconds,
        not per read). Anything else in the read (a receipt, a failure) takes the held
        results with it, first, so the store sees them in the order they came."""
        if len(effects) == 1 and isinstance(effects[0][0], _SubmittedBatch):
            batch = effects.pop()[0]
            if self._held is None:
                self._held, self._held_since = batch, self.clock.monotonic()
            else:
                self._held.results.extend(batch.results)
            if len(self._held.results) >= max(RESULTS_PER_WRITE, self.conn.windowsize):
                effects.append((self._held, None))
                self._held = None
        elif effects and self._held is not None:
            if isinstance(effects[0][0], _SubmittedBatch):     # one batch, held ones first
                self._held.results.extend(effects[0][0].results)
                effects[0] = (self._held, None)
            else:
                effects.insert(0, (self._held, None))
            self._held = None

    def _flush_results(self, *, idle: bool = False) -> None:
        """Record the held results: always, or (`idle`) when they waited RESULT_HOLD or
        nothing is in flight (no answer is coming to take them along)."""
        if self._held is None:
            return
        if idle and len(self._window) and \
                self.clock.monotonic() - self._held_since < RESULT_HOLD:
            return
        held, self._held = self._held, None
        self._apply([(held, None)])

    def _running_low(self) -> bool:
        """Wake the dispatcher when half the parts kept ready beyond the window are gone,
        not at every answer: it then moves a batch, and neither thread is woken per PDU."""
        waiting = len(self._inbox) + len(self._throttled)
        return waiting <= (self.capacity - self.conn.windowsize) // 2

    def _receive(self, sock) -> None:
        try:
            data = sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            raise LinkDown(f"link lost: {str(exc) or 'closed by the SMSC'}") from None
        if not data:
            raise LinkDown("link lost: closed by the SMSC")
        self._rx += data
        self._last_rx = self.clock.monotonic()
        self._enquire_sent = None

    def _parse_buffer(self) -> list:
        """The whole PDUs in the read buffer, parsed by smpplib's PDU classes; a PDU they
        cannot read is skipped by its length (the stream stays in step)."""
        pdus = []
        buf = self._rx
        start = 0
        while len(buf) - start >= 4:
            length = int.from_bytes(buf[start:start + 4], "big")
            if not PDU_HEADER <= length <= MAX_PDU:
                raise LinkDown(f"garbled stream: command_length {length}")
            if len(buf) - start < length:
                break
            raw = bytes(buf[start:start + length])
            start += length
            try:
                pdu = self._read_pdu(raw)
            except (smpplib.exceptions.UnknownCommandError, smpplib.exceptions.PDUError,
                    ValueError, IndexError, KeyError, struct.error) as exc:
                # struct.error: smpplib on a stray byte after the last TLV (an SMSC quirk
                # that dropped the link and resent the submits answered in the same read)
                pdu = None
                log.warning("%s: unreadable PDU ignored: %s", self.name, exc or type(exc))
            if pdu is None:
                self._nack_unknown(raw)
            else:
                pdus.append(pdu)
        del buf[:start]
        return pdus

    def _read_pdu(self, raw: bytes):
        pdu = wire.read_submit_resp(raw) or wire.read_deliver_sm(raw)     # by hand
        if pdu is not None:
            return pdu
        return smpplib.smpp.parse_pdu(raw, client=self._client, allow_unknown_opt_params=True)

    def _nack_unknown(self, raw: bytes) -> None:
        """A request we cannot read gets generic_nack (SMPP 3.4 §3.3); a response nothing."""
        command_id = int.from_bytes(raw[4:8], "big")
        if command_id & 0x80000000:
            return
        nack = smpplib.smpp.make_pdu("generic_nack", client=self._client,
                                     status=ESME_RINVCMDID)
        nack.sequence = int.from_bytes(raw[12:16], "big")
        self._send(nack)

    def _handle(self, pdu, effects: list) -> bool:
        """Dispatch one PDU; True when it freed a window slot."""
        command = pdu.command
        if command == "submit_sm_resp":
            return self._on_submit_resp(pdu, effects)
        if command == "generic_nack":
            return self._on_generic_nack(pdu, effects)
        if command == "deliver_sm":
            self._on_deliver(pdu, effects)
        elif command == "data_sm":       # SMPP 3.4 §4.7: some SMSCs send MO and receipts so
            self._on_deliver(pdu, effects, self._reply(pdu, "data_sm_resp"))
        elif command == "enquire_link":
            self._send(self._reply(pdu, "enquire_link_resp"))
        elif command == "unbind":
            self._flush_results()           # before the receipts of this read
            # the deliver_sm_resp of this read's MO and receipts before the unbind_resp: an
            # SMSC that closes on unbind_resp took them for unanswered and sent them again
            self._apply(effects, settle_now=True)
            effects.clear()
            self._send(self._reply(pdu, "unbind_resp"))
            raise LinkDown("the SMSC unbound")
        elif command not in ("enquire_link_resp", "unbind_resp", "alert_notification"):
            log.info("%s: %s not handled", self.name, command)
            if not command.endswith("_resp"):
                self._send(self._reply(pdu, "generic_nack", ESME_RINVCMDID))
        return False

    def _on_submit_resp(self, pdu, effects: list) -> bool:
        flight = self._window.pop(pdu.sequence)
        if flight is None:
            log.info("%s: submit_sm_resp for unknown sequence %s", self.name, pdu.sequence)
            return False
        status = int(pdu.status or 0)
        if status == ESME_ROK:
            raw_id = getattr(pdu, "message_id", b"") or b""
            reference = receipts.normalise_id(raw_id, self._resp_base)
            if self._letters_unseen:
                self._note_letters("resp", raw_id)
            self._submitted(flight.part, reference, effects)
        else:
            self._refused(flight.part, status, effects)
        return True

    def _submitted(self, part: OutPart, reference: str, effects: list | None = None) -> None:
        self._throttle.ok()
        self._throttle_counts.pop(part.id, None)
        self.counts["submitted"] += 1
        self._rate.add(self.clock.monotonic())
        if part.message_id in self._payload_waiting and part.seq == 1:
            calls = [self._submitted_call(part, reference)]
            calls += [self._submitted_call(p, reference) for p in self._followers(part)]
            self._remember_payload(part.message_id, reference)
        elif effects is not None and self._record_batches:
            self._batch_of(effects).results.append((part.id, reference))
            return
        else:
            calls = [self._submitted_call(part, reference)]
        if effects is None:
            self._apply(calls)
        else:
            effects.extend(calls)

    def _batch_of(self, effects: list) -> "_SubmittedBatch":
        """The batch of submit results at the end of `effects`, or a new one: results that
        came together are recorded in one set-based write, in their place among the
        receipts and failures of the same read."""
        if effects and isinstance(effects[-1][0], _SubmittedBatch):
            return effects[-1][0]
        batch = _SubmittedBatch(self.sink, self.name)
        effects.append((batch, None))
        return batch

    def _submitted_call(self, part: OutPart, reference: str):
        if part.seq == 1 and part.message_id in self._payload_waiting:
            # durable mapping: every part of the message gets this reference
            return (lambda: self.sink.part_submitted(part.id, self.name, reference,
                                                     whole_message=True), None)
        return (lambda: self.sink.part_submitted(part.id, self.name, reference), None)

    def _remember_payload(self, message_id: str, reference: str) -> None:
        self._payload_sent[message_id] = reference
        while len(self._payload_sent) > PAYLOAD_MEMORY:
            self._payload_sent.popitem(last=False)

    def _refused(self, part: OutPart, status: int, effects: list) -> None:
        text = smpplib.consts.DESCRIPTIONS.get(status, "unknown error")
        code = SLOWING.get(status, f"smpp_0x{status:02X}")
        self.last_error = f"submit_sm_resp 0x{status:02X}: {text}"
        if status in SLOWING and self._keep_throttled(part, text):
            return
        retryable = status in TRANSIENT
        for p in [part] + self._followers(part):
            self.counts["retried" if retryable else "failed"] += 1
            effects.append((lambda p=p: self.sink.part_failed(p.id, self.name, code, text,
                                                              retryable), None))

    def _keep_throttled(self, part: OutPart, text: str) -> bool:
        """Pause the sender and keep `part` to send first after the pause; False when it was
        throttled too often in a row and should go back to the store."""
        self.counts["throttled"] += 1
        pause = self._throttle.hit(self.clock.monotonic())
        tries = self._throttle_counts.get(part.id, 0) + 1
        if tries >= MAX_THROTTLED:
            self._throttle_counts.pop(part.id, None)
            log.info("%s: %s; part %s throttled %d times, back to the queue",
                     self.name, text, part.id, tries)
            return False
        self._throttle_counts[part.id] = tries
        self._throttled.append(part)
        self._throttled.sort(key=lambda p: (p.priority, p.id))
        log.info("%s: %s; pausing %.1fs, part %s kept", self.name, text, pause, part.id)
        return True

    def _on_generic_nack(self, pdu, effects: list) -> bool:
        self.counts["generic_nacks"] += 1
        status = int(pdu.status or 0)
        self.last_error = f"generic_nack 0x{status:02X} for sequence {pdu.sequence}"
        flight = self._window.pop(pdu.sequence)
        if flight is None:
            log.info("%s: %s (no submit_sm in flight with that sequence)", self.name,
                     self.last_error)
            return False
        part = flight.part
        if status in SLOWING and self._keep_throttled(part, self.last_error):
            return True
        log.info("%s: %s; part %s back to the queue", self.name, self.last_error, part.id)
        reason = self.last_error
        for p in [part] + self._followers(part):
            self.counts["retried"] += 1
            effects.append((lambda p=p: self.sink.part_failed(p.id, self.name, "generic_nack",
                                                              reason, True), None))
        return True

    def _on_deliver(self, pdu, effects: list, reply=None) -> None:
        """A deliver_sm (or data_sm, with its `reply`): a receipt or an MO."""
        fields = pdu_fields(pdu)
        reply = reply or wire.Reply(pdu.sequence)
        receipted = fields.get("receipted_message_id")
        if receipts.is_receipt(fields["esm_class"]) or receipted:
            # the receipt text may come in message_payload (an empty short_message)
            text = _text(fields["short_message"] or fields.get("message_payload") or b"")
            receipt = receipts.read_receipt(text, receipted, fields.get("message_state"),
                                            self._receipt_base)
            if receipt is None:
                effects.append((lambda: None, reply))
                return
            self.counts["receipts"] += 1
            if self._letters_unseen:
                self._note_letters("receipt", receipt.raw_id)
            report = Report(self.name, receipt.message_id, receipt.status, receipt.code,
                            receipt.detail)
            effects.append((lambda: self.sink.report(report), reply))
            return
        try:
            fragment = codec.inbound_fragment(self.name, fields, self.clock.now(),
                                              self._alphabet)
        except ValueError as exc:       # PduError: a UDH that overruns the message
            log.warning("%s: an inbound SMS from %s cannot be read (%s); kept as raw data",
                        self.name, fields.get("source_addr"), exc)
            fragment = codec.raw_fragment(self.name, fields, self.clock.now())
        self.counts["inbound"] += 1
        effects.append((lambda: self.sink.inbound(fragment), reply))

    def _apply(self, effects: list, *, settle_now: bool = False) -> None:
        """Run the sink calls (in one commit), then send the replies. With the journal the
        replies leave after the commit without this thread waiting for it (`_committed`),
        unless `settle_now` (the SMSC is unbinding: answer before the link goes)."""
        if not effects:
            return
        write_many = getattr(self.sink, "write_many", None)
        if write_many is not None:
            if self._write_later and not settle_now and any(r is not None for _, r in effects):
                return self._apply_later(write_many, effects)
            return self._apply_batch(write_many, effects)
        failed = set()

        def run(item):
            fn, reply = item
            try:
                fn()
            except Exception:
                log.exception("%s: the store refused an update", self.name)
                if reply is not None:
                    failed.add(id(reply))
        if len(effects) == 1:
            run(effects[0])
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=16,
                                                thread_name_prefix=f"{self.name}-sink")
            list(self._pool.map(run, effects))
        self._send_replies(effects, failed)

    def _apply_batch(self, write_many, effects: list) -> None:
        """The journal's path: every result of a read batch in one transaction and one
        fsync, on this thread (no hand-off per result). Without a reply to send (only
        submit_sm_resp results) the thread does not wait for the commit: it goes on filling
        the window (a crash before that commit sends those parts again at restart)."""
        if all(reply is None for _, reply in effects):
            if not self._write_later:
                try:
                    write_many([fn for fn, _ in effects], wait=False)
                except Exception as exc:
                    log.error("%s: the store refused %d updates: %s", self.name,
                              len(effects), exc)
                return
            try:
                write_many([fn for fn, _ in effects],
                           then=lambda errors: self._results_committed(effects, errors))
            except Exception as exc:
                self._results_committed(effects, [exc] * len(effects))
            return
        try:
            errors = write_many([fn for fn, _ in effects])
        except Exception as exc:          # the store is down: the SMSC sends them again
            log.error("%s: the store refused %d updates: %s", self.name, len(effects), exc)
            errors = [exc] * len(effects)
        self._send_replies(effects, self._refused_replies(effects, errors))

    def _apply_later(self, write_many, effects: list) -> None:
        """Receipts and MO: the writes are queued for the next group commit and this thread
        goes on sending submit_sm; the writer hands the outcome back (`_on_commit`) and
        the deliver_sm_resp leave from `_send_committed`, never before the commit."""
        session = self._session
        self._replies_pending += 1
        try:
            write_many([fn for fn, _ in effects],
                       then=lambda errors: self._on_commit(session, effects, errors))
        except Exception as exc:          # the store is down: the SMSC sends them again
            log.error("%s: the store refused %d updates: %s", self.name, len(effects), exc)
            self._on_commit(session, effects, [exc] * len(effects))

    def _results_committed(self, effects: list, errors: list) -> None:
        """On the writer thread: submit results the store refused (a full disk) are
        written again from this channel's thread a second later, until they take. A lost
        record left its part `sending` until a restart sent it again."""
        failed = [effect for effect, error in zip(effects, errors) if error is not None]
        if not failed:
            return
        if not self._unrecorded:        # one line a streak, not one a second
            error = next(e for e in errors if e is not None)
            log.error("%s: the store refused %d submit results (%s); writing them again",
                      self.name, len(failed), error)
        self._unrecorded.append((self.clock.monotonic() + UNRECORDED_RETRY, failed))
        self._poke()

    def _write_unrecorded(self) -> None:
        now = self.clock.monotonic()
        while self._unrecorded and self._unrecorded[0][0] <= now:
            _, effects = self._unrecorded.popleft()
            self._apply(effects)

    def _on_commit(self, session: int, effects: list, errors: list) -> None:
        """On the writer thread, after the commit: hand the replies to the worker."""
        self._committed.append((session, effects, errors))
        self._poke()

    def _send_committed(self) -> None:
        while self._committed:
            session, effects, errors = self._committed.popleft()
            self._replies_pending -= 1
            if session != self._session or self._client is None:
                continue        # that bind is gone: the SMSC sends those PDUs again
            self._send_replies(effects, self._refused_replies(effects, errors))

    def _refused_replies(self, effects: list, errors: list) -> set:
        """The replies whose write the store refused (logged once each): they get an error
        status instead of ESME_ROK."""
        failed = set()
        for (_, reply), error in zip(effects, errors):
            if error is not None:
                log.error("%s: the store refused an update: %s", self.name, error)
                if reply is not None:
                    failed.add(id(reply))
        return failed

    def _send_replies(self, effects: list, failed: set) -> None:
        sent = set()
        out: list[bytes] = []
        for _, reply in effects:
            if reply is not None and id(reply) not in sent:
                sent.add(id(reply))
                if id(reply) in failed:
                    reply.status = ESME_RSYSERR   # the SMSC sends it again later
                out.append(reply.generate())
        if out and self._client is not None:
            self._send_bytes(b"".join(out))

    # --- timers ---

    def _timers(self) -> None:
        now = self.clock.monotonic()
        if self._health.check(now):
            log.info("%s: the bind held %gs; the uplink is no longer failing", self.name,
                     self._health.stable_after)
        oldest = self._window.oldest()
        if oldest is not None and now - oldest > self.conn.submittimeout:
            if self.conn.submittimeoutaction == "SubmitSuccess":
                self._assume_submitted(now - self.conn.submittimeout)
            raise LinkDown(f"no submit_sm_resp within {self.conn.submittimeout:g}s")
        if not self.conn.keepaliverequest:
            return                      # seed KEEPALIVEREQUEST=off: no enquire_link from us
        if self._enquire_sent is not None:
            if now - self._enquire_sent > max(5.0, self.conn.keepaliveperiod):
                raise LinkDown("enquire_link unanswered")
        elif now - self._last_rx >= self.conn.keepaliveperiod:
            self._send(smpplib.smpp.make_pdu("enquire_link", client=self._client))
            self._enquire_sent = now

    def _assume_submitted(self, sent_before: float) -> None:
        """SUBMITTIMEOUTACTION=SubmitSuccess: an unanswered submit counts as submitted (no
        reference, so no receipt), never sent twice; the rest of the window is retried."""
        for part in self._window.take_older(sent_before):
            log.warning("%s: part %s unanswered, counted as submitted (SubmitSuccess)",
                        self.name, part.id)
            self._submitted(part, "")

    # --- link loss and shutdown ---

    def _drop(self, reason: str) -> None:
        self._flush_results()
        _close(self._client)
        self._client = None
        self.counts["link_drops"] += 1
        self._return_all("link_down", reason)
        delay, reason = self._health.lost(self.clock.monotonic(), reason)
        if self._health.failing:
            self.counts["bind_failures"] += 1
        self._schedule_retry(reason, delay)

    def _return_all(self, code: str, reason: str) -> None:
        parts = self._window.drain() + self._throttled
        self._throttled = []
        for waiting in self._payload_waiting.values():
            parts += waiting
        self._payload_waiting.clear()
        self._throttle_counts.clear()
        parts += self._take_inbox()
        self._give_back(parts, code, reason)

    def _return_inbox(self, code: str, reason: str) -> None:
        self._give_back(self._take_inbox(), code, reason)

    def _take_inbox(self) -> list[OutPart]:
        parts = []
        while self._inbox:
            parts.append(self._inbox.popleft())
        return parts

    def _give_back(self, parts: list[OutPart], code: str, reason: str) -> None:
        if not parts:
            return
        self.counts["retried"] += len(parts)
        self._apply([(lambda p=p: self.sink.part_failed(p.id, self.name, code, reason, True),
                      None) for p in parts])

    def _settle_replies(self, rounds: int = 20) -> None:
        """Before unbinding: the answers to receipts whose commit is under way still leave
        (a short wait; the SMSC sends the rest again on the next bind)."""
        for _ in range(rounds):
            self._send_committed()
            if not self._replies_pending:
                return
            select.select([self._wake_r], [], [], 0.1)
            self._drain_wake()

    def _close_politely(self) -> None:
        if self._client is None:
            return
        try:
            self._settle_replies()
            self._send(smpplib.smpp.make_pdu("unbind", client=self._client))
            sock = self._client._socket
            sock.settimeout(1.0)
            for _ in range(self.conn.windowsize + 1):
                self._receive(sock)
                pdus = self._parse_buffer()
                effects: list = []
                for pdu in pdus:
                    if pdu.command == "submit_sm_resp":
                        self._on_submit_resp(pdu, effects)
                self._apply(effects)
                if any(pdu.command == "unbind_resp" for pdu in pdus):
                    break
        except Exception:  # the SMSC may close first; what is still in flight goes back
            pass
        _close(self._client)
        self._client = None


class _SubmittedBatch:
    """One sink call for the submit_sm_resp OKs of one read: `parts_submitted`."""

    __slots__ = ("sink", "connection", "results")

    def __init__(self, sink, connection: str):
        self.sink = sink
        self.connection = connection
        self.results: list[tuple[int, str]] = []

    def __call__(self) -> None:
        self.sink.parts_submitted(self.connection, self.results)


def _send_order(part: OutPart) -> tuple[int, int]:
    return part.priority, part.id


def _send_bind(client, command: str, args: dict):
    """smpplib's Client._bind, with each text field sent whole (smpplib would cut one longer
    than SMPP allows to that length: uplink/bind_fields.py)."""
    pdu = smpplib.smpp.make_pdu(command, client=client, **args)
    longer = bind_fields.longer_than_allowed(args)
    if longer:          # on this PDU only: smpplib's class keeps the protocol's limits
        pdu.params = {**pdu.params, **{field: smpplib.command.Param(type=str, max=size)
                                       for field, size in longer.items()}}
    client.send_pdu(pdu)
    try:
        resp = client.read_pdu()
    except socket.timeout:
        raise smpplib.exceptions.ConnectionError() from None
    if resp.is_error():
        raise smpplib.exceptions.PDUError(f"({resp.status}) {resp.command}", int(resp.status))
    return resp


def _with_length_notes(reason: str, conn) -> str:
    """A refused bind's reason, and which field is longer than SMPP allows, if one is."""
    notes = [note.split(";")[0] for note in bind_fields.over_limit(conn)]
    return f"{reason} ({'; '.join(notes)})" if notes else reason


def _bind_error(command: str, exc) -> str:
    """A bind_resp error in the SMSC's words: `bind_transmitter refused: 0x0E Invalid Password`."""
    status = exc.args[1] if len(exc.args) > 1 else None
    if not isinstance(status, int):
        return f"{command} failed: {exc}"
    text = smpplib.consts.DESCRIPTIONS.get(status, "unknown error")
    return f"{command} refused: 0x{status:02X} {text}"


def pdu_fields(pdu) -> dict:
    names = ("source_addr", "source_addr_ton", "destination_addr", "dest_addr_ton",
             "esm_class", "data_coding", "short_message", "message_payload",
             "receipted_message_id", "message_state", "sar_msg_ref_num",
             "sar_total_segments", "sar_segment_seqnum")
    fields = {name: getattr(pdu, name, None) for name in names}
    fields["esm_class"] = int(fields["esm_class"] or 0)
    fields["short_message"] = fields["short_message"] or b""
    if isinstance(fields["receipted_message_id"], bytes):
        fields["receipted_message_id"] = fields["receipted_message_id"].decode("latin-1")
    return fields


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else (value or "")


def _close(client) -> None:
    if client is None:
        return
    try:
        client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN   # no "bound state" warning
        client.disconnect()
    except Exception:
        pass
