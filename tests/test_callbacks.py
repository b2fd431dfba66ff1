"""Callbacks as a delivery protocol (issue 17) and values snapshotted at their event (issue 13):
a real journal file, real HTTP endpoints on 127.0.0.1, a FakeClock for backoff and give-up."""

import socket
import threading
import time
import urllib.parse
from types import SimpleNamespace

import pytest

from appliance import signing
from appliance.accounts import Accounts
from appliance.clock import FakeClock
from appliance.compose import Submission, prepare
from appliance.model import Report, ReportStatus
from appliance.notify import BACKOFF, Notifier
from appliance.store.documents import Documents
from appliance.store.journal import Journal
from fakes.lan import Endpoint


class BlackHole:
    """Accepts connections and never answers until released."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = threading.Event()
        self.release = threading.Event()
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()
            self._took(conn)

    def _took(self, conn):
        """A connection accepted: a black hole says nothing on it."""

    def close(self):
        self.release.set()
        for conn in self.conns:
            conn.close()
        self.sock.close()


class NeverAccepts:
    """A port whose accept queue is full: a connect to it is never completed (SYNs dropped)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)                     # one connection fills the queue
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.filler = socket.create_connection(self.sock.getsockname(), timeout=5)

    def close(self):
        self.filler.close()
        self.sock.close()


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def rig(tmp_path):
    clock = FakeClock()
    journal = Journal.open(tmp_path / "state", clock=clock)
    accounts = Accounts(Documents(tmp_path / "state"), journal)
    notifier = Notifier(journal, accounts, clock=clock, timeout=30)
    yield clock, journal, notifier
    notifier.stop()
    journal.close()


def send(journal, url: str, kind: str = "ozeki_reporturl", user: str = "admin") -> str:
    message = prepare(Submission(user=user, recipient="+36201234567", text="hi",
                                 callback={"kind": kind, "url": url}))
    [message_id] = journal.accept([message])
    return message_id


def submit_and_report(journal, message_id: str, status: ReportStatus, ref: str,
                      detail: str = "") -> None:
    part_id = journal.query("SELECT id FROM parts WHERE message_id=?", (message_id,))[0]["id"]
    assert journal.claim([(part_id, "GSMModem0")]) == [part_id]
    journal.part_submitted(part_id, "GSMModem0", ref)
    journal.report(Report(connection="GSMModem0", reference=ref, status=status, detail=detail))


def drain(notifier, rounds: int = 50) -> None:
    """Run the notifier loop by hand until nothing is due and no worker runs."""
    for _ in range(rounds):
        started = notifier.step()
        assert wait_for(notifier.idle)
        if not started:
            return


def delivered(journal, notifier, endpoint, ref: str) -> str:
    """A message with a reporturl at `endpoint`, submitted and delivered, its callbacks sent."""
    message_id = send(journal, template(endpoint.url, "r"))
    submit_and_report(journal, message_id, ReportStatus.DELIVERED, ref)
    drain(notifier)
    return message_id


def template(base: str, path: str) -> str:
    return f"{base}/{path}?id=$messageid&st=$status&sm=$statusmessage"


def test_a_black_holed_endpoint_delays_only_its_own_events(rig):
    clock, journal, notifier = rig
    hole, good = BlackHole(), Endpoint()
    try:
        stuck = send(journal, template(hole.url, "hole"))
        flowing = send(journal, template(good.url, "good"))
        submit_and_report(journal, stuck, ReportStatus.DELIVERED, "1")
        submit_and_report(journal, flowing, ReportStatus.DELIVERED, "2")
        notifier.start()
        assert hole.accepted.wait(20)          # the hole's worker is now blocked on it
        assert wait_for(lambda: len(good.calls) == 2)
        paths = [urllib.parse.parse_qs(urllib.parse.urlsplit(c[1]).query)["st"][0]
                 for c in good.calls]
        assert paths == ["deliveredtonetwork", "deliveredtohandset"]     # in order
        assert not notifier.idle()             # the hole's event is still in flight
    finally:
        hole.close()                           # the worker gets EOF and ends
        notifier.stop()
        good.close()


