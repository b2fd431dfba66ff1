"""End to end through SMPP: Kannel (`smsc = smpp`) and the appliance against one SMSC.

`python bench/vs_kannel.py --e2e [--seconds 10] [--clients 8] [--window 10]` runs this.
The SMSC is smpp34's server (tests/fakes/smsc.py) in a process of its own, answering every
submit_sm at once (a hex id) and sending a delivery receipt for each one that asked, with
the same id (without waiting for one receipt's answer before the next, as an SMSC with a
window does); Kannel reads both ids as hex (`msg-id-type = 0x03`), so does the appliance
(`messageidbase = "hex"`). Each side binds
to it with window W (Kannel: bearerbox with an `smsc = smpp` transceiver group,
`max-pending-submits = W`, file store, smsbox for HTTP; the appliance: one SMPP connection,
`windowsize = W`), gets the same wrk keep-alive load (c clients, N seconds, a unique text
per request, delivery reports asked for), and then drains. Printed per side: messages
accepted, submit_sm/s at the SMSC during the load and to the last one, CPU per message
(the side's processes, from the start of the load until the last receipt is settled),
the SMSC process's CPU per message (on 2 cores it competes with the side: when it is near
a whole core, it sets the pace for both), lost messages (accepted minus the distinct texts
the SMSC got), receipts mapped (Kannel:
the DLRs smsbox delivered to its dlr-url; the appliance: parts `delivered` in the
journal), and the appliance/Kannel ratios. Nothing is asserted.
"""

from __future__ import annotations

import http.server
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRAIN_IDLE = 5.0         # the SMSC got nothing new for this long: the side has drained
DRAIN_LIMIT = 300.0


# --- the SMSC, in its own process -----------------------------------------------------------


def serve_peer() -> None:
    """The child: print the port, then answer each line on stdin with
    `received distinct receipts_answered last_submit_time binds`."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import asyncio

    from fakes.smsc import Smsc

    class Peer(Smsc):
        def __init__(self):
            super().__init__(receipts=True)
            self.count = 0
            self.texts: set[bytes] = set()
            self.last = 0.0
            self.answered = 0

        async def _on_submit(self, ev) -> None:
            self.count += 1
            self.last = time.time()
            self.texts.add(bytes(ev.short_message))
            self._counter += 1
            message_id = f"{self._counter + 0x9F:08X}"
            ev.accept(message_id=message_id)
            if ev.registered_delivery:
                task = asyncio.ensure_future(self._push(ev.session_id, ev, message_id))
                task.add_done_callback(lambda t: t.cancelled() or t.exception())

        async def _push(self, session, ev, message_id) -> None:
            text = (f"id:{message_id} sub:001 dlvrd:001 submit date:2401011200 "
                    f"done date:2401011201 stat:DELIVRD err:000 text:x").encode()
            await self._receiving(session).deliver_sm(ev.source_addr, text,
                                                      source_addr=ev.destination_addr,
                                                      esm_class=0x04)
            self.answered += 1

    peer = Peer().start()
    print(peer.smsc_port, flush=True)
    for _ in sys.stdin:
        print(peer.count, len(peer.texts), peer.answered, peer.last, len(peer.sessions),
              flush=True)
    peer.stop()


class PeerProcess:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--peer"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def counts(self) -> tuple[int, int, int, float, int]:
        """(submit_sm received, distinct texts, receipts answered, time of the last
        submit_sm, binds open)"""
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        received, distinct, answered, last, binds = self.proc.stdout.readline().split()
        return int(received), int(distinct), int(answered), float(last), int(binds)

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


# --- Kannel's DLRs ---------------------------------------------------------------------------


class DlrCounter:
    """smsbox calls dlr-url once per delivery report it could map to a message."""

    def __init__(self, free_port):
        self.count = 0
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                counter.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the two sides ---------------------------------------------------------------------------


def kannel_side(base, tmp: Path, peer_port: int, window: int, dlr_port: int):
    """vs_kannel's Kannel with its fake SMSC group replaced by `smsc = smpp`."""
    class KannelSmpp(base.Kannel):
        def __init__(self):
            super().__init__(tmp)
            self.url_prefix = self.url_prefix.replace(
                "&text=", f"&dlr-mask=1&dlr-url=http%3A%2F%2F127.0.0.1%3A{dlr_port}"
                          "%2Fdlr%3Fs%3D%25d&text=")

        def config(self) -> Path:
            path = super().config()
            text = path.read_text()
            fake = text[text.index("group = smsc"):text.index("group = smsbox")]
            path.write_text(text.replace(fake, f"""group = smsc
smsc = smpp
smsc-id = SMPP0
host = 127.0.0.1
port = {peer_port}
transceiver-mode = true
smsc-username = bench
smsc-password = bench
system-type = ""
max-pending-submits = {window}
msg-id-type = 0x03
enquire-link-interval = 30

"""))
            return path

        def start(self) -> None:
            conf = str(self.config())
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            self.procs.append(subprocess.Popen([base.KANNEL_BIN / "bearerbox", conf], **quiet))
            base.wait_port(self.box_port, self.procs[0])
            self.procs.append(subprocess.Popen([base.KANNEL_BIN / "smsbox", conf], **quiet))
            base.wait_port(self.http_port, self.procs[1])

        def delivered(self, dlrs: DlrCounter) -> int:
            return dlrs.count
    return KannelSmpp()


