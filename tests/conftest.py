"""Shared fixtures: a daemon in this process on port 0 with a real SQLite file in a temp dir,
and a small HTTP client for the Ozeki API."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from appliance import config as cfg
from appliance.clock import FakeClock
from appliance.daemon import Daemon
from appliance.store.journal import Journal

ADMIN_PASSWORD = "admin-secret-1"


class Api:
    """Talks to a running appliance over a real socket."""

    def __init__(self, port: int, username: str = "admin", password: str = ADMIN_PASSWORD):
        self.base = f"http://127.0.0.1:{port}"
        self.username = username
        self.password = password

    def as_user(self, username: str, password: str) -> "Api":
        """The same appliance, another caller."""
        return Api(int(self.base.rsplit(":", 1)[1]), username, password)

    def get(self, path: str = "/api", **params) -> tuple[int, str]:
        query = urllib.parse.urlencode(params)
        return self._open(urllib.request.Request(f"{self.base}{path}?{query}"))

    def post(self, path: str = "/api", data: bytes | str = b"", headers=None) -> tuple[int, str]:
        body = data.encode() if isinstance(data, str) else data
        request = urllib.request.Request(f"{self.base}{path}", data=body, method="POST",
                                         headers=headers or {
                                             "Content-Type": "application/x-www-form-urlencoded"})
        return self._open(request)

    @staticmethod
    def _open(request) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def action(self, action: str, **params) -> str:
        params = {"action": action, "username": self.username, "password": self.password,
                  **params}
        status, body = self.get("/api", **params)
        assert status == 200, body
        return body

    def send(self, recipient: str, text: str, **params) -> str:
        body = self.action("sendmessage", recipient=recipient, messagedata=text, **params)
        ids = re.findall(r"<messageid>([^<]+)</messageid>", body)
        assert ids, body
        return ids[0]

    def state(self, message_id: str) -> int:
        body = self.action("getmessagebyid", msgID=message_id)
        return int(re.search(r"<state>(\d+)</state>", body).group(1))

    def wait_state(self, message_id: str, state: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.state(message_id)
            if seen == state:
                return
            time.sleep(0.05)
        raise AssertionError(f"message {message_id} stayed in state {seen}, wanted {state}")


def xml_values(body: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>([^<]*)</{tag}>", body)


@pytest.fixture
def clock():
    """Time that moves only when a test says so."""
    return FakeClock()


@pytest.fixture
def journal(tmp_path, clock):
    """A real journal file in the test's temp dir, on the fake clock."""
    j = Journal.open(tmp_path, clock=clock)
    yield j
    j.close()


@pytest.fixture
def raw():
    """A raw-socket SMSC on smpplib's PDU classes (fakes/raw_smsc.py): nacks, refusals."""
    from fakes.raw_smsc import RawSmsc
    server = RawSmsc().start()
    yield server
    server.stop()


@pytest.fixture
def raw_channel(raw):
    """make(channel_options, **SMPPConfig keys) -> (an SmppChannel bound to `raw`, its sink)."""
    from appliance.config import SMPPConfig
    from appliance.uplink.smpp import SmppChannel
    from test_smpp import RecordingSink, wait_until
    started = []

    def make(channel_options=None, *, bound=True, **kw):
        """`bound=False`: do not wait for the bind (one the SMSC refuses)."""
        sink = RecordingSink()
        kw = {"username": "esme", "password": "secret", **kw}
        conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=raw.port,
                          reconnectdelay=0.05, reconnectmaxdelay=0.2, **kw)
        channel = SmppChannel(conn, sink, **(channel_options or {}))
        channel.start()
        started.append(channel)
        if bound:
            wait_until(lambda: channel.state == "bound", what="bind")
        return channel, sink
    yield make
    for channel in started:
        channel.stop()


@pytest.fixture
def make_config(tmp_path):
    def make(**changes) -> cfg.Config:
        base = cfg.Config(http=cfg.HttpConfig(host="127.0.0.1", port=0, threads=8),
                          store=cfg.StoreConfig(state_dir=str(tmp_path / "state")))
        return dataclasses.replace(base, **changes)
    return make


@pytest.fixture
def run_daemon():
    started: list[Daemon] = []

    def start(config: cfg.Config, **kwargs) -> Daemon:
        # this machine's kernel may call its clock unsynchronized (a VM): the clock check's
        # own tests say what they want (test_clock_sync.py)
        kwargs.setdefault("clock_synchronized", lambda: True)
        daemon = Daemon(config, admin_password=kwargs.pop("admin_password", ADMIN_PASSWORD),
                        **kwargs)
        daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture
def appliance(make_config, run_daemon):
    """A daemon with no connections: messages are accepted and wait (store-and-forward).
    Its client calls the daemon's WSGI app in process (tests/wsgi_client.py)."""
    from wsgi_client import WsgiApi
    daemon = run_daemon(make_config())
    return daemon, WsgiApi(daemon.app)


@pytest.fixture
def appliance_socket(make_config, run_daemon):
    """The same daemon, talked to over a real socket (end-to-end tests)."""
    daemon = run_daemon(make_config())
    return daemon, Api(daemon.port)


@pytest.fixture
def https_files(tmp_path):
    """A self-signed certificate for 127.0.0.1 and its key: (cert path, key path)."""
    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        pytest.skip("openssl CLI not available")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