def test_a_failing_endpoint_backs_off_and_is_given_up_while_others_flow(rig):
    clock, journal, notifier = rig
    bad, good = Endpoint(status=500), Endpoint()
    try:
        first = send(journal, template(bad.url, "bad"))
        second = send(journal, template(bad.url, "bad"))
        submit_and_report(journal, first, ReportStatus.DELIVERED, "1")
        submit_and_report(journal, second, ReportStatus.DELIVERED, "2")
        drain(notifier)
        assert len(bad.calls) == 1             # backing off: the second event waits
        fine = send(journal, template(good.url, "good"))
        submit_and_report(journal, fine, ReportStatus.DELIVERED, "3")
        drain(notifier)
        assert len(good.calls) == 2 and len(bad.calls) == 1
        status = notifier.status()
        assert status["failing_destinations"][0]["destination"] == bad.url.lower()
        assert status["failing_destinations"][0]["last_error"] == "HTTP 500"

        clock.advance(BACKOFF[0] + 1)
        drain(notifier)
        assert len(bad.calls) == 2             # one probe after the backoff, then waits again
        clock.advance(700)
        drain(notifier)
        assert notifier.status()["stuck"] >= 1 and not notifier.status()["ok"]

        clock.advance(notifier.give_up_seconds)
        notifier._last_sweep = -1e9            # the sweep runs once a minute
        drain(notifier)
        status = notifier.status()
        assert status["pending"] == 0 and status["given_up_24h"] == 4 and not status["ok"]
        assert journal.query("SELECT count(*) AS n FROM events WHERE state='dead'"
                             " AND message_id IN (?,?)", (first, second))[0]["n"] == 4
    finally:
        bad.close()
        good.close()


def test_each_callback_carries_the_values_of_its_own_event(rig):
    """A quick receipt: both events are due when the notifier runs; the network-ack one must
    not carry the final status message (issue 13 item 3)."""
    clock, journal, notifier = rig
    good = Endpoint()
    try:
        message_id = send(journal, template(good.url, "r"))
        submit_and_report(journal, message_id, ReportStatus.FAILED, "9", detail="UNDELIV err:000")
        drain(notifier)
        queries = [urllib.parse.parse_qs(urllib.parse.urlsplit(c[1]).query) for c in good.calls]
        assert [q["st"][0] for q in queries] == ["deliveredtonetwork", "deliveryfailed"]
        assert queries[0]["sm"] == ["submitted"]
        assert queries[1]["sm"] == ["UNDELIV err:000"]
    finally:
        good.close()


def test_only_callbacks_sent_count_as_delivered(rig):
    """The `sending` event has nothing for an Ozeki reporturl: it is settled as skipped, not
    done, so sms_callbacks_delivered_total (events `done`) counts requests the client got.
    It counted every such event, 49 against 12 real requests in a helper's run."""
    from appliance.store import counters
    clock, journal, notifier = rig
    good = Endpoint()
    try:
        delivered(journal, notifier, good, "7")
        states = counters.events_by_state(journal)
        assert len(good.calls) == states.get("done", 0) == 2
        assert states.get("skipped", 0) >= 1 and not states.get("pending")
    finally:
        good.close()


def test_old_events_without_a_snapshot_still_render(rig):
    clock, journal, notifier = rig
    good = Endpoint()
    try:
        message_id = send(journal, template(good.url, "r"))
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "4")
        journal._write(lambda conn: conn.execute("UPDATE events SET snap_reason=NULL"))
        drain(notifier)
        assert len(good.calls) == 2
    finally:
        good.close()


def test_signed_callbacks_verify_with_the_users_secret(rig):
    clock, journal, notifier = rig
    notifier.accounts.create("shop", "shop-pass-1", settings={"callback_secret": "s3cret"})
    good = Endpoint()
    try:
        get_id = send(journal, template(good.url, "r"), user="shop")
        post_id = send(journal, good.url + "/dlr", kind="phonesystem_dlr", user="shop")
        submit_and_report(journal, get_id, ReportStatus.DELIVERED, "1")
        submit_and_report(journal, post_id, ReportStatus.DELIVERED, "2")
        drain(notifier)
        assert len(good.calls) == 3
        for method, path, headers, body in good.calls:
            assert signing.verify("s3cret", headers, method, good.url + path, body, clock.now())
            assert not signing.verify("other", headers, method, good.url + path, body,
                                      clock.now())
        method, path, headers, body = good.calls[-1]
        assert method == "POST" and body
        assert not signing.verify("s3cret", headers, method, good.url + path, body + b"x",
                                  clock.now())
        assert not signing.verify("s3cret", headers, method, good.url + path, body,
                                  clock.now() + 3600)          # a replay an hour later
    finally:
        good.close()


