"""The HTTP listening sockets, bound before any server starts (whichever engine serves them).

Apart from web/server.py so that the default loop front does not import the threaded
engines' wsgiref and socketserver (about 1 MB of resident memory).
"""

from __future__ import annotations

import socket


def listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:      # which of http.port / extra_ports: the error alone said none
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port} ([http] port or "
                      f"extra_ports): {exc.strerror}") from None
    sock.listen(1024)
    return sock
