"""TinyDB documents an administrator edits: users, API-created connections, address book.

TinyDB's default JSON storage rewrites its file in place; a power cut mid-write would leave
half a file. `AtomicJSONStorage` writes a temporary file, fsyncs it, and renames it over the
old one, then fsyncs the directory, so the file is always either the old or the new version.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from tinydb import Query, TinyDB
from tinydb.storages import Storage

DOCS_NAME = "documents.json"


class AtomicJSONStorage(Storage):
    def __init__(self, path: str, **_):
        self._path = Path(path)

    def read(self):
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return json.loads(text) if text.strip() else None

    def write(self, data) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".documents-", dir=self._path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self._path.parent)

    def close(self) -> None:
        pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Documents:
    """Thread-safe access to the document tables; every change is durable when it returns."""

    def __init__(self, state_dir: str | Path):
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self._db = TinyDB(str(Path(state_dir) / DOCS_NAME), storage=AtomicJSONStorage)
        self._lock = threading.RLock()
        # Read on every API request (login); the file only changes through this object.
        self._cache: dict[tuple[str, str], dict] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def all(self, table: str) -> list[dict]:
        with self._lock:
            return [dict(d) for d in self._db.table(table).all()]

    def get(self, table: str, name: str) -> dict | None:
        with self._lock:
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
        with self._lock:
            self._cache.clear()
            self._db.table(table).upsert(doc, Query().name == doc["name"])

    def update(self, table: str, name: str, changes: dict) -> bool:
        with self._lock:
            self._cache.clear()
            return bool(self._db.table(table).update(changes, Query().name == name))

    def remove(self, table: str, name: str) -> bool:
        with self._lock:
            self._cache.clear()
            return bool(self._db.table(table).remove(Query().name == name))
