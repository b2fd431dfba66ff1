"""At shutdown every channel is stopped at once (daemon.Channels.stop_all). A hung modem's
worker can take its whole stop timeout; stopped one after another, two hung demo modems
held SIGTERM for 20 s, and four would have outlasted systemd's TimeoutStopSec (45 s) and
been killed. The channels here only meet at a barrier: stopped in turn, the first waits
there alone and the barrier breaks."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from test_whole_messages import demo_appliance  # noqa: F401 (fixture)

from appliance.daemon import Channels


class HungChannel:
    def __init__(self, barrier: threading.Barrier):
        self.barrier = barrier
        self.stopped = False

    def stop(self, timeout: float = 10.0) -> None:
        self.barrier.wait()           # returns only when every channel is being stopped
        self.stopped = True


class Recorder:
    def __init__(self):
        self.channels = None

    def set_channels(self, channels):
        self.channels = channels

    wake = set_connections = set_aliases = lambda self, *a: None


def channels_with(running: dict) -> tuple[Channels, Recorder]:
    dispatcher = Recorder()
    daemon = SimpleNamespace(dispatcher=dispatcher, router=Recorder())
    channels = Channels(daemon)
    channels.configs = {name: SimpleNamespace(name=name) for name in running}
    channels.running = dict(running)
    return channels, dispatcher


def test_every_channel_is_stopped_at_once():
    barrier = threading.Barrier(3, timeout=5)
    hung = {f"GSMModem{i}": HungChannel(barrier) for i in range(3)}
    channels, dispatcher = channels_with(hung)
    channels.stop_all()
    assert not barrier.broken
    assert all(channel.stopped for channel in hung.values())
    assert channels.running == {} and dispatcher.channels == {}
    assert set(channels.configs) == set(hung)          # still known: a restart starts them


def test_a_channel_whose_stop_fails_does_not_keep_the_others_running(caplog):
    class Broken:
        def stop(self, timeout: float = 10.0):
            raise RuntimeError("port vanished")

    barrier = threading.Barrier(2, timeout=5)
    good = [HungChannel(barrier), HungChannel(barrier)]
    channels, _ = channels_with({"A": good[0], "B": Broken(), "C": good[1]})
    channels.stop_all()
    assert all(channel.stopped for channel in good) and channels.running == {}
    assert "channels: B failed to stop cleanly" in caplog.text


def test_a_modem_restarted_through_the_api_keeps_its_resets_of_the_hour(demo_appliance):
    """Found by a helper: stopdriver + startdriver made a new worker with an empty reset
    budget, so a held modem (cap reached) could be reset past max_resets_per_hour."""
    from wsgi_client import WsgiApi
    daemon, api, network = demo_appliance(1, modem_changes={"max_resets_per_hour": 4})
    worker = daemon.channels.running["GSMModem0"]
    for _ in range(4):
        worker.resets.record()                      # the hour's resets, used up
    assert worker.resets.exhausted()
    admin = WsgiApi(daemon.app)
    admin.action("stopdriver", name="GSMModem0")
    admin.action("startdriver", name="GSMModem0")
    again = daemon.channels.running["GSMModem0"]
    assert again is not worker and again.resets.recent() == 4 and again.resets.exhausted()
