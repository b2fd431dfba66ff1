"""What an appliance state directory holds, for commands that act on one from outside."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from appliance.errors import StoreError
from appliance.store.documents import DOCS_NAME
from appliance.store.journal import DB_NAME

LOCK_NAME = "daemon.lock"


def holds_state(state_dir: str | Path) -> bool:
    """True when the directory has the journal or the documents of an appliance."""
    folder = Path(state_dir)
    return (folder / DB_NAME).is_file() or (folder / DOCS_NAME).is_file()


class DaemonLock:
    """One daemon per state directory. A second `run` on the same journal (a forgotten demo,
    two units, a typo in a config) would requeue the first one's parts in flight and send
    them twice, and two dispatchers would share one queue. Held (flock) from before the
    journal opens until the daemon has stopped; the kernel drops it if the process dies, so
    a crash leaves nothing to clean up."""

    def __init__(self, state_dir: str | Path):
        folder = Path(state_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip()
            os.close(self._fd)
            raise StoreError(f"another sms-appliance daemon is running on {folder}"
                             + (f" (pid {holder})" if holder.isdigit() else "")) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)          # closing the descriptor drops the flock
            self._fd = None
