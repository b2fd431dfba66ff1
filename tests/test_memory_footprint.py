"""Memory and collector (issue 14): libraries only some requests need are imported by the
first of them, not at start; the startup heap is frozen out of the cyclic collector's sight.
A fresh process runs a daemon on a real socket and reports its sys.modules and gc state."""

import subprocess
import sys

SCRIPT = """
import gc, sys
from appliance import config as cfg
from appliance.daemon import Daemon
state = sys.argv[1]
LAZY = ["urllib.request", "smtplib", "xml.etree.ElementTree", "xml.sax.saxutils", "html"]
daemon = Daemon(cfg.Config(http=cfg.HttpConfig(host="127.0.0.1", port=0),
                           store=cfg.StoreConfig(state_dir=state)), admin_password="pw-123456")
frozen_before = gc.get_freeze_count()
daemon.start()
try:
    print("frozen", frozen_before == 0, gc.get_freeze_count() > 10000)
    print("started", "prometheus_client" in sys.modules)
    print("threaded engines", "wsgiref.simple_server" in sys.modules, "socketserver" in sys.modules)
    print("at start", sorted(set(LAZY) & set(sys.modules)))
    import urllib.parse, urllib.request
    reply = urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=30)
    print("scraped", reply.status, "prometheus_client" in sys.modules,
          b"sms_build_info" in reply.read())
    fields = {"action": "sendmessage", "username": "admin", "password": "pw-123456",
              "messagecount": 2000, "messagetype": "SMS:TEXT"}
    for i in range(2000):
        fields[f"recipient{i}"] = f"+3620{i:07d}"
        fields[f"messagedata{i}"] = f"Batch message {i}"
    body = urllib.parse.urlencode(fields).encode()
    reply = urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/api", data=body, timeout=60)
    reply.read()
    gc.collect()
    alive = sum(type(o).__name__ in ("Submission", "NewMessage", "PartSpec")
                for o in gc.get_objects())
    largest = max(len(o) for o in gc.get_objects() if type(o) is dict)   # its parameters
    print("after a batch", reply.status, alive, largest < 4000)
finally:
    daemon.stop()
"""


def test_the_metrics_library_is_loaded_by_the_first_scrape_not_at_start(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split("\n")
    assert "started False" in lines
    assert "scraped 200 True True" in lines


def test_the_http_and_mail_clients_and_the_xml_parser_wait_for_their_first_use(tmp_path):
    """Callbacks, forwards by mail, XML and WAP push messages load them when they need them
    (about 2 MiB of RSS that a daemon doing none of these never pays)."""
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "at start []" in out.stdout.split("\n")


def test_a_batch_leaves_nothing_of_its_messages_in_memory_once_answered(tmp_path):
    """Neither the loop front (bottle's request of the last request) nor the writer (its
    last batch, while it waits for the next) keeps a finished request's messages: a
    20,000-message batch would otherwise sit in RSS until the next request."""
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "after a batch 200 0 True" in out.stdout.split("\n")


def test_the_loop_front_does_not_load_the_threaded_engines(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "threaded engines False False" in out.stdout.split("\n")


def test_the_startup_heap_is_frozen_once_the_front_listens(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "frozen True True" in out.stdout.split("\n")
