"""bench/fast_smsc.py is the peer `bench/uplink.py` measures the SMPP clients through when the
test SMSC would set the pace. It must answer as an SMSC does, or the channel's figure through
it means nothing: the real channel binds, every part is answered with its own message id,
and an unknown request gets a generic_nack."""

import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import fast_smsc  # noqa: E402

from appliance.config import SMPPConfig
from appliance.model import OutPart
from appliance.uplink.smpp import SmppChannel


class Sink:
    def __init__(self):
        self.references: dict[int, str] = {}
        self.lock = threading.Lock()

    def part_submitted(self, part_id, connection, reference):
        with self.lock:
            self.references[part_id] = reference

    part_failed = report = inbound = lambda self, *a, **k: None


def _serving() -> int:
    server = fast_smsc.listen()
    threading.Thread(target=fast_smsc.accept_forever, args=(server,), daemon=True).start()
    return server.getsockname()[1]


def test_the_real_channel_binds_and_every_part_gets_its_own_message_id():
    sink = Sink()
    conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=_serving(), username="bench",
                      password="bench", windowsize=10, deliveryreport=False,
                      messageidbase="hex")      # its ids are hex: 0000000A, 00000010
    channel = SmppChannel(conn, sink)
    channel.start()
    try:
        deadline = time.monotonic() + 10
        while channel.state != "bound" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert channel.state == "bound"
        channel.submit_batch([OutPart(id=i, message_id=str(i), recipient="+36201234567",
                                      originator="BENCH", text=f"part {i}") for i in range(300)])
        while len(sink.references) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        channel.stop()
    assert sorted(sink.references) == list(range(300))
    assert sorted(map(int, sink.references.values())) == list(range(1, 301))


def test_an_unknown_request_gets_a_generic_nack_with_its_sequence():
    with socket.create_connection(("127.0.0.1", _serving()), timeout=5) as sock:
        sock.sendall(struct.pack(">IIII", 16, 0x00000103, 0, 77))     # data_sm: not served
        length, command, status, sequence = struct.unpack(">IIII", sock.recv(16))
    assert (length, command, status, sequence) == (16, 0x80000000, 3, 77)
