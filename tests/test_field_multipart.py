"""Pain point 10: multipart split and reassembly. Outbound parts carry the store's concat
reference (8 or 16 bit) in their UDH; long inbound SMS reach the store as fragments with
(ref, total, seq, bits), which the store joins."""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_outbound_parts_carry_the_concat_reference(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    for seq, bits in ((1, False), (2, False), (3, False)):
        rig.ready(worker)
        worker.submit(part(seq, text=f"part {seq}", seq=seq, total=3, concat_ref=42,
                           concat_16bit=bits))
        wait_until(lambda: len(sink.submitted) == seq, what=f"part {seq}")
    # the simulated network records a submit on its own thread: wait for it too
    wait_until(lambda: len(network.submits) == 3, what="three submits at the network")
    assert [s["concat"] for s in network.submits] == [(42, 3, 1, 8), (42, 3, 2, 8), (42, 3, 3, 8)]
    rig.ready(worker)
    worker.submit(part(9, text="sixteen", seq=1, total=2, concat_ref=4242, concat_16bit=True))
    wait_until(lambda: len(network.submits) == 4, what="16-bit part")
    assert network.submits[3]["concat"] == (4242, 2, 1, 16)


def test_long_inbound_arrives_as_fragments_with_concat(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    rig.ready(rig.worker(sim, sink))
    text = "A long inbound message that must be split by the network. " * 5
    sim.deliver_inbound("+36705550001", text)
    wait_until(lambda: len(sink.fragments) == 2, what="two fragments")
    ordered = sorted(sink.fragments, key=lambda f: f.concat[2])
    assert {f.concat[1] for f in ordered} == {2}
    assert "".join(f.text for f in ordered) == text
