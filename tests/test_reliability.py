"""The reliability suite (`make test-reliability`, run by .ci/run; not in the default run).
Each test prints its figures. Real processes, a real SQLite file, the smpp34 SMSC on
127.0.0.1, the pty modem simulator; power loss through tests/reliability/powercut.c.

- kill -9 under load: N kills of the daemon while clients send; accepted, lost (0),
  duplicates at the SMSC, refused connections, time to first answer after each restart.
- power loss: only fsync'ed data survives each cut; every message answered with success is
  there afterwards and the database is consistent.
- soak: modems with random faults and SMPP link drops under steady load; every message ends
  delivered or in notsent with a reason; RSS growth per hour.
- full disk: accepts refused with the dialect's error, nothing accepted lost, recovery when
  space returns.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fakes.smsc import Smsc
from test_modem_kit import mock_factory  # noqa: F401  (fixture)
from reliability.kit import (Clients, DaemonProcess, build_shim, copy_state, free_port,
                             integrity, journal_rows, robust_smsc, send_one, wait_answering,
                             write_config)

pytestmark = pytest.mark.reliability

KILLS = int(os.environ.get("RELIABILITY_KILLS", "8"))
CUTS = int(os.environ.get("RELIABILITY_CUTS", "4"))
CLIENTS = int(os.environ.get("RELIABILITY_CLIENTS", "6"))
SEED = int(os.environ.get("RELIABILITY_SEED", "17"))
SOAK_SEED = int(os.environ.get("RELIABILITY_SOAK_SEED", str(SEED)))
ACTIVE = ("scheduled", "queued", "sending")


def _figures(name: str, **values) -> None:
    print(f"\n[reliability] {name}: " + ", ".join(f"{k} {v}" for k, v in values.items()),
          flush=True)


def _smsc_counts(smsc: Smsc) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in smsc.received:
        text = record.short_message.decode("latin-1")
        counts[text] = counts.get(text, 0) + 1
    return counts


def _wait_settled(state_dir: Path, timeout: float = 240) -> int:
    """Wait until no message is waiting or sending; returns how many still are."""
    deadline = time.monotonic() + timeout
    left = -1
    while time.monotonic() < deadline:
        left = journal_rows(state_dir, "SELECT count(*) FROM messages WHERE direction='out'"
                            f" AND state IN {ACTIVE}")[0][0]
        if left == 0:
            return 0
        time.sleep(0.5)
    return left


def test_kill_9_under_load_loses_nothing(tmp_path):
    rng = random.Random(SEED)
    smsc = robust_smsc(receipts=True)
    state = tmp_path / "state"
    port = free_port()
    daemon = DaemonProcess(write_config(tmp_path / "config.toml", state, port, smsc.port),
                           tmp_path / "daemon.log")
    clients = None
    first_answers: list[float] = []
    try:
        daemon.start()
        assert wait_answering(port), (tmp_path / "daemon.log").read_text()[-2000:]
        clients = Clients(port, CLIENTS, prefix="kill").start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.5, 3.5))
            daemon.kill9()
            before = len(clients.tally.successes)
            restarted = daemon.start()
            deadline = time.monotonic() + 60
            while len(clients.tally.successes) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            after = [t for t in clients.tally.successes[before:]]
            assert after, "no answer within 60 s of a restart"
            first_answers.append(min(after) - restarted)
        time.sleep(1)
        tally = clients.stop()
        clients = None
        left = _wait_settled(state)
        stored = dict(journal_rows(state, "SELECT id, body FROM messages WHERE direction='out'"))
        lost = [text for text, mid in tally.accepted.items() if stored.get(mid) != text]
        counts = _smsc_counts(smsc)
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        unaccepted_sent = sum(1 for text in counts if text not in tally.accepted)
        _figures("kill -9", kills=KILLS, clients=CLIENTS, accepted=len(tally.accepted),
                 lost=len(lost), duplicates=duplicates,
                 refused_connections=tally.refused_connections,
                 other_errors=len(tally.errors),
                 first_answer_s=f"min {min(first_answers):.2f} / max {max(first_answers):.2f}"
                 f" / mean {sum(first_answers) / len(first_answers):.2f}",
                 still_waiting=left, sent_but_unanswered=unaccepted_sent)
        assert lost == []
        assert left == 0
        assert all(text in counts for text in tally.accepted)        # every one went out
        assert integrity(state) == "ok"
        assert daemon.stop() == 0
    finally:
        if clients:
            clients.stop()
        daemon.kill9()
        smsc.stop()


def _consistency_problems(state_dir: Path) -> list[str]:
    """Each message's state is what its parts add up to; every part and event has its message."""
    from appliance.store.message_state import aggregate
    problems = []
    parts: dict[str, list[str]] = {}
    for message_id, state in journal_rows(state_dir, "SELECT message_id, state FROM parts"):
        parts.setdefault(message_id, []).append(state)
    for message_id, state, total in journal_rows(
            state_dir, "SELECT id, state, parts_total FROM messages WHERE direction='out'"):
        states = parts.pop(message_id, [])
        if len(states) != total:
            problems.append(f"{message_id}: {len(states)} parts of {total}")
        elif aggregate(states).value != state:
            problems.append(f"{message_id}: state {state} but parts {states}")
    problems += [f"parts without a message: {m}" for m in parts]
    orphans = journal_rows(state_dir, "SELECT count(*) FROM events WHERE message_id NOT IN"
                           " (SELECT id FROM messages)")[0][0]
    if orphans:
        problems.append(f"{orphans} events without a message")
    return problems