def test_unsigned_without_a_secret(rig):
    clock, journal, notifier = rig
    good = Endpoint()
    try:
        delivered(journal, notifier, good, "1")
        assert good.calls and all(signing.SIGNATURE_HEADER.lower() not in {k.lower() for k in c[2]}
                                   for c in good.calls)
    finally:
        good.close()


def test_a_flood_of_inbound_sms_for_a_failing_url_does_not_hold_back_other_callbacks(rig):
    """Found by a helper: inbound events were written without a destination, so with over
    100 of them due for one failing inbound URL every fetch was full of them, and no other
    client's callback left until a restart. The notifier records where each one goes."""
    from appliance.model import InboundFragment
    clock, journal, notifier = rig
    bad, good = Endpoint(status=500), Endpoint()
    try:
        notifier.accounts.create("bob", "bob-pass-123", inbound_url=f"{bad.url}/in")
        journal.inbound_owner = lambda fragment: "bob"
        for i in range(130):
            journal.inbound(InboundFragment(connection="GSMModem1", sender="+36301110000",
                                            recipient="+36200000002", encoding="gsm7",
                                            text=f"inbound {i}"))
        drain(notifier)
        assert len(bad.calls) == 1                           # failing: backing off
        alice = send(journal, template(good.url, "good"))
        submit_and_report(journal, alice, ReportStatus.DELIVERED, "7")
        drain(notifier)
        assert len(good.calls) == 2 and len(bad.calls) == 1
        waiting = journal.query("SELECT count(*) FROM events WHERE kind='inbound'"
                                " AND state='pending' AND destination=?", (bad.url.lower(),))
        assert waiting[0][0] == 130                          # kept for when it answers
    finally:
        bad.close()
        good.close()


def test_a_failed_report_gives_the_operators_code_to_the_callback(rig):
    """Found by a helper: a report with TP-ST 0x41 (incompatible destination) reached the
    reporturl as statuscode 1; the reference says $statuscode carries the operator's code."""
    clock, journal, notifier = rig
    endpoint = Endpoint()
    try:
        message_id = send(journal, template(endpoint.url, "r") + "&code=$statuscode")
        part_id = journal.query("SELECT id FROM parts WHERE message_id=?",
                                (message_id,))[0]["id"]
        journal.claim([(part_id, "GSMModem0")])
        journal.part_submitted(part_id, "GSMModem0", "9")
        journal.report(Report(connection="GSMModem0", reference="9",
                              status=ReportStatus.FAILED, code=0x41,
                              detail="incompatible destination"))
        drain(notifier)
        codes = [urllib.parse.parse_qs(urllib.parse.urlsplit(c[1]).query)["code"][0]
                 for c in endpoint.calls]
        assert codes == ["0", "65"]          # submitted, then failed with the operator's code
    finally:
        endpoint.close()


def test_submitdate_is_when_the_message_left_the_gateway(rig):
    """http-api.md 2.6: `$submitdate` is the "time sent from the gateway"; it was the time
    the message was accepted, which for a scheduled or queued message is hours earlier."""
    from appliance.timefmt import ozeki_time
    clock, journal, notifier = rig
    endpoint = Endpoint()
    try:
        message_id = send(journal, f"{endpoint.url}/r?at=$submitdate&st=$status")
        clock.advance(3600)
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "5")
        drain(notifier)
        dates = {urllib.parse.parse_qs(urllib.parse.urlsplit(c[1]).query)["at"][0]
                 for c in endpoint.calls}
        assert dates == {ozeki_time(clock.now())}
    finally:
        endpoint.close()


