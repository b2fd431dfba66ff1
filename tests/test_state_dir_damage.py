"""A damaged state directory stops `run` with one line naming the file, never a traceback,
and never a silent fresh start over it. Found by a helper: a journal cut in half or full of
garbage, a read-only disk, a documents.json cut off, `[]` or binary each ended in a Python
traceback; a deleted journal started empty without a word."""

from __future__ import annotations

import logging

import pytest

from appliance.cli import main
from conftest import ADMIN_PASSWORD


def run_on(state, tmp_path, capsys) -> tuple[int, str]:
    path = tmp_path / "config.toml"
    path.write_text(f'[http]\nhost = "127.0.0.1"\nport = 0\n[store]\nstate_dir = "{state}"\n')
    code = main(["run", "--config", str(path), "--admin-password", ADMIN_PASSWORD])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name,content,said", [
    ("journal.sqlite3", b"this is not a database" * 100, "file is not a database"),
    ("documents.json", b'{"users": {"1": {"name": "adm', "not valid JSON (line 1"),
    ("documents.json", b"[]", "expected a JSON object of tables, found list"),
    ("documents.json", b"\xff\xfe\x00garbage", "not UTF-8 text"),
])
def test_a_damaged_file_is_named_in_one_line(tmp_path, capsys, name, content, said):
    state = tmp_path / "state"
    state.mkdir()
    (state / name).write_bytes(content)
    code, err = run_on(state, tmp_path, capsys)
    assert code == 1 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"cannot run: {state / name}: ") and said in line
    assert (state / name).read_bytes() == content          # left as it was, for a backup


def test_a_missing_journal_beside_documents_is_said(tmp_path, caplog, make_config, run_daemon):
    config = make_config()
    daemon = run_daemon(config)
    daemon.stop()
    journal = tmp_path / "state" / "journal.sqlite3"
    journal.unlink()
    with caplog.at_level(logging.WARNING, logger="appliance.store"):
        run_daemon(config)
    assert any("is missing or empty while the state directory holds documents" in r.message
               for r in caplog.records)


def test_a_documents_write_that_fails_is_a_store_error_and_keeps_the_old_file(tmp_path):
    """A full disk (here a real EFBIG: the file size limit of the process writing) made
    every createuser, addcontact, createdriver and adddnd a 500 with a traceback; the
    write is a StoreError, which every API answers as 'the store is not available', and
    the file keeps what it had."""
    import subprocess
    import sys
    script = f"""
import resource, signal
from appliance.errors import StoreError
from appliance.store.documents import Documents
docs = Documents({str(tmp_path)!r})
docs.put("users", {{"name": "kept", "note": "x"}})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
try:
    docs.put("users", {{"name": "big", "note": "y" * 5000}})
except StoreError as exc:
    print("StoreError:", exc)
print(sorted(d["name"] for d in docs.all("users")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "StoreError: documents.json cannot be written: File too large" in done.stdout
    assert "['kept']" in done.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".documents-")] == []
