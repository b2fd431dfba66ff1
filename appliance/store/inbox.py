"""Inbound SMS and the folder views. Functions here run inside the writer's transaction,
except `folder_query`, which builds a read query.

Long inbound messages are joined by the codec's `Reassembler`; its fragments live in the
`fragments` table (through `SqliteFragments`), so a restart between part 1 and part 2 loses
nothing.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict

import logging

from appliance import gsm
from appliance.ids import new_message_id
from appliance.logmask import masked
from appliance.gsm.reassembly import join, total_of
from appliance.model import FOLDER_STATES, InboundFragment
from appliance.store import message_state

INBOUND_USER = "admin"

log = logging.getLogger("appliance.store")


class SqliteFragments:
    """The Reassembler's FragmentStore, kept in the journal's `fragments` table."""

    def __init__(self, conn):
        self._conn = conn

    def put(self, key, seq: int, fragment: InboundFragment, arrived_at: float) -> None:
        self._conn.execute("INSERT OR IGNORE INTO fragments(key, seq, fragment, arrived)"
                           " VALUES (?,?,?,?)", (_key(key), seq, _frag_json(fragment), arrived_at))

    def get(self, key) -> dict[int, InboundFragment]:
        rows = self._conn.execute("SELECT seq, fragment FROM fragments WHERE key=? ORDER BY seq",
                                  (_key(key),)).fetchall()
        return {r["seq"]: _frag_load(r["fragment"]) for r in rows}

    def first_arrival(self, key) -> float | None:
        row = self._conn.execute("SELECT min(arrived) FROM fragments WHERE key=?",
                                 (_key(key),)).fetchone()
        return row[0]

    def pop(self, key) -> dict[int, InboundFragment]:
        parts = self.get(key)
        self._conn.execute("DELETE FROM fragments WHERE key=?", (_key(key),))
        return parts

    def keys_older_than(self, t: float) -> list:
        rows = self._conn.execute("SELECT key FROM fragments GROUP BY key HAVING min(arrived)<?",
                                  (t,)).fetchall()
        return [tuple(json.loads(r[0])) for r in rows]


def _key(key) -> str:
    return json.dumps(list(key))


def _frag_json(fragment: InboundFragment) -> str:
    data = asdict(fragment)
    data["data"] = fragment.data.hex()
    data["udh"] = fragment.udh.hex()
    data["raw"] = fragment.raw.hex()
    return json.dumps(data)


def _frag_load(text: str) -> InboundFragment:
    data = json.loads(text)
    data["data"] = bytes.fromhex(data["data"])
    data["udh"] = bytes.fromhex(data.get("udh") or "")   # fragments kept by older versions
    data["raw"] = bytes.fromhex(data.get("raw") or "")   # (decoded part by part, as before)
    if data.get("concat") is not None:
        data["concat"] = tuple(data["concat"])
    return InboundFragment(**data)


SEEN_KEEP_SECONDS = 7 * 24 * 3600
PURGED_KEEP_SECONDS = 7 * 24 * 3600      # longer than any SMSC keeps trying
PURGE_BATCH = 500                         # messages a purge deletes per transaction


def receive(conn, fragment: InboundFragment, now: float, timeout: float = 3600.0,
            owner_of=None) -> str | None:
    """Keep a received SMS; returns the inbox message id once it is whole.

    An SMS read again (a crash between our commit and its deletion from the SIM, or an
    SMSC redelivering after a late acknowledgement) has the same sender, SCTS and part
    number as before: it is recognised and dropped instead of shown twice.
    """
    if _seen_before(conn, fragment, now):
        return None
    joined = _reassembler(conn, timeout).add(fragment, now)
    return _store_inbound(conn, joined, now, owner_of) if joined is not None else None


def receive_once(conn, fragment: InboundFragment, provider_id: str, now: float,
                 owner_of=None) -> tuple[str | None, bool]:
    """Keep an SMS a provider may deliver again (it lost our answer): (inbox id, repeat).

    A repeat carries the same msgid (`provider_id`), or without one the same sent time,
    and the same sender and text; it is not stored again and gets the id of the first
    answer, which is what the provider waits for. Without a msgid or a sent time a repeat cannot be told from a new SMS.
    """
    key = _repeat_key(fragment, provider_id)
    if key is None:
        return receive(conn, fragment, now, owner_of=owner_of), False
    conn.execute("DELETE FROM inbound_ids WHERE at<?", (now - SEEN_KEEP_SECONDS,))
    row = conn.execute("SELECT message_id FROM inbound_ids WHERE connection=? AND key=?",
                       (fragment.connection, key)).fetchone()
    if row is not None:
        return row[0], True
    message_id = receive(conn, fragment, now, owner_of=owner_of)
    if message_id is None:              # seen before this table kept ids: no id to give
        return None, True
    conn.execute("INSERT INTO inbound_ids VALUES (?,?,?,?)",
                 (fragment.connection, key, message_id, now))
    return message_id, False


def _repeat_key(fragment: InboundFragment, provider_id: str) -> str | None:
    if not provider_id and fragment.sent_at is None:
        return None
    # The provider's msgid names the SMS by itself: a repeat may add, drop or restamp
    # senttime. The sent time stands in only when there is no msgid (None keeps the key
    # of an SMS posted without senttime as it was).
    sent_at = None if provider_id else fragment.sent_at
    return json.dumps([provider_id, fragment.sender, sent_at, _content_digest(fragment)])


def _seen_before(conn, fragment: InboundFragment, now: float) -> bool:
    if fragment.sent_at is None:        # SMPP deliver_sm carries no SCTS: nothing to match
        return False
    ref, total, seq, _ = fragment.concat or (0, 1, 1, 8)
    # SCTS has one-second resolution: two different SMS from one sender in the same second
    # are told apart by their content (a digest folded into the ref column, above 2**32).
    key = (fragment.connection, fragment.sender, fragment.sent_at,
           ref * 2 ** 32 + _content_digest(fragment), total, seq)
    conn.execute("DELETE FROM inbound_seen WHERE at<?", (now - SEEN_KEEP_SECONDS,))
    cur = conn.execute("INSERT OR IGNORE INTO inbound_seen VALUES (?,?,?,?,?,?,?)", key + (now,))
    return cur.rowcount == 0


def _content_digest(fragment: InboundFragment) -> int:
    content = fragment.text.encode("utf-8") if fragment.text is not None else fragment.data
    return zlib.crc32(content or b"")


def expire(conn, now: float, timeout: float, owner_of=None) -> int:
    """Long messages still incomplete `timeout` seconds after their first part go to the
    inbox as they are: a marker where parts are missing, `code` 'partial' and the missing
    part numbers in `reason` (shown by getmessagebyid and the JSON API)."""
    store = SqliteFragments(conn)
    count = 0
    for key in store.keys_older_than(now - timeout):
        parts = store.pop(key)
        if not parts:
            continue
        total = total_of(parts)
        message_id = _store_inbound(conn, join(parts, total), now, owner_of)
        missing = [str(seq) for seq in range(1, total + 1) if seq not in parts]
        conn.execute("UPDATE messages SET code='partial', reason=? WHERE id=?",
                     (f"partial: part {', '.join(missing)} of {total} never arrived",
                      message_id))
        log.warning("inbox: partial message %s from %s on %s: part %s of %d never arrived",
                    message_id, masked(key[0]), parts[min(parts)].connection,
                    ", ".join(missing), total)
        count += 1
    return count



def _reassembler(conn, timeout: float):
    return gsm.Reassembler(SqliteFragments(conn), timeout=timeout)


def _owner(msg: InboundFragment, owner_of) -> str:
    """`owner_of(fragment) -> user` (appliance.inbound_owner); the admin without one."""
    return (owner_of(msg) if owner_of else "") or INBOUND_USER


def _store_inbound(conn, msg: InboundFragment, now: float, owner_of=None) -> str:
    message_id = new_message_id()
    messagetype, body = inbound_type_and_body(msg)
    extra = json.dumps({"udh": msg.udh.hex().upper()}) if msg.udh else None
    conn.execute(
        "INSERT INTO messages(id, direction, user, recipient, originator, messagetype, body,"
        " encoding, msg_class, state, created, updated, connection, sent_time, want_report,"
        " extra) VALUES (?,'in',?,?,?,?,?,?,?,'delivered',?,?,?,?,0,?)",
        (message_id, _owner(msg, owner_of), msg.recipient, msg.sender, messagetype, body,
         msg.encoding, msg.msg_class, msg.received_at or now, now, msg.connection, msg.sent_at,
         extra))
    conn.execute("INSERT INTO events(message_id, kind, at, next_attempt) VALUES (?,?,?,?)",
                 (message_id, "inbound", now, now))
    _log_for_rules(conn, message_id, msg, messagetype, body, owner_of, now)
    return message_id


LOG_KEEP_SECONDS = 2 * 86400     # the rules take an entry within seconds; kept this long


def _log_for_rules(conn, message_id: str, msg: InboundFragment, messagetype: str, body: str,
                   owner_of, now: float) -> None:
    """A copy for the inbound rules, by a key never reused: they followed the inbox by
    rowid, and a purge of the newest rows let new SMS take rowids the rules had passed (a
    STOP never honoured); a copy also outlives a client's download-and-purge."""
    conn.execute("DELETE FROM inbound_log WHERE seq IN (SELECT seq FROM inbound_log"
                 " ORDER BY seq LIMIT 50) AND created<?", (now - LOG_KEEP_SECONDS,))
    conn.execute("INSERT INTO inbound_log(message_id, user, recipient, originator, body,"
                 " messagetype, connection, created) VALUES (?,?,?,?,?,?,?,?)",
                 (message_id, _owner(msg, owner_of), msg.recipient, msg.sender, body,
                  messagetype, msg.connection, msg.received_at or now))


