"""One daemon per state directory (state_dir.DaemonLock). Found by a helper: a second `run`
on a running daemon's state dir requeued that daemon's parts in flight before it failed to
bind its port, and they were sent twice; with another port, two daemons shared one queue."""

from __future__ import annotations

import dataclasses

import pytest

from appliance.cli import main
from appliance.compose import Submission, prepare
from appliance.daemon import Daemon
from appliance.errors import StoreError
from conftest import ADMIN_PASSWORD


def test_a_second_daemon_on_the_same_state_dir_refuses_and_touches_nothing(
        make_config, run_daemon, tmp_path, capsys):
    config = make_config()
    first = run_daemon(config)
    [message_id] = first.journal.accept([prepare(Submission(
        user="admin", recipient="+36201234567", text="in flight"))])
    [part] = first.journal.due_parts()
    first.journal.claim_whole([(part.id, "GSMModem0", part.message_id, part.total)])

    with pytest.raises(StoreError, match="another sms-appliance daemon is running on .*"
                                         r"\(pid \d+\)"):
        Daemon(dataclasses.replace(config), admin_password=ADMIN_PASSWORD,
               clock_synchronized=lambda: True)
    path = tmp_path / "config.toml"
    path.write_text(f'[http]\nhost = "127.0.0.1"\nport = 0\n'
                    f'[store]\nstate_dir = "{config.store.state_dir}"\n')
    assert main(["run", "--config", str(path), "--admin-password", ADMIN_PASSWORD]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("cannot run: another sms-appliance daemon is running on ")
    assert first.journal.get_parts(message_id)[0]["state"] == "sending"   # not requeued

    first.stop()                      # the lock goes with the daemon; a restart takes it
    again = run_daemon(config)
    assert again.journal.get_parts(message_id)[0]["state"] == "queued"
