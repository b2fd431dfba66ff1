"""Reading a deliver_sm receipt: the channel's own reader (appliance/uplink/wire.py) against
smpplib's PDU classes, µs per receipt, for a bare receipt and for one carrying TLVs the
channel does not use (`network_error_code` and a vendor tag, as aggregators add to every
receipt). A receipt the own reader cannot read goes to smpplib.

Run: python bench/receipt_parse.py   (one line per kind; nothing is asserted)
"""

from __future__ import annotations

import logging
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import smpplib.smpp  # noqa: E402

from appliance.uplink import wire  # noqa: E402
from codec import per_second  # noqa: E402  (bench/codec.py: calls per second of an action)

TEXT = (b"id:1234567 sub:001 dlvrd:001 submit date:2612051200 done date:2612051201"
        b" stat:DELIVRD err:000 text:x")


class _Seq:
    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


def receipt(**tlvs) -> bytes:
    return smpplib.smpp.make_pdu("deliver_sm", client=_Seq(), short_message=TEXT, esm_class=4,
                                 source_addr="36201234567", destination_addr="ACME",
                                 **tlvs).generate()


def with_vendor_tag(raw: bytes) -> bytes:
    body = raw[4:] + struct.pack(">HH", 0x1501, 10) + b"carrier-x\0"
    return struct.pack(">I", 4 + len(body)) + body


def micros(action) -> float:
    return 1e6 / per_second(action)


def main() -> None:
    logging.disable(logging.WARNING)     # smpplib's per-PDU warning is not what is timed
    client = _Seq()
    kinds = {"bare receipt": receipt(),
             "receipt + network_error_code + vendor TLV":
                 with_vendor_tag(receipt(network_error_code=b"\x03\x00\x01"))}
    for name, raw in kinds.items():
        ours = micros(lambda: wire.read_deliver_sm(raw))
        theirs = micros(lambda: smpplib.smpp.parse_pdu(raw, client=client,
                                                       allow_unknown_opt_params=True))
        taken = "own reader" if wire.read_deliver_sm(raw) is not None else "left to smpplib"
        print(f"{name}: own reader {ours:.1f} µs, smpplib {theirs:.1f} µs"
              f" ({theirs / ours:.1f}x); the channel uses: {taken}")


if __name__ == "__main__":
    main()