def inbound_type_and_body(msg: InboundFragment) -> tuple[str, str]:
    """How a received SMS is shown, in the vocabulary clients send with (docs/api.md):
    text keeps its class (`SMS:TEXT:CLASS0` is a flash SMS); binary is `SMS:BINARY` with the
    user data in hex, its UDH (length octet first) in front when it had one (port addressing)."""
    if msg.text is not None:
        suffix = f":CLASS{msg.msg_class}" if msg.msg_class is not None else ""
        return "SMS:TEXT" + suffix, msg.text
    header = bytes((len(msg.udh),)) + msg.udh if msg.udh else b""
    return "SMS:BINARY", (header + msg.data).hex().upper()


def folder_query(user: str | None, folder: str, limit: int, unread_only: bool):
    """SQL for a folder view: inbox, outbox, sent, notsent, deleted."""
    where, params = _folder_where(user, folder, unread_only)
    sql = f"SELECT * FROM messages WHERE {where} ORDER BY created, id LIMIT ?"
    return sql, params + [limit]


def _folder_where(user: str | None, folder: str, unread_only: bool) -> tuple[str, list]:
    where, params = ["1=1"], []
    if user is not None:
        where.append("user=?")
        params.append(user)
    if folder == "inbox":
        where.append("direction='in' AND deleted=0")
    elif folder == "deleted":
        where.append("deleted=1")
    else:
        states = FOLDER_STATES[folder]
        where.append(f"direction='out' AND deleted=0 AND state IN ({','.join('?' * len(states))})")
        params.extend(s.value for s in states)
    if unread_only:
        where.append("is_read=0")
    return " AND ".join(where), params


