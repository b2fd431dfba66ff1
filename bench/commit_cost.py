"""What one group commit costs the writer thread, alone (no HTTP, no other thread).

    python bench/commit_cost.py [--messages 4000] [--sizes 1,8,32] [--length 20]
                                [--page-sizes 512]

Accepts `--messages` messages of `--length` characters (more than 160 is a long message,
split into parts) into a fresh journal made with each of `--page-sizes`, in commits of each
size, and prints, per size: the writer thread's CPU per message and per commit (user and
system, from /proc), the wall time per commit, and the bytes written to storage per message
(/proc/self/io: WAL and checkpoints; then with the checkpoint when the journal closes too,
the fair total when comparing page sizes). The writer's cost is mostly per commit (BEGIN, COMMIT,
two write calls per dirtied WAL page, fdatasync), so it falls with the batch size; under
HTTP load the same commits cost more, because the GIL passes between the loop thread and
the writer at every SQLite call. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

# uplink puts the project and its tests on sys.path; /proc/TID/stat is a thread's own
from uplink import cpu_split  # noqa: E402
from vs_kannel import write_bytes  # noqa: E402

from appliance.compose import prepare  # noqa: E402
from appliance.model import Submission  # noqa: E402
from appliance.store import writer as store_writer  # noqa: E402
from appliance.store.journal import Journal  # noqa: E402


def written_bytes() -> int:
    return write_bytes([os.getpid()])


def bench_text(i: int, length: int) -> str:
    text = f"Bench message {i} "
    return (text * (length // len(text) + 1))[:length]


def measure(size: int, count: int, length: int) -> str:
    with tempfile.TemporaryDirectory() as state:
        journal = Journal.open(state)
        messages = [prepare(Submission(user="admin", recipient="+36201234567",
                                       text=bench_text(i, length))) for i in range(count + 8)]
        journal.accept(messages[:8])            # the schema and the first pages exist
        writer = journal._writer._thread.native_id
        user0, sys0 = cpu_split(writer)
        bytes0, started = written_bytes(), time.perf_counter()
        for at in range(8, count + 8, size):
            journal.accept(messages[at:at + size])
        elapsed = time.perf_counter() - started
        user1, sys1 = cpu_split(writer)
        written = written_bytes() - bytes0
        journal.close()             # the last connection's close checkpoints the WAL
        with_checkpoint = written_bytes() - bytes0
    commits = -(-count // size)
    cpu = (user1 - user0) + (sys1 - sys0)
    return (f"{size:>3} per commit: writer {cpu / count * 1e6:6.0f} µs CPU/message,"
            f" {cpu / commits * 1e6:5.0f} µs/commit (user {(user1 - user0) / commits * 1e6:.0f},"
            f" system {(sys1 - sys0) / commits * 1e6:.0f}); wall {elapsed / commits * 1e6:5.0f}"
            f" µs/commit; {written / count:7,.0f} bytes written/message"
            f" ({with_checkpoint / count:,.0f} with the checkpoint at close)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--sizes", default="1,8,32")
    parser.add_argument("--length", type=int, default=20, help="characters per message")
    parser.add_argument("--page-sizes", default=str(store_writer.PAGE_SIZE),
                        help="journal page sizes, e.g. 1024,512 (a new journal each)")
    args = parser.parse_args()
    for page_size in (int(p) for p in args.page_sizes.split(",")):
        store_writer.PAGE_SIZE = page_size     # what a new journal file is made with
        print(f"page size {page_size}, {args.length} characters per message:")
        for size in (int(s) for s in args.sizes.split(",")):
            print(measure(size, args.messages, args.length), flush=True)


if __name__ == "__main__":
    main()