def test_power_loss_keeps_every_answered_message(tmp_path):
    """Each round runs the daemon under the power-cut shim, cuts the power (kill -9) at a
    random moment, and the next round starts on what the shim kept: only fsync'ed data."""
    rng = random.Random(SEED + 1)
    shim = build_shim(tmp_path)
    smsc = robust_smsc(receipts=True)
    port = free_port()
    disk = tmp_path / "disk0"
    disk.mkdir()
    accepted: dict[str, str] = {}
    dropped_bytes, live_counts = [], []
    daemon = clients = None
    try:
        for cut in range(CUTS):
            live, survived = (tmp_path / f"live{cut}").resolve(), (tmp_path / f"disk{cut + 1}")
            copy_state(disk, live)
            copy_state(disk, survived)
            daemon = DaemonProcess(
                write_config(tmp_path / f"config{cut}.toml", live, port, smsc.port),
                tmp_path / "daemon.log",
                env={"LD_PRELOAD": str(shim), "POWERCUT_WATCH": str(live),
                     "POWERCUT_SHADOW": str(survived.resolve())})
            daemon.start()
            assert wait_answering(port), (tmp_path / "daemon.log").read_text()[-2000:]
            clients = Clients(port, CLIENTS, prefix=f"cut{cut}").start()
            time.sleep(rng.uniform(2.0, 5.0))
            daemon.kill9()                                  # the power goes
            live_counts.append(journal_rows(live, "SELECT count(*) FROM messages")[0][0])
            accepted.update(clients.stop().accepted)
            clients = None
            dropped_bytes.append(_differing_bytes(live, survived))
            disk = survived
            assert integrity(disk) == "ok"
            stored = dict(journal_rows(disk, "SELECT id, body FROM messages"))
            lost = [t for t, mid in accepted.items() if stored.get(mid) != t]
            assert lost == [], f"cut {cut}: {len(lost)} answered messages lost: {lost[:5]}"

        final = (tmp_path / "final").resolve()
        copy_state(disk, final)
        daemon = DaemonProcess(write_config(tmp_path / "final.toml", final, port, smsc.port),
                               tmp_path / "daemon.log")
        started = daemon.start()
        assert wait_answering(port)
        outcome, _ = send_one(port, "after the last cut")
        first_answer = time.monotonic() - started
        left = _wait_settled(final)
        assert daemon.stop() == 0
        stored = dict(journal_rows(final, "SELECT id, body FROM messages"))
        lost = [t for t, mid in accepted.items() if stored.get(mid) != t]
        problems = _consistency_problems(final)
        counts = _smsc_counts(smsc)
        _figures("power loss", cuts=CUTS, accepted=len(accepted), lost=len(lost),
                 unsynced_bytes_lost_per_cut=dropped_bytes,
                 live_messages_at_cuts=live_counts,
                 duplicates=sum(n - 1 for n in counts.values() if n > 1),
                 first_answer_s=f"{first_answer:.2f}", still_waiting=left,
                 integrity=integrity(final), inconsistencies=len(problems))
        assert outcome == "ok" and lost == [] and left == 0
        assert problems == [] and integrity(final) == "ok"
    finally:
        if clients:
            clients.stop()
        if daemon:
            daemon.kill9()
        smsc.stop()


