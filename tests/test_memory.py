"""The malloc settings (appliance/memory.py) in a fresh process: the 16 MiB a credential
check allocates goes back to the kernel instead of staying in RSS."""

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or sys.platform != "linux",
                                reason="glibc malloc settings")

SCRIPT = """
import hashlib, sys
from appliance.memory import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
def scrypt():
    hashlib.scrypt(b"pw", salt=b"salt" * 4, n=2 ** 14, r=8, p=1, maxmem=64 << 20)
scrypt()
before = rss()
scrypt(); scrypt()
print(rss() - before)
"""


def grown_mib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


def test_credential_checks_leave_no_resident_heap_behind():
    assert grown_mib("tuned") < 4


def test_without_the_settings_glibc_keeps_it():
    """Shows what the settings fix (and that the measurement above can fail)."""
    assert grown_mib("default") >= 12


NO_CHILD = """
import subprocess
def refuse(*args, **kwargs):
    raise RuntimeError(f"tune_malloc started a child process: {args[0]!r}")
subprocess.Popen = refuse
from appliance.memory import tune_malloc
assert tune_malloc()
print("ok")
"""


def test_the_settings_start_no_child_process():
    """At every daemon start: no `ldconfig -p` (what ctypes.util.find_library runs)."""
    out = subprocess.run([sys.executable, "-c", NO_CHILD], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-500:]


HOLES = """
import sys
from appliance.memory import tune_malloc, trim
assert tune_malloc()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
before = rss()
blocks = [bytes(4000) for _ in range(12000)]     # ~48 MiB from the heap, below the threshold
kept = blocks[::16]                              # pins: the freed rest are holes, not the top
del blocks
held = rss() - before
if sys.argv[1] == "trim":
    assert trim() is not None
print(held, rss() - before)
"""


def heap_after_holes(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", HOLES, mode], capture_output=True, text=True,
                         check=True)
    held, after = out.stdout.split()
    return int(held), int(after)


def test_trim_hands_the_holes_a_large_request_left_back_to_the_kernel():
    """What a 20,000-message batch leaves: freed memory in holes between live blocks, which
    no threshold returns (RSS stayed ~20 MiB above idle after each batch)."""
    held, after = heap_after_holes("trim")
    assert held >= 30 and after <= 10, (held, after)


def test_without_trim_the_holes_stay_resident():
    held, after = heap_after_holes("keep")
    assert held >= 30 and after >= 30, (held, after)