def test_an_inbound_sms_submitdate_is_when_its_sender_sent_it(rig):
    """Found by a helper: an inbound callback's `$submitdate` was the receive time, while
    receivemessage's senttime is the SMS's own (SCTS): wrong for an SMS delayed in the
    network or read from the SIM at start-up."""
    from appliance.model import InboundFragment
    from appliance.timefmt import ozeki_time
    clock, journal, notifier = rig
    endpoint = Endpoint()
    try:
        notifier.accounts.create("bob", "bob-pass-123",
                                 inbound_url=f"{endpoint.url}/in?sent=$submitdate&got=$receivedate")
        journal.inbound_owner = lambda fragment: "bob"
        sent = clock.now() - 5 * 3600
        journal.inbound(InboundFragment(connection="GSMModem1", sender="+36301110000",
                                        recipient="+36200000002", encoding="gsm7",
                                        text="late", sent_at=sent))
        drain(notifier)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(endpoint.calls[0][1]).query)
        assert query["sent"] == [ozeki_time(sent)] and query["got"] == [ozeki_time(clock.now())]
    finally:
        endpoint.close()


def test_urls_with_non_ascii_text_or_a_login_are_delivered(rig):
    """Found by a helper: `?shop=José` raised UnicodeEncodeError and `http://u:p@host/`
    was looked up as a host name, every time: the events failed for three days and held
    back every other callback to that host:port."""
    clock, journal, notifier = rig
    good = Endpoint()
    try:
        host = good.url.split("//", 1)[1]
        first = send(journal, f"{good.url}/dlr?shop=José&id=$messageid")
        second = send(journal, f"http://alice:s%40cret@{host}/auth?id=$messageid")
        submit_and_report(journal, first, ReportStatus.DELIVERED, "1")
        submit_and_report(journal, second, ReportStatus.DELIVERED, "2")
        drain(notifier)
        paths = [c[1] for c in good.calls]
        assert f"/dlr?shop=Jos%C3%A9&id={first}" in paths
        [auth] = [c[2] for c in good.calls if c[1].startswith("/auth")][:1]
        assert auth["Authorization"] == "Basic " + __import__("base64").b64encode(
            b"alice:s@cret").decode()
    finally:
        good.close()


def test_endpoints_that_hang_leave_workers_for_one_that_answers(rig):
    """Found by a helper: ten endpoints that accept and never answer took every worker (one
    per destination, at most eight), and a healthy client's callbacks waited behind them
    for the whole timeout. Two workers are kept for destinations that answered last."""
    clock, journal, notifier = rig
    notifier.max_workers = 8                # more endpoints hang than there are slots
    good = Endpoint()
    holes = [BlackHole() for _ in range(10)]
    try:
        delivered(journal, notifier, good, "0")             # it answers: known
        for i, hole in enumerate(holes):
            stuck = send(journal, template(hole.url, "hole"))
            submit_and_report(journal, stuck, ReportStatus.DELIVERED, f"h{i}")
        notifier.start()
        assert wait_for(lambda: sum(h.accepted.is_set() for h in holes) >= 6)
        before = len(good.calls)
        later = send(journal, template(good.url, "later"))
        submit_and_report(journal, later, ReportStatus.DELIVERED, "9")
        notifier._wake.set()
        assert wait_for(lambda: len(good.calls) >= before + 2, timeout=8)
    finally:
        for hole in holes:
            hole.close()
        notifier.stop()
        good.close()


def test_a_new_receiver_is_not_held_back_by_endpoints_that_keep_failing(rig):
    """Found by a helper: twelve hosts that hang, each failed before and due again, took
    every worker left for receivers not yet known to answer, oldest events first; a new
    healthy receiver (or one that answered before a restart) waited 36 s. Failing
    destinations may not take the last two workers."""
    from appliance.callback_url import destination_of
    clock, journal, notifier = rig
    notifier.max_workers = 8                # more endpoints hang than there are slots
    good = Endpoint()
    holes = [BlackHole() for _ in range(12)]
    try:
        for i, hole in enumerate(holes):
            stuck = send(journal, template(hole.url, "hole"))
            submit_and_report(journal, stuck, ReportStatus.DELIVERED, f"h{i}")
            notifier._destination_failed(destination_of(hole.url), "timed out")  # before
        clock.advance(BACKOFF[0] + 1)                       # and due again
        fresh = send(journal, template(good.url, "fresh"))
        submit_and_report(journal, fresh, ReportStatus.DELIVERED, "9")
        notifier.start()
        assert wait_for(lambda: len(good.calls) >= 2, timeout=5)
        assert sum(h.accepted.is_set() for h in holes) <= 6
    finally:
        for hole in holes:
            hole.close()
        notifier.stop()
        good.close()


