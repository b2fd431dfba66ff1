"""SmppChannel against a real SMPP server (smpp34's, see tests/fakes/smsc.py) on 127.0.0.1.

These tests watch the channel through a recording sink; tests/test_smpp_daemon.py runs the
whole appliance with an SMPP connection and checks states through the Ozeki API.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import smpp34

from appliance.config import SMPPConfig
from appliance.gsm import udh
from appliance.model import OutPart, ReportStatus
from appliance.uplink.smpp import SmppChannel
from fakes.smsc import Smsc

TLV_SAR_REF, TLV_SAR_TOTAL, TLV_SAR_SEQ, TLV_PAYLOAD = 0x020C, 0x020E, 0x020F, 0x0424


class RecordingSink:
    """Records what the channel tells the store."""

    def __init__(self):
        self.lock = threading.Lock()
        self.submitted: dict[int, str] = {}
        self.whole: set[int] = set()
        self.failed: list[tuple] = []
        self.reports: list = []
        self.fragments: list = []
        self.messages: dict[str, dict] = {}

    def part_submitted(self, part_id, connection, reference, whole_message=False):
        with self.lock:
            self.submitted[part_id] = reference
            if whole_message:
                self.whole.add(part_id)

    def part_failed(self, part_id, connection, code, reason, retryable):
        with self.lock:
            self.failed.append((part_id, code, retryable))

    def report(self, report):
        with self.lock:
            self.reports.append(report)

    def inbound(self, fragment):
        with self.lock:
            self.fragments.append(fragment)

    def get_message(self, message_id):
        return self.messages.get(message_id)


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def part(pid: int, text: str = "hello", **kw) -> OutPart:
    fields = dict(id=pid, message_id=f"m{pid}", recipient="+36201234567", originator="ACME",
                  text=text)
    fields.update(kw)
    return OutPart(**fields)


@pytest.fixture
def smsc():
    server = Smsc(receipts=True).start()
    yield server
    server.stop()


@pytest.fixture
def channel_for(smsc):
    started = []

    def make(**kw) -> tuple[SmppChannel, RecordingSink]:
        sink = RecordingSink()
        pause = kw.pop("throttle_pause", 0.3)
        conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=smsc.port, username="esme",
                          password="secret", reconnectdelay=0.05, reconnectmaxdelay=0.2,
                          **kw)
        channel = SmppChannel(conn, sink, throttle_pause=pause)
        channel.start()
        started.append(channel)
        wait_until(lambda: channel.state == "bound", what="bind")
        return channel, sink
    yield make
    for channel in started:
        channel.stop()


@pytest.mark.parametrize("mode", ["transmitter", "receiver", "transceiver"])
def test_binds_in_each_mode(smsc, channel_for, mode):
    channel, sink = channel_for(mode=mode, systemtype="APP")
    assert smsc.binds == ["esme"]
    status = channel.status()
    assert status["bound"] and status["mode"] == mode
    assert channel.free_slots() == (0 if mode == "receiver" else channel.capacity)
    if mode != "transmitter":          # receivers and transceivers take MO
        # smpp34 answers a receiver session's deliver_sm_resp with generic_nack (its quirk),
        # so the MO is pushed without waiting for the server's view of the answer
        smsc.send_mo("+36701111111", "1234", b"ping", wait=mode == "transceiver")
        wait_until(lambda: sink.fragments, what="MO")
        assert sink.fragments[0].text == "ping"
        assert sink.fragments[0].sender == "+36701111111"


def test_the_link_sends_small_pdus_without_nagle_delay(smsc, channel_for):
    """A deliver_sm_resp or enquire_link written while an earlier write waits for its ACK
    must not be held for it (Nagle; up to 40 ms of delayed ACK per receipt)."""
    channel, _ = channel_for()
    sock = channel._client._socket
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_window_pipelines_and_receipts_match_normalised_ids(smsc, channel_for):
    # the test SMSC answers hex (000000A0) and reports decimal (160); past 0xFF its hex
    # ids have no letters (00000100 = 256), which only the connection's setting can tell
    channel, sink = channel_for(windowsize=50, messageidbase="hex-decimal")
    for i in range(1, 201):
        channel.submit(part(i, f"message {i}"))
    wait_until(lambda: len(sink.submitted) == 200 and len(sink.reports) == 200,
               what="200 submitted and reported")
    # submit_sm_resp said 000000A0..00000167, the receipts 160..359: both normalised to one
    # string (smpp34 numbers a burst in the order it handles it, not the wire order)
    assert set(sink.submitted.values()) == {str(n) for n in range(0xA0, 0xA0 + 200)}
    assert {r.reference for r in sink.reports} == set(sink.submitted.values())
    assert all(r.status == ReportStatus.DELIVERED for r in sink.reports)
    assert [p.short_message for p in smsc.proxy.wire] == \
        [f"message {i}".encode() for i in range(1, 201)]
    assert channel.status()["counts"]["submitted"] == 200


def test_three_part_ucs2_goes_as_three_submit_sm_with_udh(smsc, channel_for):
    channel, sink = channel_for()
    texts = ["Ünïcode ☺ part one ", "part two ", "part three"]
    for seq, text in enumerate(texts, 1):
        channel.submit(part(seq, text, message_id="m", seq=seq, total=3, concat_ref=77,
                            encoding="ucs2"))
    wait_until(lambda: len(sink.reports) == 3, what="3 receipts")
    wire = smsc.proxy.wire
    assert len(wire) == 3
    for seq, (pdu, text) in enumerate(zip(wire, texts), 1):
        assert pdu.data_coding == 8 and pdu.esm_class & 0x40
        body = pdu.short_message
        header = body[1:1 + body[0]]
        assert udh.interpret(header).concat == (77, 3, seq, 8)
        assert body[1 + body[0]:].decode("utf-16-be") == text
        assert pdu.registered_delivery == 1


def test_sar_tlvs_instead_of_udh(smsc, channel_for):
    channel, sink = channel_for(usesar=True)
    for seq in (1, 2):
        channel.submit(part(seq, f"half {seq}", message_id="m", seq=seq, total=2,
                            concat_ref=9))
    wait_until(lambda: len(sink.submitted) == 2, what="2 submitted")
    for seq, pdu in enumerate(smsc.proxy.wire, 1):
        tlvs = {t.tag: bytes(t.value) for t in pdu.tlvs}
        assert not pdu.esm_class & 0x40
        assert int.from_bytes(tlvs[TLV_SAR_REF], "big") == 9
        assert tlvs[TLV_SAR_TOTAL] == b"\x02" and tlvs[TLV_SAR_SEQ] == bytes([seq])


def test_message_payload_sends_the_whole_text_once(smsc, channel_for):
    channel, sink = channel_for(usetlvmessagepayload=True)
    sink.messages["m"] = {"body": "x" * 200}
    for seq in (1, 2):
        channel.submit(part(seq, "x" * 100, message_id="m", seq=seq, total=2, concat_ref=3))
    wait_until(lambda: len(sink.submitted) == 2 and sink.reports, what="submitted, receipt")
    assert len(smsc.proxy.wire) == 1
    tlvs = {t.tag: bytes(t.value) for t in smsc.proxy.wire[0].tlvs}
    assert tlvs[TLV_PAYLOAD] == b"x" * 200 and smsc.proxy.wire[0].short_message == b""
    # both parts carry part 1's reference; the store marks the whole message with it
    assert sink.submitted[1] == sink.submitted[2] == sink.reports[0].reference
    assert sink.whole == {1}


def test_message_payload_parts_share_the_fate_of_part_one(smsc, channel_for):
    channel, sink = channel_for(usetlvmessagepayload=True, throttle_pause=0.01)
    channel._throttle.cap = 0.02
    sink.messages["m"] = {"body": "y" * 200}
    smsc.throttle = 100
    for seq in (1, 2):
        channel.submit(part(seq, "y" * 100, message_id="m", seq=seq, total=2, concat_ref=3))
    wait_until(lambda: len(sink.failed) == 2, what="both back to the store")
    assert sink.failed == [(1, "throttled", True), (2, "throttled", True)]
    assert not sink.submitted and len(smsc.proxy.wire) == 5


def test_flash_and_ozeki_dynamic_parameters(smsc, channel_for):
    channel, sink = channel_for()
    channel.submit(part(1, "flash", msg_class=0))
    channel.submit(part(2, "flash ☺", msg_class=0, encoding="ucs2"))
    channel.submit(part(3, "custom", smpp_params={"source_addr_ton": "2", "dest_addr_npi": "9",
                                                  "data_coding": "3", "esm_class": "0"}))
    wait_until(lambda: len(sink.submitted) == 3, what="3 submitted")
    flash, flash_ucs2, custom = smsc.proxy.wire
    assert flash.data_coding == 0x10 and flash_ucs2.data_coding == 0x18
    assert (custom.source_addr_ton, custom.dest_addr_npi, custom.data_coding) == (2, 9, 3)
    assert (flash.source_addr_ton, flash.source_addr_npi, flash.source_addr) == (5, 0, "ACME")


def test_throttling_keeps_the_part_and_sends_it_first_after_the_pause(smsc, channel_for):
    channel, sink = channel_for(throttle_pause=0.4)
    smsc.throttle = 1
    channel.submit(part(1, "first"))
    wait_until(lambda: channel.status()["counts"]["throttled"] == 1, what="throttled")
    assert channel.free_slots() == channel.capacity - 1   # parts still come and wait the pause
    assert channel.status()["throttled_for"] > 0 and channel.status()["queued"] == 1
    channel.submit(part(2, "second"))
    time.sleep(0.2)
    assert len(smsc.proxy.wire) == 1            # still paused: nothing sent
    wait_until(lambda: {1, 2} <= set(sink.submitted), what="both sent after the pause")
    assert not sink.failed                      # never back to the store
    # the kept part leaves first (the SMSC may answer the two in either order)
    assert [p.short_message for p in smsc.proxy.wire] == [b"first", b"first", b"second"]
    assert channel.free_slots() == channel.capacity


def test_a_part_throttled_again_and_again_goes_back_to_the_store(smsc, channel_for):
    channel, sink = channel_for(throttle_pause=0.01)
    channel._throttle.cap = 0.02
    smsc.throttle = 100
    channel.submit(part(1))
    wait_until(lambda: sink.failed, what="given back")
    assert sink.failed == [(1, "throttled", True)]
    assert len(smsc.proxy.wire) == 5            # MAX_THROTTLED tries on this connection


def test_server_unbind_is_answered_and_survived(smsc, channel_for):
    channel, sink = channel_for()
    smsc.unbind_after = 2
    for i in (1, 2):
        channel.submit(part(i))
    wait_until(lambda: channel.status()["counts"]["binds"] == 2, what="rebind after unbind")
    wait_until(lambda: channel.state == "bound", what="bound again")
    channel.submit(part(3))
    wait_until(lambda: 3 in sink.submitted, what="part 3 after rebind")
    assert set(sink.submitted) == {1, 2, 3} and not sink.failed
    assert smsc.binds == ["esme", "esme"]


def test_link_drop_mid_window_returns_only_parts_in_flight(smsc, channel_for):
    channel, sink = channel_for(windowsize=10)
    smsc.hold_after = 3                 # the SMSC answers 3, then keeps 7 in flight
    for i in range(1, 11):
        channel.submit(part(i))
    wait_until(lambda: len(smsc.held) == 7, what="7 held")
    assert channel.status()["window"]["in_use"] == 7
    smsc.proxy.cut()
    wait_until(lambda: len(sink.failed) == 7, what="in-flight parts returned")
    # smpp34 answers concurrently, so which 3 were answered varies; none is both
    assert len(sink.submitted) == 3
    assert {pid for pid, _, _ in sink.failed} == set(range(1, 11)) - set(sink.submitted)
    assert all(code == "link_down" and retryable for _, code, retryable in sink.failed)
    smsc.release_held()
    wait_until(lambda: channel.state == "bound" and channel.status()["counts"]["binds"] == 2,
               what="reconnected")
    assert channel.status()["counts"]["link_drops"] == 1


def test_keepalive_keeps_an_idle_link(smsc, channel_for):
    channel, _ = channel_for(keepaliveperiod=0.2)
    time.sleep(1.2)
    assert channel.state == "bound"
    assert channel.status()["counts"]["link_drops"] == 0


def test_reconnects_with_backoff_while_the_smsc_refuses(smsc, channel_for):
    channel, sink = channel_for()
    smsc.proxy.down = True
    smsc.proxy.cut()
    wait_until(lambda: smsc.proxy.accepted >= 4, what="several reconnect attempts")
    assert channel.free_slots() == 0 and channel.state in ("backoff", "connecting")
    assert "link" in channel.status()["last_error"] or "bind" in channel.status()["last_error"]
    smsc.proxy.down = False
    wait_until(lambda: channel.state == "bound", what="bound again")
    channel.submit(part(1))
    wait_until(lambda: 1 in sink.submitted, what="sent after return")


def test_long_mo_by_udh_and_by_sar_comes_as_concat_fragments(smsc, channel_for):
    channel, sink = channel_for()
    for seq, text in ((1, "Hello "), (2, "world")):
        header = udh.concat_ie(42, 2, seq)
        body = bytes((len(header),)) + header + text.encode("utf-16-be")
        assert smsc.send_mo("+36702222222", "1234", body, data_coding=8, esm_class=0x40) == 0
    sar = [smpp34.Tlv(TLV_SAR_REF, (500).to_bytes(2, "big")),
           smpp34.Tlv(TLV_SAR_TOTAL, b"\x02"), smpp34.Tlv(TLV_SAR_SEQ, b"\x01")]
    smsc.send_mo("+36703333333", "1234", b"first half", tlvs=sar)
    wait_until(lambda: len(sink.fragments) == 3, what="3 fragments")
    # a sink without write_many gets one read's PDUs through a thread pool, in any order
    a, b, c = sorted(sink.fragments, key=lambda f: f.concat)
    assert (a.concat, a.text, a.encoding) == ((42, 2, 1, 8), "Hello ", "ucs2")
    assert (b.concat, b.text) == ((42, 2, 2, 8), "world")
    assert (c.concat, c.text) == ((500, 2, 1, 16), "first half")


def test_stop_gives_back_queued_parts(smsc, channel_for):
    channel, sink = channel_for()
    smsc.hold_after = 0
    channel.submit(part(1))
    wait_until(lambda: smsc.held, what="in flight")
    channel.stop()
    assert sink.failed == [(1, "stopped", True)] or sink.failed == [(1, "link_down", True)]
    assert channel.state == "stopped" and not channel.alive()


def test_an_alert_passes_the_bulk_parts_waiting_in_the_channel(smsc, channel_for):
    """Parts kept ready beyond the window wait in send order: an alert handed over while
    bulk parts wait here leaves before them (alerts before bulk), the bulk keeps its order."""
    from appliance.model import Priority
    channel, sink = channel_for(windowsize=1, deliveryreport=False)
    smsc.hold_after = 0                       # the first submit_sm stays in flight
    channel.submit_batch([part(i, f"bulk {i}", priority=Priority.BULK) for i in range(1, 6)])
    wait_until(lambda: len(smsc.received) == 1 and channel.status()["queued"] == 4,
               what="bulk 1 in flight, 2..5 waiting")
    channel.submit_batch([part(9, "alert", priority=Priority.ALERT)])
    smsc.release_held()
    wait_until(lambda: len(sink.submitted) == 6, what="all submitted")
    assert [r.short_message for r in smsc.received] == [
        b"bulk 1", b"alert", b"bulk 2", b"bulk 3", b"bulk 4", b"bulk 5"]


def test_a_started_uplink_shortens_the_interpreters_switch_interval(channel_for):
    """The worker gets the GIL within 1 ms of an answer, not after the 5 ms default."""
    import sys
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        channel_for()
        assert sys.getswitchinterval() <= 0.001
    finally:
        sys.setswitchinterval(previous)
