"""TinyDB documents an administrator edits: users, API-created connections, address book.

TinyDB's default JSON storage rewrites its file in place; a power cut mid-write would leave
half a file. `AtomicJSONStorage` writes a temporary file, fsyncs it, and renames it over the
old one, then fsyncs the directory, so the file is always either the old or the new version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from appliance.errors import StoreError

log = logging.getLogger("appliance.store")

DOCS_NAME = "documents.json"
LOCK_NAME = "documents.lock"


class AtomicJSONStorage(Storage):
    def __init__(self, path: str, **_):
        self._path = Path(path)

    def read(self):
        """The documents, None for a new store; a damaged file is a StoreError that names
        it (`run` says it in one line instead of a traceback) and is never overwritten."""
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as exc:
            raise StoreError(f"{self._path}: not UTF-8 text ({exc.reason}); restore it from"
                             " a backup or move it away") from None
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self._path}: not valid JSON (line {exc.lineno}: {exc.msg});"
                             " restore it from a backup or move it away") from None
        if not isinstance(data, dict):
            raise StoreError(f"{self._path}: expected a JSON object of tables, found"
                             f" {type(data).__name__}; restore it from a backup")
        return data

    def write(self, data) -> None:
        """The whole file anew, then renamed over the old one: a write that fails (a full
        disk, an I/O error) leaves the old file as it was and is a StoreError, which every
        API answers in its own format ("the store is not available"), not a 500."""
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".documents-", dir=self._path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self._path)
            _fsync_dir(self._path.parent)
        except BaseException as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)      # gone already once renamed
            if isinstance(exc, OSError):
                raise StoreError(f"{self._path.name} cannot be written: {exc.strerror}") \
                    from None
            raise

    def close(self) -> None:
        pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _signature(path: str | Path) -> tuple | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class Documents:
    """Thread-safe access to the document tables; every change is durable when it returns.

    Another process may change the file too (`sms-appliance passwd` next to the running
    daemon): writers take an flock on `documents.lock`, and readers drop their cache when
    the file's inode, mtime or size changed. The file is looked at most once per `recheck`
    seconds (not per login: at thousands of requests a second the stat was a tenth of the
    request's cost), so another process's change is seen within that time; this process's
    own changes drop the cache at once.
    """

    def __init__(self, state_dir: str | Path, *, recheck: float = 0.05):
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self._path = Path(state_dir) / DOCS_NAME
        self._lock_path = Path(state_dir) / LOCK_NAME
        self._db = TinyDB(str(self._path), storage=AtomicJSONStorage)
        self._check_readable()
        self._lock = threading.RLock()
        # Read on every API request (login); dropped when the file changes under us.
        self._cache: dict[tuple[str, str], dict] = {}
        self._path_name = str(self._path)
        self._seen = _signature(self._path_name)
        self._recheck = recheck
        self._checked_at = time.monotonic()

    def _check_readable(self) -> None:
        """At start: a damaged file stops the daemon with its name (StoreError); an empty
        one is said once (users and connections made through the API are then gone)."""
        self._db.storage.read()
        if self._path.is_file() and self._path.stat().st_size == 0:
            log.warning("store: %s is empty: the users, connections and routes made through"
                        " the API are gone (restore it from a backup if that is wrong)",
                        self._path)

    def _fresh(self) -> None:
        """Forget cached documents if someone else rewrote the file (call under _lock)."""
        moment = time.monotonic()
        if moment - self._checked_at < self._recheck:
            return
        self._checked_at = moment
        now = _signature(self._path_name)
        if now != self._seen:
            self._cache.clear()
            self._seen = now

    @contextlib.contextmanager
    def _writing(self):
        """Serialise writers across processes; TinyDB's read-modify-write is not atomic."""
        with self._lock, open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._cache.clear()
                yield self._db
            finally:
                self._seen = _signature(self._path)
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def all(self, table: str) -> list[dict]:
        with self._lock:
            return [dict(d) for d in self._db.table(table).all()]

    def get(self, table: str, name: str) -> dict | None:
        with self._lock:
            self._fresh()
            key = (table, name)
            doc = self._cache.get(key)
            if doc is None:
                found = self._db.table(table).get(Query().name == name)
                if not found:
                    return None       # misses are not cached: unknown names cost no memory
                doc = self._cache[key] = dict(found)
            return dict(doc)

    def put(self, table: str, doc: dict) -> None:
        """Insert or replace the document with this `name`."""
        with self._writing() as db:
            db.table(table).upsert(doc, Query().name == doc["name"])

    def insert_new(self, table: str, doc: dict) -> bool:
        """Insert the document unless one with its `name` exists (False then): a check and
        a put apart let two creations of one name both succeed, the second overwriting."""
        with self._writing() as db:
            documents = db.table(table)
            if documents.contains(Query().name == doc["name"]):
                return False
            documents.insert(doc)
            return True

    def update(self, table: str, name: str, changes: dict) -> bool:
        with self._writing() as db:
            return bool(db.table(table).update(changes, Query().name == name))

    def remove(self, table: str, name: str) -> bool:
        with self._writing() as db:
            return bool(db.table(table).remove(Query().name == name))
