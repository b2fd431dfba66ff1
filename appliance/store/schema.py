"""SQLite schema of the journal, versioned with PRAGMA user_version.

Every query the dispatcher runs per part is served by a partial index, so the cost of a
claim does not grow with queue depth (bench/ingest.py measures it).
"""

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS messages (
    id            TEXT PRIMARY KEY,
    direction     TEXT NOT NULL,              -- 'out' | 'in'
    user          TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    originator    TEXT NOT NULL DEFAULT '',
    messagetype   TEXT NOT NULL,
    body          TEXT NOT NULL,
    encoding      TEXT NOT NULL,
    msg_class     INTEGER,
    state         TEXT NOT NULL,
    parts_total   INTEGER NOT NULL DEFAULT 1,
    priority      INTEGER NOT NULL DEFAULT 5,
    created       REAL NOT NULL,
    send_at       REAL,
    valid_until   REAL,
    submitted_at  REAL,
    done_at       REAL,
    updated       REAL NOT NULL,
    connection    TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    code          TEXT NOT NULL DEFAULT '',
    want_report   INTEGER NOT NULL DEFAULT 1,
    serviceprovider TEXT NOT NULL DEFAULT '',
    dialect       TEXT NOT NULL DEFAULT '',
    client_ref    TEXT NOT NULL DEFAULT '',
    callback      TEXT,                        -- JSON: how to tell the client
    extra         TEXT,                        -- JSON: smpp params and the like
    sent_time     REAL,                        -- inbound: SCTS
    is_read       INTEGER NOT NULL DEFAULT 0,
    deleted       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_box ON messages(user, direction, deleted, state, created);
-- the duplicate check's index and the `dedupe` column: store/message_indexes.py
-- `charged` (what a refund gives back): store/refunds.py

CREATE TABLE IF NOT EXISTS parts (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT NOT NULL REFERENCES messages(id),
    seq           INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    concat_ref    INTEGER NOT NULL DEFAULT 0,
    encoding      TEXT NOT NULL,
    text          TEXT,
    data          BLOB,
    udh           BLOB,
    pid           INTEGER NOT NULL DEFAULT 0,
    dcs           INTEGER,
    state         TEXT NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 5,
    next_attempt  REAL NOT NULL,
    valid_until   REAL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    connection    TEXT NOT NULL DEFAULT '',
    reference     TEXT,
    submitted_at  REAL,
    done_at       REAL,
    reason        TEXT NOT NULL DEFAULT '',
    tried         TEXT NOT NULL DEFAULT ''     -- connections that failed it transiently
);
CREATE INDEX IF NOT EXISTS parts_queue ON parts(priority, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS parts_scheduled ON parts(next_attempt) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS parts_validity ON parts(valid_until)
    WHERE state IN ('queued', 'scheduled');
CREATE INDEX IF NOT EXISTS parts_sending ON parts(id) WHERE state = 'sending';
CREATE INDEX IF NOT EXISTS parts_message ON parts(message_id);
CREATE INDEX IF NOT EXISTS parts_reference ON parts(connection, reference)
    WHERE reference IS NOT NULL;
CREATE INDEX IF NOT EXISTS parts_sent_by ON parts(connection, submitted_at)
    WHERE submitted_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS orphan_reports (
    connection    TEXT NOT NULL,
    reference     TEXT NOT NULL,
    report        TEXT NOT NULL,               -- JSON of model.Report
    received      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS orphan_ref ON orphan_reports(connection, reference);

CREATE TABLE IF NOT EXISTS fragments (
    key           TEXT NOT NULL,               -- JSON [sender, ref, total, ref_bits]
    seq           INTEGER NOT NULL,
    fragment      TEXT NOT NULL,               -- JSON of model.InboundFragment
    arrived       REAL NOT NULL,
    PRIMARY KEY (key, seq)
);
CREATE INDEX IF NOT EXISTS fragments_age ON fragments(arrived);

CREATE TABLE IF NOT EXISTS inbound_log (     -- what the inbound rules follow (integrations/rules.py)
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused, unlike a purged rowid
    message_id    TEXT NOT NULL,
    user          TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    originator    TEXT NOT NULL,
    body          TEXT NOT NULL,
    messagetype   TEXT NOT NULL,
    connection    TEXT NOT NULL,
    created       REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS inbound_seen (    -- recognises an SMS read or delivered twice
    connection    TEXT NOT NULL,
    sender        TEXT NOT NULL,
    scts          REAL NOT NULL,
    ref           INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    at            REAL NOT NULL,
    PRIMARY KEY (connection, sender, scts, ref, total, seq)
);
CREATE INDEX IF NOT EXISTS inbound_seen_age ON inbound_seen(at);

CREATE TABLE IF NOT EXISTS inbound_ids (     -- the id an HTTP Server SMS got: a repeat gets it again
    connection    TEXT NOT NULL,
    key           TEXT NOT NULL,              -- the provider's msgid and/or senttime, sender, text
    message_id    TEXT NOT NULL,
    at            REAL NOT NULL,
    PRIMARY KEY (connection, key)
);
CREATE INDEX IF NOT EXISTS inbound_ids_age ON inbound_ids(at);

CREATE TABLE IF NOT EXISTS balances (
    user          TEXT PRIMARY KEY,
    balance       INTEGER NOT NULL             -- seed 003: <= 0 cannot send
);
CREATE TABLE IF NOT EXISTS unlimited_users (  -- sending not limited by the balance
    user          TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS ledger (
    id            INTEGER PRIMARY KEY,
    user          TEXT NOT NULL,
    delta         INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    message_id    TEXT,
    at            REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,               -- state name, or 'inbound'
    at            REAL NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending',   -- pending | done | dead
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  REAL NOT NULL,
    last_error    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_due ON events(next_attempt, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS events_message ON events(message_id, id) WHERE state = 'pending';

CREATE TABLE IF NOT EXISTS purged_refs (     -- parts purged while a report could still come
    connection    TEXT NOT NULL,
    reference     TEXT NOT NULL,
    at            REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS purged_refs_ref ON purged_refs(connection, reference);
CREATE INDEX IF NOT EXISTS purged_refs_age ON purged_refs(at);
"""
