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


def _task_names(pid: int) -> list[str]:
    names = []
    for comm in Path(f"/proc/{pid}/task").glob("*/comm"):
        try:
            names.append(comm.read_text().strip())
        except OSError:
            continue
    return names


def test_threads_get_their_names_from_the_os_once_per_name():
    done = threading.Event()
    worker = threading.Thread(target=done.wait, name="a-rather-long-thread-name", daemon=True)
    worker.start()
    try:
        assert thread_priority.name_for_os([worker]) == 1
        comm = Path(f"/proc/self/task/{worker.native_id}/comm").read_text().strip()
        assert comm == "a-rather-long-t"                  # the kernel keeps 15 bytes
        assert thread_priority.name_for_os([worker]) == 0  # nothing written again
        worker.name = "renamed"
        assert thread_priority.name_for_os([worker]) == 1
        assert Path(f"/proc/self/task/{worker.native_id}/comm").read_text().strip() == "renamed"
    finally:
        done.set()
        worker.join(5)


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
        # top -H shows each thread by its name, not a dozen "python"s (name_for_os)
        names = _task_names(proc.pid)
        assert {"store-writer", "store-checkpoin", "dispatcher", "http-loop",
                "notifier"} <= set(names), names
        # the main thread keeps the process's name (ps, pgrep, systemd show it)
        assert Path(f"/proc/{proc.pid}/comm").read_text().strip() != "MainThread"
    finally:
        proc.terminate()
        proc.wait(30)