def _differing_bytes(live: Path, survived: Path) -> int:
    """Bytes the page cache had that the disk did not (the -shm index is not counted)."""
    total = 0
    for path in live.iterdir():
        if not path.is_file() or path.name.endswith("-shm"):
            continue
        a = path.read_bytes()
        other = survived / path.name
        b = other.read_bytes() if other.exists() else b""
        total += abs(len(a) - len(b)) + sum(x != y for x, y in zip(a, b))
    return total


def test_the_power_cut_shim_drops_what_was_not_fsynced(tmp_path):
    """The shim can fail a test: SQLite with synchronous=OFF loses committed rows in a cut,
    with synchronous=FULL (the journal's setting) it keeps every one."""
    shim = build_shim(tmp_path)
    script = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1] + '/db.sqlite3', isolation_level=None)\n"
        "c.execute('PRAGMA journal_mode=WAL')\n"
        "c.execute('PRAGMA synchronous=' + sys.argv[2])\n"
        "c.execute('CREATE TABLE t(x)')\n"
        "[c.execute('INSERT INTO t VALUES (?)', (i,)) for i in range(300)]\n"
        "os.kill(os.getpid(), 9)\n")
    survived = {}
    for mode in ("OFF", "FULL"):
        live, disk = (tmp_path / f"live-{mode}").resolve(), (tmp_path / f"disk-{mode}").resolve()
        live.mkdir()
        disk.mkdir()
        subprocess.run(["python3", "-c", script, str(live), mode], check=False,
                       env={**os.environ, "LD_PRELOAD": str(shim), "POWERCUT_WATCH": str(live),
                            "POWERCUT_SHADOW": str(disk)})
        try:
            survived[mode] = journal_rows_file(disk / "db.sqlite3", "SELECT count(*) FROM t")
        except Exception:
            survived[mode] = 0
    _figures("power-cut shim", rows_committed=300, kept_sync_off=survived["OFF"],
             kept_sync_full=survived["FULL"])
    assert survived["FULL"] == 300 and survived["OFF"] < 300


def journal_rows_file(path: Path, sql: str) -> int:
    import sqlite3
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


class SmallDisk:
    """A small filesystem for the state: a real tmpfs when this process may mount (root),
    else the shim's injected ENOSPC (writes that would grow a file fail) while a flag exists."""

    def __init__(self, tmp_path: Path, size_kib: int):
        self.path = (tmp_path / "small-disk").resolve()
        self.path.mkdir()
        self.flag = tmp_path / "disk-full.flag"
        self.size_kib = size_kib
        self.env: dict = {}
        self.kind = "tmpfs"
        if os.environ.get("RELIABILITY_DISK") == "shim" or subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(self.path)],
                capture_output=True).returncode != 0:
            self.kind = "shim ENOSPC"
            self.env = {"LD_PRELOAD": str(build_shim(tmp_path)),
                        "POWERCUT_WATCH": str(self.path),
                        "POWERCUT_SHADOW": str((tmp_path / "unused-shadow").resolve()),
                        "POWERCUT_FULL": str(self.flag)}
            (tmp_path / "unused-shadow").mkdir()

    def fill(self) -> None:
        """tmpfs: the size limit does it as the journal grows; shim: from now on."""
        if self.kind != "tmpfs":
            self.flag.write_text("full")

    def free(self) -> None:
        if self.kind == "tmpfs":
            subprocess.run(["mount", "-o", "remount,size=256m", str(self.path)], check=True)
        else:
            self.flag.unlink()

    def close(self) -> None:
        if self.kind == "tmpfs":
            subprocess.run(["umount", "-l", str(self.path)], check=False)


