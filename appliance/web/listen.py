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
    sock.bind((host, port))
    sock.listen(1024)
    return sock