def test_a_receiver_that_answered_before_a_restart_is_known_after_it(rig, tmp_path):
    clock, journal, notifier = rig
    good = Endpoint()
    try:
        delivered(journal, notifier, good, "0")
        again = Notifier(journal, None, clock=clock, timeout=30)
        again.start()
        try:
            from appliance.callback_url import destination_of
            assert destination_of(good.url) in again._answering
        finally:
            again.stop()
    finally:
        good.close()


def pending_attempts(journal) -> list[int]:
    rows = journal.query("SELECT attempts FROM events WHERE state='pending'")
    return [row["attempts"] for row in rows]


def test_a_new_receiver_gets_its_callback_while_new_hosts_hang(rig):
    """Found by a helper: a dozen hosts never seen before that accept and never answer, and
    one that never completes the connect, held every worker for the whole timeout (30 s
    here); a new healthy receiver's callbacks waited behind them. Requests are not threads
    any more: the healthy receiver is told while every hanging one is still in flight."""
    clock, journal, notifier = rig
    good = Endpoint()
    holes = [BlackHole() for _ in range(12)] + [NeverAccepts()]
    try:
        for i, hole in enumerate(holes):
            stuck = send(journal, template(hole.url, "hole"))
            submit_and_report(journal, stuck, ReportStatus.DELIVERED, f"h{i}")
        fresh = send(journal, template(good.url, "fresh"))
        submit_and_report(journal, fresh, ReportStatus.DELIVERED, "9")
        notifier.start()
        assert wait_for(lambda: len(good.calls) >= 2, timeout=10)
        assert all(a == 0 for a in pending_attempts(journal))   # no hang has ended yet
        assert sum(isinstance(h, BlackHole) and h.accepted.is_set() for h in holes) == 12
    finally:
        for hole in holes:
            hole.close()
        notifier.stop()
        good.close()


class Trickle(BlackHole):
    """Accepts and sends its answer's head one byte at a time, never finishing it."""

    def _took(self, conn):
        threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        head = b"HTTP/1.1 200 OK\r\nX-Slow: "
        while not self.release.wait(0.2):       # each byte well inside a read timeout
            try:
                conn.sendall(head[:1] or b"y")
            except OSError:
                return
            head = head[1:]


def test_a_request_has_one_deadline_for_connect_and_answer(tmp_path):
    """urllib's timeout was per socket read: an endpoint that trickles its answer held its
    request for ever, and one whose accept queue is full held it for the whole timeout. Now
    the connect has `connect_timeout` and the whole request `timeout` (short here: the
    assertion is that both end, with the reason, not when)."""
    clock = FakeClock()
    journal = Journal.open(tmp_path / "state", clock=clock)
    notifier = Notifier(journal, None, clock=clock, timeout=1.0, connect_timeout=0.3)
    trickle, full = Trickle(), NeverAccepts()
    try:
        for i, hole in enumerate((trickle, full)):
            message_id = send(journal, template(hole.url, "slow"))
            submit_and_report(journal, message_id, ReportStatus.DELIVERED, f"s{i}")
        drain(notifier)
        errors = {f["destination"]: f["last_error"]
                  for f in notifier.status()["failing_destinations"]}
        assert errors == {trickle.url: "no answer in 1 s", full.url: "no connection in 0.3 s"}
    finally:
        trickle.close()
        full.close()
        notifier.stop()
        journal.close()


class RawAnswer:
    """Reads a request's head and writes `answer` as it is, then closes. Not `listening`, the
    port refuses connections (bound only) until `up()`."""

    def __init__(self, answer, listening: bool = True):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.answer = answer
        self.requests: list[bytes] = []
        if listening:
            self.up()

    def up(self):
        self.sock.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def calls(self) -> list[str]:
        """The request lines received."""
        return [request.split(b"\r\n")[0].decode() for request in self.requests]

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                conn.sendall(self.answer(data) if callable(self.answer) else self.answer)

    def close(self):
        self.sock.close()


