"""Taking a listening socket before a server starts, so a port in use is one clear line.

``serve`` and ``sandbox`` bind here first and hand the socket to uvicorn. Left to uvicorn, a port
in use would be a page of log lines after the banner had already promised the address.
"""

from __future__ import annotations

import errno
import socket

from klingwatch.kling.errors import ConfigurationError

__all__ = ["PortUnavailable", "listening_socket"]


class PortUnavailable(ConfigurationError):
    """The address cannot be listened on: the port is taken, or the address is not this host's."""


def listening_socket(host: str, port: int, *, flag: str = "--port") -> socket.socket:
    """A TCP socket bound to ``host:port`` (``0``: any free port) and listening.

    Raises :class:`PortUnavailable` saying what to change.
    """
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
        )
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot listen on {host!r}: {exc.strerror}; check --host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a port left in TIME_WAIT by the last run can be taken again at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortUnavailable(
                f"port {port} on {host} is already in use (another klingwatch?); stop that "
                f"process or choose another port with {flag}"
            ) from None
        if exc.errno == errno.EACCES:
            raise PortUnavailable(
                f"no permission to listen on port {port} (ports below 1024 need root); choose "
                f"another with {flag}"
            ) from None
        raise PortUnavailable(
            f"cannot listen on {host}:{port}: {exc.strerror}; check --host and {flag}"
        ) from None
    sock.set_inheritable(True)
    return sock
