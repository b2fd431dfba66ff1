"""What the web layer may use, handed over by the daemon (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.config import Config
from appliance.control import ControlPlane
from appliance.web.refusals import Refusals


@dataclass
class Services:
    config: Config
    journal: object                    # store.journal.Journal
    accounts: object                   # accounts.Accounts
    wake: Callable[[], None] = lambda: None          # dispatcher.work_arrived
    status: Callable[[], dict] = lambda: {}          # daemon-wide /status snapshot
    clock: Clock = SYSTEM_CLOCK
    control: ControlPlane = field(default_factory=ControlPlane)   # the daemon's parts (control.py)
    refusals: Refusals = field(default_factory=Refusals)   # bad input, logged once (refusals.py)