def appliance_side(base, tmp: Path, peer_port: int, window: int):
    class ApplianceSmpp(base.Appliance):
        def __init__(self):
            super().__init__(tmp, "smpp", modems=(
                '[connections.SMPP0]\ntype = "SMPP"\nhost = "127.0.0.1"\n'
                f'port = {peer_port}\nusername = "bench"\npassword = "bench"\n'
                f'windowsize = {window}\ndeliveryreport = true\nmode = "transceiver"\n'
                'messageidbase = "hex"\n'))

        def delivered(self, dlrs) -> int:
            conn = sqlite3.connect(f"file:{self.state}/journal.sqlite3?mode=ro", uri=True)
            try:
                return conn.execute("SELECT count(*) FROM parts WHERE state='delivered'"
                                    ).fetchone()[0]
            finally:
                conn.close()
    return ApplianceSmpp()


# --- one run ---------------------------------------------------------------------------------


def run_side(base, side, peer: PeerProcess, dlrs, clients: int, seconds: float,
             tmp: Path) -> dict:
    side.start()
    try:
        deadline = time.monotonic() + 30
        while peer.counts()[4] < 1 and time.monotonic() < deadline:    # bound
            time.sleep(0.1)
        received0 = peer.counts()[0]
        pids = side.pids()
        cpu0, t0 = base.cpu_seconds(pids), time.time()
        peer_cpu0 = base.cpu_seconds([peer.proc.pid])
        result = base.wrk(side.url_prefix, clients, seconds, tmp)
        load_end = time.time()
        during = peer.counts()[0] - received0
        accepted = side.accepted(result)
        last_change, seen = time.monotonic(), -1
        while time.monotonic() - last_change < DRAIN_IDLE and \
                time.monotonic() - t0 < DRAIN_LIMIT:
            time.sleep(0.2)
            received, distinct, answered, last, _ = peer.counts()
            mapped = side.delivered(dlrs)
            if received - received0 >= accepted and mapped >= accepted:
                break
            if (received, answered, mapped) != seen:
                seen, last_change = (received, answered, mapped), time.monotonic()
        cpu = base.cpu_seconds(pids) - cpu0
        peer_cpu = base.cpu_seconds([peer.proc.pid]) - peer_cpu0
        received, distinct, answered, last, _ = peer.counts()
        sent = received - received0
        return {"accepted": accepted, "during": during / (load_end - t0),
                "to_last": sent / max(last - t0, 1e-3), "sent": sent,
                "lost": max(0, accepted - distinct), "twice": received - distinct,
                "cpu_us": 1e6 * cpu / max(sent, 1), "peer_us": 1e6 * peer_cpu / max(sent, 1),
                "mapped": side.delivered(dlrs),
                "non2xx": result["non2xx"]}
    finally:
        side.stop()


def main(base, args, tmp: Path) -> int:
    window, clients, seconds = args.window, args.e2e_clients, args.seconds
    print(f"SMPP end to end: wrk c={clients} for {seconds:g}s, window {window},"
          " one smpp34 SMSC with receipts, Kannel then the appliance")
    rows = {}
    for name in ("kannel", "appliance"):
        peer = PeerProcess()
        dlrs = DlrCounter(base.free_port)
        try:
            side = kannel_side(base, tmp, peer.port, window, dlrs.port) if name == "kannel" \
                else appliance_side(base, tmp, peer.port, window)
            r = rows[name] = run_side(base, side, peer, dlrs, clients, seconds, tmp)
        finally:
            dlrs.stop()
            peer.stop()
        print(f"{name:>9}: {r['accepted']} accepted ({r['non2xx']} refused);"
              f" {r['during']:.0f} submit_sm/s during the load, {r['to_last']:.0f} to the last"
              f" one; CPU {r['cpu_us']:.0f} µs/message (the SMSC's {r['peer_us']:.0f});"
              f" lost {r['lost']}, sent twice"
              f" {r['twice']}; receipts mapped {r['mapped']} of {r['sent']}", flush=True)
    k, a = rows["kannel"], rows["appliance"]
    print(f"ratio appliance/Kannel: during the load {a['during'] / max(k['during'], 1):.2f}x,"
          f" to the last one {a['to_last'] / max(k['to_last'], 1):.2f}x,"
          f" CPU/msg {a['cpu_us'] / max(k['cpu_us'], 1e-9):.2f}x")
    return 0


if __name__ == "__main__" and sys.argv[1:] == ["--peer"]:
    serve_peer()