def test_full_disk_refuses_with_the_dialects_error_and_recovers(tmp_path):
    disk = SmallDisk(tmp_path, size_kib=1536)
    port = free_port()
    daemon = DaemonProcess(write_config(tmp_path / "config.toml", disk.path, port),
                           tmp_path / "daemon.log", env=disk.env)
    clients = None
    try:
        daemon.start()
        assert wait_answering(port), (tmp_path / "daemon.log").read_text()[-2000:]
        assert send_one(port, "before the disk filled")[0] == "ok"
        disk.fill()
        clients = Clients(port, 4, prefix="full").start()
        deadline = time.monotonic() + 120
        while len(clients.tally.errors) < 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        full_errors = list(clients.tally.errors)
        accepted_while_full = len(clients.tally.accepted)
        assert daemon.alive(), (tmp_path / "daemon.log").read_text()[-3000:]
        assert len(full_errors) >= 50, "the disk never filled"
        # the documents (users, contacts, drivers) live in another file: its writes were
        # a 500 with a traceback on a full disk
        admin_while_full = {q["action"]: _admin_call(port, **q) for q in ADMIN_WRITES}
        disk.free()
        recovered_at = time.monotonic()
        before = len(clients.tally.successes)
        while len(clients.tally.successes) < before + 50 and time.monotonic() < deadline + 60:
            time.sleep(0.05)
        recovery = time.monotonic() - recovered_at
        created_after = _admin_call(port, **ADMIN_WRITES[0])
        tally = clients.stop()
        clients = None
        assert daemon.stop() == 0
        stored = dict(journal_rows(disk.path, "SELECT id, body FROM messages"))
        lost = [t for t, mid in tally.accepted.items() if stored.get(mid) != t]
        kinds = sorted({_error_kind(e) for e in full_errors})
        _figures("full disk", filesystem=disk.kind, accepted=len(tally.accepted),
                 accepted_while_filling=accepted_while_full, refused=len(full_errors),
                 refusal_kinds=kinds, lost=len(lost),
                 recovery_s=f"{recovery:.2f}", integrity=integrity(disk.path))
        assert len(tally.successes) >= before + 50             # accepting again
        assert lost == [] and integrity(disk.path) == "ok"
        assert all(k.startswith("ozeki errorcode") for k in kinds), full_errors[:3]
        assert {a: (status, _error_kind(body)[:26]) for a, (status, body) in
                admin_while_full.items()} == {a["action"]: (200, "ozeki errorcode 8: The mes")
                                              for a in ADMIN_WRITES}, admin_while_full
        assert "<action>createuser</action>" in created_after[1], created_after
    finally:
        if clients:
            clients.stop()
        daemon.kill9()
        disk.close()


ADMIN_WRITES = [
    {"action": "createuser", "name": "fulluser", "userpassword": "full-user-pass-1"},
    {"action": "addcontact", "contactname": "oncall", "phonenumber": "+36201234567"},
    {"action": "createdriver", "name": "Web0", "type": "HTTPClient",
     "targeturl": "http://127.0.0.1:9/send?to=$recipient"},
]


def _admin_call(port: int, **params) -> tuple[int, str]:
    import urllib.error
    import urllib.parse
    import urllib.request
    from reliability.kit import PASSWORD
    query = urllib.parse.urlencode({"username": "admin", "password": PASSWORD, **params})
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api?{query}", timeout=30) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _error_kind(answer: str) -> str:
    import re
    code = re.search(r"<errorcode>(\d+)</errorcode>", answer)
    message = re.search(r"<errormessage>([^<]*)</errormessage>", answer)
    if code:
        return f"ozeki errorcode {code.group(1)}: {message.group(1) if message else ''}"[:80]
    return answer[:80]


