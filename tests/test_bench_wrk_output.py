"""bench/vs_kannel.py reads wrk's latency distribution from its own lines: the thread stats
above them end in percentages too ("90.50%"), which once read as a p50 of nan."""

import sys
from pathlib import Path

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
