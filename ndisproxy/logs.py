"""Logging for a daemon that journald may be reading.

When stderr is the journal (``$JOURNAL_STREAM`` names its device and inode,
as systemd sets it), each line starts with a ``<N>`` syslog priority, which
journald strips and records; otherwise lines read ``LEVEL ndisproxy:
message``.  Every line about an adapter starts with its name.
"""
import logging
import os
import sys

_PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
               logging.CRITICAL: 2}


def stderr_is_journal(environ=None, stream=None):
    environ = os.environ if environ is None else environ
    stream = sys.stderr if stream is None else stream
    value = environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        status = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


class JournalFormatter(logging.Formatter):
    """``<N>message``: journald takes the priority from the prefix."""

    def format(self, record):
        priority = _PRIORITIES.get(record.levelno, 6)
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


def setup(level):
    handler = logging.StreamHandler(sys.stderr)
    if stderr_is_journal():
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
