"""Accepting messages: the rows one accept call (or several queued together) writes.

The common case (ids this appliance made, no duplicate window) is checked message by message
in memory and then written with one multi-row INSERT per table for the whole batch, and the
batches of several HTTP requests queued behind one commit are written together
(`GroupWriter._run_together` calls `accept_together` with all of them). Each SQLite statement
gives up the GIL and takes it back; with the event-loop thread busy, taking it back is a wait
and a context switch, so a statement per message was a hand-over per message. Here a
commit of eight requests is a handful of statements.

A call with a client-chosen id (the Ozeki 10 JSON `message_id`: it may be a duplicate) or
under a duplicate window (which must see the messages before it) is written message by
message, as before, so a refused message refuses only itself and undoes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import zlib

from appliance.errors import ValidationError
from appliance.model import NewMessage, State

_MESSAGE_COLUMNS = (
    "id, direction, user, recipient, originator, messagetype, body, encoding, msg_class, state,"
    " parts_total, priority, created, send_at, valid_until, updated, want_report,"
    " serviceprovider, dialect, client_ref, callback, extra, dedupe, valid_relative, charged")
_MESSAGE_VALUES = "(?,'out',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_PART_COLUMNS = ("message_id, seq, total, concat_ref, encoding, text, data, udh, pid, dcs,"
                 " state, priority, next_attempt, valid_until")
_PART_VALUES = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_MESSAGES_INTO = f"INSERT INTO messages({_MESSAGE_COLUMNS}) VALUES "
_PARTS_INTO = f"INSERT INTO parts({_PART_COLUMNS}) VALUES "
_INSERT_MESSAGE = _MESSAGES_INTO + _MESSAGE_VALUES
_INSERT_PART = _PARTS_INTO + _PART_VALUES
# Rows per statement: 32 messages are 704 bound values, well under SQLite's limit; chunks are
# powers of two, so a handful of statement texts stay in the connection's statement cache.
_CHUNK = 32
_LEDGER_INTO = "INSERT INTO ledger(user, delta, reason, message_id, at) VALUES "
_LEDGER_VALUES = "(?,?,?,?,?)"
# The enum's `.value` is a Python-level property call: read once, not per message.
_QUEUED = State.QUEUED.value
_SCHEDULED = State.SCHEDULED.value


class Accept:
    """One accept call's write for the GroupWriter: its messages and their acceptance time.

    `replayable`: it changes nothing but the database (GroupWriter runs a batch of them
    without savepoints). `together` is set when the call may be written with the others of
    its commit (`accept_together`)."""

    __slots__ = ("messages", "now", "default_window", "together")
    replayable = True

    def __init__(self, messages: list[NewMessage], now: float, default_window: float):
        self.messages = messages
        self.now = now
        self.default_window = default_window
        self.together = accept_together if _plain(messages, default_window) else None

    def __call__(self, conn) -> list:
        if self.together is not None:
            return accept_together(conn, [self])[0]
        return _accept_one_by_one(conn, self)


def _plain(messages: list[NewMessage], default_window: float) -> bool:
    """Every message has a generated id and no duplicate window."""
    for msg in messages:
        if msg.submission.message_id or _window(msg, default_window) > 0:
            return False
    return True


def accept_together(conn, calls: list[Accept]) -> list[list]:
    """Write the messages of plain calls (generated ids, no duplicate window) with one
    multi-row INSERT per table; per call, one result per message: its id or the
    ValidationError (no credit) that refused it."""
    credit = Credit(conn)
    results: list[list] = []
    message_rows: list[tuple] = []
    part_rows: list[tuple] = []
    for call in calls:
        answers = []
        for msg in call.messages:
            user, cost = msg.submission.user, len(msg.parts)
            try:
                charged = credit.check(user, cost)
            except ValidationError as exc:
                answers.append(exc)
                continue
            credit.debit(user, cost, msg.id, call.now)
            state, due = _state_and_due(msg, call.now)
            message_rows.append(_message_row(msg, call.now, state, False, charged))
            part_rows += _part_rows(msg, state, due)
            answers.append(msg.id)
        results.append(answers)
    _insert_many(conn, _MESSAGES_INTO, _MESSAGE_VALUES, message_rows)
    _insert_many(conn, _PARTS_INTO, _PART_VALUES, part_rows)
    credit.write()
    return results


def _insert_many(conn, into: str, values: str, rows: list[tuple]) -> None:
    """`rows` in statements of up to _CHUNK rows each (`into` + `values` repeated)."""
    at = 0
    while at < len(rows):
        size = min(_CHUNK, 1 << ((len(rows) - at).bit_length() - 1))   # a power of two
        statement = into + ",".join([values] * size)
        conn.execute(statement, [v for row in rows[at:at + size] for v in row])
        at += size


# --- message by message: client-chosen ids, duplicate windows -------------------------------


def _accept_one_by_one(conn, call: Accept) -> list:
    """Each message is checked before it writes anything (dedupe read, credit read from the
    running balance, then the message row, whose duplicate id is the first write), so a
    refused message undoes nothing and refuses only itself."""
    credit = Credit(conn)
    results = [_accept_one(conn, m, call, credit) for m in call.messages]
    credit.write()
    return results


def _accept_one(conn, msg: NewMessage, call: Accept, credit: "Credit"):
    user, cost = msg.submission.user, len(msg.parts)
    window = _window(msg, call.default_window)
    try:
        if window > 0:
            _check_duplicate(conn, msg, call.now, window)
        charged = credit.check(user, cost)
        state, due = _state_and_due(msg, call.now)
        conn.execute(_INSERT_MESSAGE, _message_row(msg, call.now, state, window > 0, charged))
    except ValidationError as exc:
        return exc
    except sqlite3.IntegrityError:   # the message row is the first write: nothing to undo
        return ValidationError("duplicate_id", f"message id {msg.id} already exists", "id")
    # Past this point a failure is the store's: the writer's savepoint undoes the call.
    rows = _part_rows(msg, state, due)
    if len(rows) == 1:      # the common case: one statement, no executemany iterator
        conn.execute(_INSERT_PART, rows[0])
    else:
        conn.executemany(_INSERT_PART, rows)
    credit.debit(user, cost, msg.id, call.now)
    return msg.id


def _window(msg: NewMessage, default: float) -> float:
    window = getattr(msg.submission, "dedupe_window", None)
    return default if window is None else window


def _check_duplicate(conn, msg: NewMessage, now: float, window: float) -> None:
    """Among messages accepted under a window (store/message_indexes.py). The same text for
    another send time (tomorrow's reminder) is not a duplicate, nor is one that replaces a
    message cancelled (deleted) in the window: either was refused with bulksms 1041, which
    tells the client not to retry, and the message was lost. A message sent and then filed
    in the deleted folder still counts (its state is not `deleted`: that is "cancelled")."""
    sub = msg.submission
    row = conn.execute(
        "SELECT 1 FROM messages WHERE dedupe=1 AND direction='out' AND user=? AND"
        " recipient=? AND created>=? AND body=? AND send_at IS ? AND state<>'deleted' LIMIT 1",
        (sub.user, sub.recipient, now - window, sub.text, sub.send_at)).fetchone()
    if row:
        raise ValidationError("duplicate", "the same message was sent to this recipient "
                              "moments ago", "messagedata")


# --- rows -------------------------------------------------------------------------------------


def _state_and_due(msg: NewMessage, now: float) -> tuple[str, float]:
    send_at = msg.submission.send_at
    if send_at is not None and send_at > now:
        return _SCHEDULED, send_at
    return _QUEUED, now


def _message_row(msg: NewMessage, now: float, state: str, dedupe: bool,
                 charged: bool) -> tuple:
    """`dedupe`: accepted under a duplicate window, so later duplicate checks see it.
    `charged`: its parts were debited, so a refund gives them back (store/refunds.py)."""
    sub = msg.submission
    return (msg.id, sub.user, sub.recipient, sub.originator, sub.messagetype, sub.text,
            msg.encoding, msg.msg_class, state, len(msg.parts), int(sub.priority), now,
            sub.send_at, sub.valid_until, now, int(sub.want_report), sub.serviceprovider,
            sub.dialect, sub.client_ref, _json(sub.callback),
            _json(sub.smpp_params or None), int(dedupe), int(sub.validity_relative),
            int(charged))


def _part_rows(msg: NewMessage, state: str, due: float) -> list[tuple]:
    sub = msg.submission
    ref = concat_ref(msg.id)
    priority = int(sub.priority)
    return [(msg.id, p.seq, p.total, ref, p.encoding, p.text, p.data, p.udh, p.pid, p.dcs,
             state, priority, due, sub.valid_until) for p in msg.parts]


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def concat_ref(message_id: str) -> int:
    # Stable per message, so a retried part carries the same reference as its siblings.
    if not message_id:
        return 1
    try:
        value = int(message_id.replace("-", "")[-8:], 16)   # the random end of ids.py's UUIDs
    except ValueError:          # a client-chosen id (Ozeki 10 JSON) need not be hex
        value = zlib.crc32(message_id.encode("utf-8"))
    return value % 255 + 1


class Credit:
    """The balances one writer call reads and debits, inside the writer's transaction.

    Read once per user (balance and the unlimited setting in one statement); the running
    balance is kept here so message 3 sees message 2's debit; `write` applies one UPDATE per
    user and the ledger rows (multi-row INSERTs, as the messages). Only debits of accepted
    messages are recorded, and all of them in the same transaction as their messages: an
    error rolls back both, never one of them."""

    __slots__ = ("_conn", "_accounts", "_ledger")

    def __init__(self, conn):
        self._conn = conn
        self._accounts: dict[str, list | None] = {}    # user -> [balance, debited] or None
        self._ledger: list[tuple] = []

    def _account(self, user: str) -> list | None:
        if user not in self._accounts:
            row = self._conn.execute(
                "SELECT balance, EXISTS(SELECT 1 FROM unlimited_users u WHERE u.user=b.user)"
                " FROM balances b WHERE b.user=?", (user,)).fetchone()
            # no credit account (internal senders) or unlimited by the setting: no debit
            self._accounts[user] = None if row is None or row[1] else [row[0], 0]
        return self._accounts[user]

    def check(self, user: str, cost: int) -> bool:
        """Raises ValidationError if `user` cannot pay `cost` parts; otherwise whether
        `user`'s messages are debited at all (the message row's `charged`)."""
        account = self._account(user)
        if account is None:
            return False
        balance = account[0]
        # Seed 003: "less than or equal to zero, the user cannot send SMS messages".
        if balance <= 0 or balance < cost:
            raise ValidationError("no_credit", f"insufficient credit: {balance} left, "
                                  f"{cost} needed", "credits")
        return True

    def debit(self, user: str, cost: int, message_id: str, now: float) -> None:
        account = self._accounts.get(user)
        if account is None:
            return
        account[0] -= cost
        account[1] += cost
        self._ledger.append((user, -cost, "send", message_id, now))

    def write(self) -> None:
        for user, account in self._accounts.items():
            if account is not None and account[1]:
                self._conn.execute("UPDATE balances SET balance=balance-? WHERE user=?",
                                   (account[1], user))
        # multi-row, as the messages: executemany gave up the GIL once per row
        _insert_many(self._conn, _LEDGER_INTO, _LEDGER_VALUES, self._ledger)