SOAK_SECONDS = float(os.environ.get("RELIABILITY_SOAK_SECONDS", "120"))
SIM_FAULTS = ("hang", "cms500", "deregister", "unplug", "garbage", "slow", "simbusy")
FINAL = ("delivered", "undelivered", "expired", "failed")


@pytest.mark.timeout(SOAK_SECONDS + 360)
def test_soak_with_modem_faults_and_smpp_drops(tmp_path, mock_factory):
    """Two simulated modems with every simulator fault at random, an SMPP uplink whose link
    is cut or refused at random, steady load; the report timeout is short so that a report
    lost in a fault settles too. Every message must end delivered or in notsent with a reason."""
    import dataclasses

    from appliance.compose import Submission, prepare
    from appliance.config import SMPPConfig
    from appliance.dispatch import Dispatcher
    from appliance.modem.power import PowerControl
    from appliance.modem.worker import ModemWorker
    from appliance.routing import Router
    from appliance.sim.network import SimNetwork
    from appliance.store.journal import Journal
    from appliance.uplink.smpp import SmppChannel
    from reliability.kit import rss_kib
    from test_modem_kit import FAST, modem_config, wait_until

    rng = random.Random(SOAK_SEED + 2)
    journal = Journal.open(tmp_path / "state")
    journal.report_timeouts = {"GSMModem0": 30, "GSMModem1": 30, "SMPP0": 30}
    network = SimNetwork(send_seconds=0.2, report_seconds=0.5, record=False)   # RSS: no history
    timings = dataclasses.replace(FAST, cfun=2.0, reopen=5.0, registration=5.0,
                                  failed_retry=10.0, sweep=20.0)
    smsc = robust_smsc(receipts=True)
    channels, sims = {}, []
    for index, pin in enumerate((17, 27)):
        sim = network.add_modem(f"slot{index + 1}", f"+3620{index + 1:07d}", power_pin=pin,
                                pin_factory=mock_factory)
        config = modem_config(sim, f"GSMModem{index}", power_pin=pin, keepaliveperiod=1.0,
                              deregistered_timeout=3.0, max_failures=2, boot_seconds=0.5,
                              # hours of faults in two minutes: the hourly reset cap would
                              # hold a modem (with SMS on its SIM) past the end of the test
                              max_resets_per_hour=0)
        channels[config.name] = ModemWorker(
            config, journal, power=PowerControl.from_config(config, pin_factory=mock_factory),
            timings=timings, on_alert=lambda slot, text: None)
        sim.slow_seconds = 0.3
        sims.append(sim)
    channels["SMPP0"] = SmppChannel(SMPPConfig(name="SMPP0", host="127.0.0.1", port=smsc.port,
                                               username="soak", password="soak",
                                               reconnectdelay=0.5, reconnectmaxdelay=4.0,
                                               # how the test SMSC writes ids ("auto" cannot
                                               # tell hex 00000100 from decimal)
                                               messageidbase="hex-decimal"),
                                    journal)
    dispatcher = Dispatcher(journal, channels, Router((), list(channels)), idle_seconds=0.05)
    for channel in channels.values():
        channel.set_wake(dispatcher.wake)
        channel.start()
    dispatcher.start()
    accepted, inbound_sent, faults, cuts = [], 0, 0, 0
    rss = []
    try:
        started = time.monotonic()
        next_fault, next_cut = started + 3, started + 5
        clear_at: dict[int, float] = {}
        while time.monotonic() - started < SOAK_SECONDS:
            accepted += _accept_one(journal, rng)
            now = time.monotonic()
            if rng.random() < 0.05:
                target = rng.choice(sims)
                target.deliver_inbound("+36705550000", f"inbound {inbound_sent}")
                logging.getLogger("reliability").info("inbound %d to %s", inbound_sent,
                                                      target.slot)
                inbound_sent += 1
            if now >= next_fault:
                victim = rng.randrange(len(sims))
                sims[victim].inject_fault(rng.choice(SIM_FAULTS))
                faults += 1
                clear_at[victim] = now + rng.uniform(2, 8)
                next_fault = now + rng.uniform(3, 8)
            for victim, when in list(clear_at.items()):
                if now >= when and "hang" not in sims[victim].faults:
                    sims[victim].inject_fault("none")
                    del clear_at[victim]
            if now >= next_cut:
                smsc.proxy.down = rng.random() < 0.3       # sometimes refused for a while
                smsc.proxy.cut()
                cuts += 1
                next_cut = now + rng.uniform(4, 10)
            elif smsc.proxy.down and now >= next_cut - 2:
                smsc.proxy.down = False
            if not rss and now - started > SOAK_SECONDS * 0.2:
                rss.append((now, rss_kib()))               # after warm-up
            time.sleep(0.1)
        rss.append((time.monotonic(), rss_kib()))
        smsc.proxy.down = False
        for sim in sims:
            sim.inject_fault("none")

        def settled():
            states = [journal.get_message(mid)["state"] for mid in accepted]
            return all(state in FINAL for state in states) and \
                len(journal.folder(None, "inbox", limit=100_000)) >= inbound_sent
        lost = [mid for mid in accepted if journal.get_message(mid) is None]
        assert lost == []
        try:
            wait_until(settled, timeout=240, interval=1.0, what="every message final")
        except AssertionError:
            left = [(journal.get_message(m)["state"], journal.get_message(m)["connection"],
                     [(p["state"], p["connection"], p["reason"]) for p in journal.get_parts(m)])
                    for m in accepted if journal.get_message(m)["state"] not in FINAL]
            inbox = [m["messagedata"] if "messagedata" in m else m.get("body")
                     for m in journal.folder(None, "inbox", limit=100_000)]
            raise AssertionError(f"not settled: {len(left)} left, e.g. {left[:5]};"
                                 f" inbox {len(inbox)} of {inbound_sent}: {sorted(inbox)};"
                                 f" SIM memories {[dict(s.memory) for s in sims]};"
                                 f" faults {[s.faults for s in sims]};"
                                 f" channels {[c.status() for c in channels.values()]}") from None
        summary: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for mid in accepted:
            message = journal.get_message(mid)
            summary[message["state"]] = summary.get(message["state"], 0) + 1
            if message["state"] != "delivered":
                key = f'{message["connection"]}: {(message["reason"] or "(none)")[:60]}'
                reasons[key] = reasons.get(key, 0) + 1
        without_reason = [mid for mid in accepted
                          if journal.get_message(mid)["state"] != "delivered"
                          and not journal.get_message(mid)["reason"]]
        (t0, r0), (t1, r1) = rss[0], rss[-1]
        counts = _smsc_counts(smsc)
        _figures("soak", seconds=SOAK_SECONDS, accepted=len(accepted), lost=len(lost),
                 states=summary, inbound=inbound_sent, modem_faults=faults, smpp_drops=cuts,
                 smsc_duplicates=sum(n - 1 for n in counts.values() if n > 1),
                 top_reasons=sorted(reasons.items(), key=lambda kv: -kv[1])[:4],
                 rss_kib=f"{r0} -> {r1}",
                 rss_growth_per_hour_kib=round((r1 - r0) / max(t1 - t0, 1) * 3600))
        assert without_reason == []
        assert len(journal.folder(None, "inbox", limit=100_000)) == inbound_sent
        assert summary.get("delivered", 0) > len(accepted) // 2
    finally:
        dispatcher.stop(5)
        for channel in channels.values():
            channel.stop(5)
        network.close()
        smsc.stop()
        journal.close()


def _accept_one(journal, rng) -> list[str]:
    from appliance.compose import Submission, prepare
    text = f"soak {rng.random():.12f} " * rng.choice((1, 1, 1, 12))     # some 2-part messages
    valid = time.time() + rng.choice((600, 600, 600, 15))     # some expire during outages
    message = prepare(Submission(user="admin", recipient=rng.choice(
        ("+36701234567", "+36209876543")), text=text, valid_until=valid))
    result = journal.accept([message])[0]
    return [result] if isinstance(result, str) else []
