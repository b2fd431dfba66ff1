"""HTTP Client and SMTP channels: parts per second and CPU per part in the appliance process.

The provider (a small HTTP server answering `OK <n>`) and the mail server (tests/fakes
SmtpSink) run in a child process, so the CPU figure is the channel's own: building the
request or mail, the socket work, the answer, the sink call. The sink here is in memory (the
journal's cost is measured by bench/ingest.py).

Run: python bench/providers.py [parts]   (prints figures; nothing is asserted)
"""

from __future__ import annotations

import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from appliance.model import OutPart  # noqa: E402
from appliance.provider.http_client import HttpClientChannel  # noqa: E402
from appliance.provider.settings import HTTPClientConfig, SMTPConfig  # noqa: E402
from appliance.provider.smtp import SmtpChannel  # noqa: E402

PROVIDER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    n = 0
    def do_GET(self):
        H.n += 1
        body = f"OK {H.n}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H); s.daemon_threads = True
print(s.server_address[1], flush=True); s.serve_forever()
"""

MAIL = """
import sys, time
sys.path.insert(0, sys.argv[1])
from fakes.providers import SmtpSink
s = SmtpSink().start(); print(s.port, flush=True)
while True:
    time.sleep(1); del s.mails[:]
"""


class CountingSink:
    def __init__(self, total: int):
        self.total, self.done, self.failed = total, 0, 0
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def _count(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
            if self.done >= self.total:
                self.finished.set()

    def part_submitted(self, part_id, connection, reference, whole_message=False):
        self._count(True)

    def part_failed(self, part_id, connection, code, reason, retryable):
        self._count(False)


def child(code: str, *args: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                               text=True)
    return process, int(process.stdout.readline())


def run(channel_class, conn, total: int) -> str:
    sink = CountingSink(total)
    channel = channel_class(conn, sink)
    channel.start()
    deadline = time.monotonic() + 10
    while channel.state != "ready" and time.monotonic() < deadline:
        time.sleep(0.01)
    cpu, wall = time.process_time(), time.perf_counter()
    sent = 0
    while sent < total:
        for _ in range(channel.free_slots()):
            if sent < total:
                sent += 1
                channel.submit(OutPart(id=sent, message_id=f"m{sent}", recipient="+447700900123",
                                       originator="ACME", text="Your code is 482913."))
        time.sleep(0.0005)
    sink.finished.wait(120)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    channel.stop()
    return (f"{conn.type:<10} window {conn.windowsize:>2}: {total / wall:>7,.0f} parts/s   "
            f"CPU {cpu / total * 1000:.2f} ms/part   failed {sink.failed}")


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"python {sys.version.split()[0]}, {total} parts each")
    web, port = child(PROVIDER)
    mail, mail_port = child(MAIL, str(ROOT / "tests"))
    try:
        for window in (1, 4, 16):
            conn = HTTPClientConfig(name="Web0", targeturl=f"http://127.0.0.1:{port}/send?"
                                    "to=$recipient&from=$originator&text=$messagedata",
                                    respsuccess=r"OK (\d+)", limittompm=0, windowsize=window)
            print(run(HttpClientChannel, conn, total))
        conn = SMTPConfig(name="Mail0", smtpserver="127.0.0.1", smtpport=mail_port,
                          limittompm=0, mailto="$recipientdigits@sms.example")
        print(run(SmtpChannel, conn, total))
    finally:
        web.kill()
        mail.kill()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
