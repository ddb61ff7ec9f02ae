"""The control socket's client side (the CLI verbs use it).

Blocking and simple on purpose: one connection, one request line, one reply
line (``capture`` then streams frames).  Errors are ClientError with one
line.  The socket is ``--socket``, else ``NDISPROXY_SOCKET``, else the
daemon's default.
"""
import json
import os
import socket

from .config import DEFAULT_SOCKET
from .errors import NdisProxyError

TIMEOUT = 30


class ClientError(NdisProxyError):
    """The daemon could not be reached, or answered with an error."""

    def __init__(self, message, *, unreachable=False):
        super().__init__(message)
        self.unreachable = unreachable


def socket_path(explicit=None):
    return explicit or os.environ.get("NDISPROXY_SOCKET") or str(DEFAULT_SOCKET)


class Connection:
    def __init__(self, path=None, timeout=TIMEOUT):
        self.path = socket_path(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except OSError as exc:
            self.sock.close()
            raise ClientError(f"cannot reach the daemon at {self.path}: "
                              f"{exc.strerror or exc} (is `ndisproxy run` running? "
                              "--socket or NDISPROXY_SOCKET choose another)",
                              unreachable=True) from None
        self.file = self.sock.makefile("rb")

    def request(self, verb, **arguments):
        """Send one request; the reply dict (ClientError for an error reply)."""
        self.sock.sendall(json.dumps({"verb": verb, **arguments}).encode() + b"\n")
        reply = self.read()
        if not reply.get("ok"):
            raise ClientError(reply.get("error") or "error")
        return reply

    def read(self):
        line = self.file.readline()
        if not line:
            raise ClientError("the daemon closed the connection")
        return json.loads(line)

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