def test_a_refusing_receiver_backs_off_holds_nobody_and_is_told_after_a_restart(tmp_path):
    clock = FakeClock()
    journal = Journal.open(tmp_path / "state", clock=clock)
    notifier = Notifier(journal, None, clock=clock, timeout=30)
    late = RawAnswer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", listening=False)
    good = Endpoint()
    try:
        down = send(journal, template(late.url, "late"))
        submit_and_report(journal, down, ReportStatus.DELIVERED, "1")
        flowing = send(journal, template(good.url, "good"))
        submit_and_report(journal, flowing, ReportStatus.DELIVERED, "2")
        drain(notifier)
        assert len(good.calls) == 2 and late.calls == []
        [failing] = notifier.status()["failing_destinations"]
        assert (failing["failures"], failing["retry_in"]) == (1, BACKOFF[0])
        assert "refused" in failing["last_error"].lower()
        clock.advance(BACKOFF[0] + 1)
        drain(notifier)
        [failing] = notifier.status()["failing_destinations"]
        assert (failing["failures"], failing["retry_in"]) == (2, BACKOFF[1])
        notifier.stop()
        journal.close()

        journal = Journal.open(tmp_path / "state", clock=clock)          # a restart
        notifier = Notifier(journal, None, clock=clock, timeout=30)
        late.up()
        drain(notifier)
        assert late.calls == []                 # its retry time was kept
        clock.advance(BACKOFF[1] + 1)
        drain(notifier)
        statuses = [urllib.parse.parse_qs(urllib.parse.urlsplit(c.split()[1]).query)["st"][0]
                    for c in late.calls]
        assert statuses == ["deliveredtonetwork", "deliveredtohandset"]
        assert journal.pending_events() == 0
    finally:
        notifier.stop()
        journal.close()
        late.close()
        good.close()


def test_a_request_in_flight_at_stop_is_kept_for_the_next_start(tmp_path):
    """Stopping drops the requests in flight; their events stay pending, not failed."""
    clock = FakeClock()
    journal = Journal.open(tmp_path / "state", clock=clock)
    notifier = Notifier(journal, None, clock=clock, timeout=30)
    hole = BlackHole()
    try:
        message_id = send(journal, template(hole.url, "hole"))
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "1")
        notifier.start()
        assert hole.accepted.wait(10)
        notifier.stop()
        assert notifier.idle()
        assert pending_attempts(journal) == [0, 0]
        assert len(journal.due_events()) == 1   # the first one, due now
    finally:
        hole.close()
        notifier.stop()
        journal.close()


def test_an_admin_alert_is_posted_to_the_alert_url(rig):
    clock, journal, notifier = rig
    good = Endpoint()
    try:
        notifier.admin_alert(SimpleNamespace(alert_url=f"{good.url}/alerts"), "GSMModem0",
                             "modem down")
        assert wait_for(lambda: len(good.calls) == 1, timeout=10)
        method, path, headers, body = good.calls[0]
        assert (method, path) == ("POST", "/alerts")
        assert urllib.parse.parse_qs(body.decode()) == {"slot": ["GSMModem0"],
                                                        "alert": ["modem down"]}
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    finally:
        notifier.stop()
        good.close()


def test_a_redirected_callback_is_followed_as_urllib_did(rig):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    clock, journal, notifier = rig
    good = Endpoint()

    class Moved(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"{good.url}/new{self.path[2:]}")   # /r?... -> /new?...
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    moved = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=moved.serve_forever, daemon=True).start()
    try:
        port = moved.server_address[1]
        delivered(journal, notifier, SimpleNamespace(url=f"http://127.0.0.1:{port}"), "1")
        assert [c[1].split("?")[0] for c in good.calls] == ["/new", "/new"]
        assert journal.pending_events() == 0
    finally:
        moved.shutdown()
        moved.server_close()
        good.close()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nSet-Cookie: s=" + b"x" * 30000 + b"\r\n\r\n",
], ids=["100-continue", "103-early-hints", "30kB-header"])
def test_an_answer_http_client_took_is_taken(rig, answer):
    """Found by a helper: the hand-written reader took a 100 Continue for the answer (the
    callback failed, and was sent again, although the receiver took it) and failed a head
    line over 16 kB; http.client skipped the 100 and took lines up to 64 kB."""
    clock, journal, notifier = rig
    receiver = RawAnswer(answer)
    try:
        message_id = send(journal, template(receiver.url, "r"))
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "1")
        drain(notifier)
        assert journal.pending_events() == 0
        assert len(receiver.requests) == 2              # submitted, delivered: once each
    finally:
        notifier.stop()
        receiver.close()


