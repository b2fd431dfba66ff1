"""The threads that batch and that no request waits on (the store's checkpointer, the
dispatcher) run at nice 19 in the daemon, so the link's, the modems', the HTTP loop's and the
writer's threads get a core first when none is free (thread_priority.py). Linux only: a
thread has a nice value of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from appliance import thread_priority
from conftest import ADMIN_PASSWORD, Api

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux only")


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_only_the_threads_named_step_aside():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base >= thread_priority.BACKGROUND_NICE:
        pytest.skip("this process already runs at the lowest priority")
    release = threading.Event()
    batcher = threading.Thread(target=release.wait, name="batcher")
    talker = threading.Thread(target=release.wait, name="talker")
    never_started = threading.Thread(target=release.wait, name="never-started")
    batcher.start()
    talker.start()
    try:
        assert thread_priority.step_aside([batcher, never_started]) == ["batcher"]
        assert _nice(batcher.native_id) == thread_priority.BACKGROUND_NICE
        assert _nice(talker.native_id) == base
        assert _nice(threading.get_native_id()) == base
    finally:
        release.set()
        batcher.join(5)
        talker.join(5)


def _task_nices(pid: int) -> list[int]:
    """The nice value of each thread of `pid` (/proc/PID/task/TID/stat, field 19)."""
    nices = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:                     # a thread that ended meanwhile
            continue
        nices.append(int(fields[16]))
    return nices


def test_the_daemon_runs_its_checkpointer_and_dispatcher_at_nice_19(tmp_path):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base >= thread_priority.BACKGROUND_NICE:
        pytest.skip("this process already runs at the lowest priority")
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\nhost = "127.0.0.1"\nport = 0\n[store]\nstate_dir = "{tmp_path}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config),
                             "--admin-password", ADMIN_PASSWORD], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        banner = next(line for line in proc.stdout if "is running" in line)
        port = int(re.search(r"127\.0\.0\.1:(\d+)", banner).group(1))
        assert Api(port).send("+36201234567", "queued while the dispatcher steps aside")
        nices = _task_nices(proc.pid)
        assert nices.count(thread_priority.BACKGROUND_NICE) == 2, nices
        assert nices.count(base) == len(nices) - 2, nices     # the writer, HTTP, main, ...
    finally:
        proc.terminate()
        proc.wait(30)
