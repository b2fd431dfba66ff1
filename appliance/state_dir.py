"""What an appliance state directory holds, for commands that act on one from outside."""

from __future__ import annotations

from pathlib import Path

from appliance.store.documents import DOCS_NAME
from appliance.store.journal import DB_NAME


def holds_state(state_dir: str | Path) -> bool:
    """True when the directory has the journal or the documents of an appliance."""
    folder = Path(state_dir)
    return (folder / DB_NAME).is_file() or (folder / DOCS_NAME).is_file()