def test_a_receiver_named_by_host_name_is_told_while_other_names_hang_in_lookup(rig,
                                                                                 monkeypatch):
    """Found by a helper: lookups ran on asyncio's default pool (cpu + 4 threads); that many
    destinations whose name lookup hangs (a DNS server gone) held it, and a healthy
    receiver named by its host name failed 'no connection' waiting for a thread."""
    import os
    real = socket.getaddrinfo
    release = threading.Event()

    def lookup(host, *args, **kwargs):
        if str(host).endswith(".hang.invalid"):
            release.wait(30)
            raise socket.gaierror("lookup timed out")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    clock, journal, notifier = rig
    notifier.connect_timeout = 3
    good = Endpoint()
    try:
        for i in range(min(32, (os.cpu_count() or 1) + 4) + 2):
            stuck = send(journal, template(f"http://h{i}.hang.invalid", "x"))
            submit_and_report(journal, stuck, ReportStatus.DELIVERED, f"h{i}")
        fresh = send(journal, template(good.url.replace("127.0.0.1", "localhost"), "fresh"))
        submit_and_report(journal, fresh, ReportStatus.DELIVERED, "9")
        notifier.start()
        assert wait_for(lambda: len(good.calls) >= 2, timeout=10)
    finally:
        release.set()
        notifier.stop()
        good.close()


def test_a_redirect_to_a_location_with_spaces_is_followed(rig):
    """Found by a helper: urllib percent-encoded a redirect's Location; the hand-written
    client put 'GET /new place?... HTTP/1.1' on the wire, a broken request line the
    receiver refused with 400 at every retry."""
    clock, journal, notifier = rig

    def answer(request: bytes) -> bytes:
        if request.startswith(b"GET /r"):
            return b"HTTP/1.1 302 Found\r\nLocation: /new place?shop=Jos%C3%A9&at=a b\r\n\r\n"
        line = request.split(b"\r\n", 1)[0]
        ok = line == b"GET /new%20place?shop=Jos%C3%A9&at=a%20b HTTP/1.1"
        return b"HTTP/1.1 200 OK\r\n\r\n" if ok else b"HTTP/1.1 400 Bad Request\r\n\r\n"

    receiver = RawAnswer(answer)
    try:
        delivered(journal, notifier, receiver, "1")
        assert journal.pending_events() == 0
        assert len(receiver.requests) == 4              # two events, each redirected once
    finally:
        notifier.stop()
        receiver.close()


def test_a_redirect_to_another_host_carries_no_login_or_signature(rig):
    """Found by a helper: the Basic header (from the URL's user:password@) and the
    signature went on to whatever host a receiver redirected to; browsers, curl and
    requests drop them when scheme, host or port change. A same-origin redirect keeps them."""
    clock, journal, notifier = rig
    notifier.accounts.create("shop", "shop-pass-1", settings={"callback_secret": "s3cret"})
    other = Endpoint()

    def answer(request: bytes) -> bytes:
        if request.startswith(b"GET /away"):
            return b"HTTP/1.1 302 Found\r\nLocation: " + other.url.encode() + b"/there\r\n\r\n"
        if request.startswith(b"GET /here"):
            return b"HTTP/1.1 302 Found\r\nLocation: /moved\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\n\r\n"

    first = RawAnswer(answer)
    try:
        host = first.url.split("//", 1)[1]
        away = send(journal, f"http://alice:pw@{host}/away?id=$messageid", user="shop")
        here = send(journal, f"http://alice:pw@{host}/here?id=$messageid", user="shop")
        submit_and_report(journal, away, ReportStatus.DELIVERED, "1")
        submit_and_report(journal, here, ReportStatus.DELIVERED, "2")
        drain(notifier)
        assert journal.pending_events() == 0
        assert len(other.calls) == 2                    # submitted, delivered
        secret_headers = {"authorization", signing.SIGNATURE_HEADER.lower(),
                          signing.TIMESTAMP_HEADER.lower()}
        for _, _, headers, _ in other.calls:
            assert not secret_headers & {k.lower() for k in headers}
        moved = [r for r in first.requests if r.startswith(b"GET /moved")]
        assert len(moved) == 2
        for request in moved:
            assert b"\r\nAuthorization: Basic " in request
            assert b"\r\nX-SMS-Appliance-Signature: v1=" in request
    finally:
        notifier.stop()
        first.close()
        other.close()


