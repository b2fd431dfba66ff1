"""What `make run` costs while nothing happens: the demo daemon (2 simulated modems) idle,
CPU and context switches per second, per thread and in all, from /proc over a window.

    python bench/demo_idle.py [seconds, default 20] [another checkout to measure first]

On a Pi the demo is the first thing a user runs; its idle cost is read here, not guessed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_kannel as vk  # noqa: E402  (free_port, wait_port)

TICK = os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> dict[str, tuple[str, float, int]]:
    """tid -> (name, CPU seconds, context switches)."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines()
        except OSError:
            continue        # a thread that ended meanwhile
        switches = sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        found[tid] = (name, (int(fields[11]) + int(fields[12])) / TICK, switches)
    return found


def measure(seconds: float, src: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = vk.free_port()
        env = dict(os.environ, PYTHONPATH=src) if src else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--demo", "--http-port", str(port),
             "--state-dir", f"{tmp}/state", "--admin-password", "bench-password"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=src or None, env=env)
        try:
            vk.wait_port(port, proc)
            time.sleep(3)                   # the start-up USSD balance checks are over
            before = threads(proc.pid)
            time.sleep(seconds)
            after = threads(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    total_cpu = total_switches = 0.0
    for tid, (name, cpu, switches) in sorted(after.items(), key=lambda kv: kv[1][0]):
        if tid not in before:
            continue
        cpu -= before[tid][1]
        switches -= before[tid][2]
        total_cpu, total_switches = total_cpu + cpu, total_switches + switches
        if switches:
            print(f"  {name:16s} {100 * cpu / seconds:5.2f} % CPU {switches / seconds:7.1f} switches/s")
    print(f"  all threads      {100 * total_cpu / seconds:5.2f} % CPU"
          f" {total_switches / seconds:7.1f} switches/s")


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    for src in ([sys.argv[2]] if len(sys.argv) > 2 else []) + [""]:
        print(f"== {src or 'this checkout'}: demo with 2 modems, idle {seconds:g} s")
        measure(seconds, src)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