def set_flag(conn, ids: list[str], user: str | None, flag: str,
             now: float | None = None, *, only_unset: bool = False) -> list[str]:
    """Mark messages read or deleted. Deleting an outgoing message cancels its parts that
    no channel holds yet (`now` is the time of that change). `only_unset`: only those not
    marked yet, and say which."""
    done = []
    for message_id in ids:
        sql = f"UPDATE messages SET {flag}=1 WHERE id=?" + (f" AND {flag}=0" if only_unset else "")
        params = [message_id]
        if user is not None:
            sql += " AND user=?"
            params.append(user)
        if conn.execute(sql, params).rowcount:
            done.append(message_id)
            if flag == "deleted" and now is not None:
                message_state.cancel_unsent(conn, message_id, now)
    return done


def claim_unread(conn, ids: list[str], user: str | None) -> list[str]:
    """Mark read those of `ids` still unread, and say which: what one download hands out.
    Two clients polling at once both read the same unread messages; only one marks each."""
    return set_flag(conn, ids, user, "is_read", only_unset=True)


def purge_batch(conn, user: str | None, folder: str, after: int, last: int,
                now: float | None = None) -> tuple[int, int | None]:
    """Delete permanently what is in the `deleted` folder (or mark a whole folder deleted),
    PURGE_BATCH messages at a time, in the order of acceptance: those with `after` < rowid
    <= `last`. Returns how many, and the rowid to go on after (None: the folder is done).

    A part still on a channel when its message is purged reports into nothing: the
    journal drops that result (see `Journal.part_submitted`)."""
    where, params = _folder_where(user, folder, False)
    # NOT INDEXED: along the rowid from `after`, one pass over the table for the whole purge;
    # by messages_box each batch sorted every message of the folder again
    rows = conn.execute(f"SELECT rowid, id FROM messages NOT INDEXED WHERE {where} AND"
                        f" rowid>? AND rowid<=? ORDER BY rowid LIMIT ?",
                        params + [after, last, PURGE_BATCH]).fetchall()
    ids = [row[1] for row in rows]
    more = rows[-1][0] if len(rows) == PURGE_BATCH else None
    if folder != "deleted":
        return len(set_flag(conn, ids, None, "deleted", now)), more
    conn.execute("DELETE FROM purged_refs WHERE at<?", ((now or 0) - PURGED_KEEP_SECONDS,))
    for message_id in ids:
        # a report may still come for a submitted part: it must not become an orphan that
        # a later part with the same (wrapped) reference would take for its own
        conn.execute("INSERT INTO purged_refs SELECT connection, reference, ? FROM parts"
                     " WHERE message_id=? AND reference IS NOT NULL"
                     " AND state IN ('sending','submitted')", (now or 0, message_id))
        conn.execute("DELETE FROM parts WHERE message_id=?", (message_id,))
        conn.execute("DELETE FROM events WHERE message_id=?", (message_id,))
        conn.execute("DELETE FROM messages WHERE id=?", (message_id,))
    return len(ids), more
