"""Codec throughput: SMS-SUBMIT encode and PDU decode, in PDUs per second.

Run: python bench/codec.py   (prints one line per message kind; nothing is asserted)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.gsm import decode, encode_submit  # noqa: E402

MESSAGES = {
    "short gsm7": "Your code is 482913. It expires in 10 minutes.",
    "long gsm7": ("Dear customer, your parcel {ref 12-345} is on its way; "
                            "track it at https://example.com/t?id=12345 €2 fee. ") * 5,
    "ucs2": "Здравствуйте! Ваш заказ № 1234 отправлен 📦. " * 4,
}


def per_second(action, budget: float = 0.5) -> float:
    """Calls of `action` per second, timed over at least `budget` seconds."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget:
        for _ in range(50):
            action()
        calls += 50
    return calls / elapsed


def bench(name: str, text: str) -> str:
    pdus = encode_submit("+447700900123", text, concat_ref=1)
    encode_rate = per_second(lambda: encode_submit("+447700900123", text, concat_ref=1))
    decode_rate = per_second(lambda: [decode(p) for p in pdus])
    parts = len(pdus)
    label = f"{name} ({parts} part{'s' if parts > 1 else ''})"
    return (f"{label:<22} encode {encode_rate * parts:>9,.0f} PDUs/s   "
            f"decode {decode_rate * parts:>9,.0f} PDUs/s")


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    for name, text in MESSAGES.items():
        print(bench(name, text))


if __name__ == "__main__":
    main()
