"""`sms-appliance sim --modems N`: simulated modems on ptys for any AT client to use."""

from __future__ import annotations

import signal
import threading

from appliance.sim.network import SimNetwork


def main(count: int, send_seconds: float = 2.0, report_seconds: float = 3.0) -> int:
    network = SimNetwork(send_seconds=send_seconds, report_seconds=report_seconds, record=False)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for index in range(count):
            sim = network.add_modem(f"slot{index + 1}", f"+3620{index + 1:07d}")
            print(f"{sim.slot}  {sim.number}  {sim.path}  (pty {sim.tty_path})", flush=True)
        print("SMS between these numbers arrive on the other modem; Ctrl-C stops.", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        network.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