def test_a_same_origin_redirect_is_signed_for_the_url_it_asks_for(rig):
    """Found in review: on a redirect to another path of the same receiver (or a POST turned
    into a GET by a 303) the signature made for the first URL went on, so the receiver's
    check of the URL, method and body it was asked for failed and the callback retried for
    ever. The redirected request is signed for itself (same timestamp)."""
    clock, journal, notifier = rig
    notifier.accounts.create("shop", "shop-pass-1", settings={"callback_secret": "s3cret"})
    verified: list[bytes] = []

    def answer(request: bytes) -> bytes:
        if request.startswith(b"GET /here"):
            return b"HTTP/1.1 302 Found\r\nLocation: /moved?from=here\r\n\r\n"
        if request.startswith(b"POST /dlr"):
            return b"HTTP/1.1 303 See Other\r\nLocation: /after\r\n\r\n"
        head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ")
        headers = dict(line.split(": ", 1) for line in head[1:])
        if signing.verify("s3cret", headers, method, receiver.url + target, b"", clock.now()):
            verified.append(head[0].encode())
            return b"HTTP/1.1 200 OK\r\n\r\n"
        return b"HTTP/1.1 401 Unauthorized\r\n\r\n"

    receiver = RawAnswer(answer)
    try:
        get_id = send(journal, receiver.url + "/here?id=$messageid", user="shop")
        post_id = send(journal, receiver.url + "/dlr", kind="phonesystem_dlr", user="shop")
        submit_and_report(journal, get_id, ReportStatus.DELIVERED, "1")
        submit_and_report(journal, post_id, ReportStatus.DELIVERED, "2")
        drain(notifier)
        assert journal.pending_events() == 0
        assert sorted(verified) == [b"GET /after HTTP/1.1"] + [b"GET /moved?from=here HTTP/1.1"] * 2
    finally:
        notifier.stop()
        receiver.close()


def https_server(tmp_path, monkeypatch, handler):
    """A threaded HTTPS server on 127.0.0.1 with a fresh certificate the notifier trusts."""
    import ssl
    import subprocess
    from http.server import ThreadingHTTPServer
    from appliance import notify
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setattr(notify, "_tls", ssl.create_default_context(cafile=str(cert)))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(str(cert), str(key))
    server.socket = server_side.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_redirect_from_https_to_http_is_refused(rig, tmp_path, monkeypatch):
    """Found by a helper: an https receiver's redirect to http:// was followed with the
    login and signature, the report's values in clear on the network."""
    from http.server import BaseHTTPRequestHandler
    clock, journal, notifier = rig
    plain = Endpoint()

    class Moved(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"{plain.url}/clear{self.path[2:]}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    secure = https_server(tmp_path, monkeypatch, Moved)
    try:
        port = secure.server_address[1]
        message_id = send(journal, template(f"https://alice:pw@127.0.0.1:{port}", "r"))
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "1")
        drain(notifier)
        assert plain.calls == []
        [failing] = notifier.status()["failing_destinations"]
        assert "refused" in failing["last_error"]
        assert journal.pending_events() == 2            # kept, retried with backoff
    finally:
        notifier.stop()
        secure.shutdown()
        secure.server_close()
        plain.close()


def test_a_signature_covers_the_url_as_requested(rig):
    """Found by a helper: the signature was made over the URL as written, with its
    user:password@ and unencoded text, while the receiver sees the URL requested
    (percent-encoded, no login): such callbacks never verified."""
    clock, journal, notifier = rig
    notifier.accounts.create("shop", "shop-pass-1", settings={"callback_secret": "s3cret"})
    good = Endpoint()
    try:
        host = good.url.split("//", 1)[1]
        message_id = send(journal, f"http://alice:pw@{host}/r?shop=José&id=$messageid",
                          user="shop")
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "1")
        drain(notifier)
        assert len(good.calls) == 2
        for method, path, headers, body in good.calls:
            assert path.startswith("/r?shop=Jos%C3%A9&id=")
            assert signing.verify("s3cret", headers, method, good.url + path, body, clock.now())
    finally:
        good.close()
