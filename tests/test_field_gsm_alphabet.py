"""Pain point 9: GSM 03.38 and Unicode errors (euro sign, @, braces, emoji). Text goes out
through the codec and the simulated network decodes the PDU it received."""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_extension_characters_and_unicode_arrive_intact(rig, network):
    sender, receiver = network.add_modem("slot1", "+36201111111"), network.add_modem("slot2", "+36202222222")
    sink_out, sink_in = Sink(), Sink()
    worker = rig.ready(rig.worker(sender, sink_out))
    rig.ready(rig.worker(receiver, sink_in))
    texts = {1: ("gsm7", "Price 5€ @home {ok} [x] ~^|\\"), 2: ("ucs2", "Szia 😀 Ωmega")}
    for part_id, (encoding, text) in texts.items():
        rig.ready(worker)
        worker.submit(part(part_id, "+36202222222", text, encoding=encoding))
        wait_until(lambda: len(sink_out.submitted) == part_id, what=f"part {part_id}")
    wait_until(lambda: len(sink_in.fragments) == 2, what="both arrived")
    assert [f.text for f in sink_in.fragments] == [texts[1][1], texts[2][1]]
    assert [f.encoding for f in sink_in.fragments] == ["gsm7", "ucs2"]
