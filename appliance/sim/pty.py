"""A pseudo-terminal whose slave side looks like a modem's tty, behind a stable link.

The link (like udev's /dev/sms-appliance/<slot>) survives an unplug: the pty is closed
and a new one appears under the same link name, exactly what re-enumeration looks like.
"""

from __future__ import annotations

import os
import select
import tty


class PtyEnd:
    """The master end the simulator reads commands from and writes answers to."""

    def __init__(self, link_path: str):
        self.link_path = link_path
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)      # no echo, no CR/LF translation on the modem's side
        tty.setraw(self.master)
        self.tty_path = os.ttyname(self._slave)
        _replace_link(self.tty_path, link_path)

    def read(self, timeout: float, wake_fd: int | None = None) -> bytes:
        """What the client wrote, waiting up to `timeout`; b"" at once when `wake_fd` (the
        simulator's wake pipe) becomes readable first."""
        watched = [self.master] if wake_fd is None else [self.master, wake_fd]
        ready, _, _ = select.select(watched, [], [], timeout)
        if self.master not in ready:
            return b""
        try:
            return os.read(self.master, 4096)
        except OSError:
            return b""

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        """All of `data`, or what fits before `timeout` (a client that stopped reading).
        os.write on a pty writes only what its buffer takes: never assume it took all."""
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [self.master], [], timeout)
            if not writable:
                return
            try:
                view = view[os.write(self.master, view):]
            except OSError:
                return

    def close(self) -> None:
        """Pull the cable: the link goes and the client's reads fail."""
        if os.path.islink(self.link_path) and os.readlink(self.link_path) == self.tty_path:
            os.unlink(self.link_path)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


def _replace_link(target: str, link_path: str) -> None:
    temporary = f"{link_path}.new"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link_path)
