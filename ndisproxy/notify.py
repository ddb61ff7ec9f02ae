"""sd_notify(3) without libsystemd: datagrams to ``$NOTIFY_SOCKET``.

``Notifier()`` reads the environment once: a path socket ("/run/...") or an
abstract one ("@name").  Without ``NOTIFY_SOCKET`` every call is a no-op, so
the daemon runs the same with or without systemd.  ``watchdog_period()`` is
half of ``$WATCHDOG_USEC`` (when ``$WATCHDOG_PID`` is unset or ours), the
rate systemd asks for.
"""
import logging
import os
import socket
import time

log = logging.getLogger("ndisproxy")


class Notifier:
    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET")
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        self.watchdog_usec = 0
        pid = environ.get("WATCHDOG_PID")
        if environ.get("WATCHDOG_USEC") and (not pid or pid == str(os.getpid())):
            self.watchdog_usec = int(environ["WATCHDOG_USEC"])
        self._sock = None

    def send(self, **fields):
        """One notification: ``send(READY=1, STATUS="...")``."""
        if self.address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self.address)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self.address.lstrip("\0"), exc)

    def status(self, text):
        self.send(STATUS=text)

    def ready(self, status=None):
        fields = {"READY": 1}
        if status:
            fields["STATUS"] = status
        self.send(**fields)

    def reloading(self):
        """RELOADING=1 with the CLOCK_MONOTONIC stamp systemd 253+ wants."""
        self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self, status=None):
        fields = {"STOPPING": 1}
        if status:
            fields["STATUS"] = status
        self.send(**fields)

    def watchdog_period(self):
        """Seconds between WATCHDOG=1 pings, or None without a watchdog."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
