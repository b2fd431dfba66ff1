"""bench/vs_kannel.py reads other programs' output. wrk's latency distribution comes from its
own lines: the thread stats above them end in percentages too ("90.50%"), which once read as
a p50 of nan. strace's -c table gives each side's sync calls."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import vs_kannel  # noqa: E402

WRK = """Running 10s test @ http://127.0.0.1:9501/api
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.07ms    1.23ms  30.00ms   90.50%
    Req/Sec     3.31k   200.00     3.60k    70.99%
  Latency Distribution
     50%  985.00us
     75%    1.20ms
     90%    1.50ms
     99%    4.69ms
  66230 requests in 10.00s, 20.00MB read
Requests/sec:   6623.00
"""


def test_percentiles_come_from_the_latency_distribution():
    assert vs_kannel._percentile(WRK, "50%") == 0.985
    assert vs_kannel._percentile(WRK, "99%") == 4.69


def test_a_level_without_completed_requests_reads_as_nan():
    empty = WRK.replace("985.00us", "-nan").replace("4.69ms", "-nan")
    p50, p99 = vs_kannel._percentile(empty, "50%"), vs_kannel._percentile(empty, "99%")
    assert p50 != p50 and p99 != p99


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_the_sync_census_counts_a_real_process_sync_calls(tmp_path):
    """The durability census reads strace's -c table: three fdatasync and one fsync by a real
    process come back as counts per call (the writes it also made are not counted)."""
    script = ("import os\n"
              f"fd = os.open({str(tmp_path / 'f')!r}, os.O_WRONLY | os.O_CREAT)\n"
              "for _ in range(3):\n    os.write(fd, b'x'); os.fdatasync(fd)\n"
              "os.fsync(fd)\n")
    done = subprocess.run(["strace", "-f", "-c", "-e", "trace=" + ",".join(vs_kannel.SYNC_CALLS),
                           sys.executable, "-c", script], capture_output=True, text=True)
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip("ptrace is not permitted here")
    assert vs_kannel.strace_counts(done.stderr) == {"fdatasync": 3, "fsync": 1}
