"""The environment a bench starts the daemon in: its modules compiled as an install has them.

pip compiles every module of a wheel when it installs it (the SD image and the Ansible role
install wheels), and the service loads those .pyc files. A checkout installed in editable mode
has none, and a shell with PYTHONDONTWRITEBYTECODE (this machine's, CI's) never writes them,
so each daemon start would compile ~110 modules from source: more CPU at start and ~2 MiB
more resident memory from the compiler's garbage (measured: idle with four modems 35.1 MiB
from source, ~33 from .pyc). The benches measure the daemon as it runs on a board.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def daemon_env(src: str | Path = "", base: dict | None = None) -> dict:
    """os.environ (or `base`) for a daemon from `src` (this checkout by default), after
    compiling its package; Python reads the .pyc files like an installed release does."""
    package = Path(src or ROOT) / "appliance"
    compileall.compile_dir(str(package), quiet=1)
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
