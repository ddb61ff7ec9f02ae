"""Exceptions: what went wrong, and whose fault it was.

Three families, so callers can tell them apart:

- ImageError: the driver file cannot be loaded (malformed, wrong machine,
  unresolved imports).  Nothing of the driver ran.
- DriverError: the driver ran and misbehaved: it returned a failure status
  (DriverStatusError) or faulted (DriverFault and its subclasses); after a
  fault its image is abandoned and refuses further calls (DriverFaulted).
- InternalError: a bug in ndisproxy itself.
"""


def printable(text):
    """``text`` with what is not printable escaped as Python escapes it:
    for words from elsewhere (a driver, a host, a file name) in a message
    or log line that must stay one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class NdisProxyError(Exception):
    """Base class of every ndisproxy error."""


class InternalError(NdisProxyError):
    """ndisproxy broke one of its own invariants; please report it."""


class ImageError(NdisProxyError):
    """A driver image could not be loaded; none of its code ran."""


class UnresolvedImportsError(ImageError):
    """The image imports functions ndisproxy does not provide.

    ``imports`` lists every one of them as ``"MODULE!Function"``.
    """

    def __init__(self, message, imports):
        super().__init__(message)
        self.imports = imports


class FrameError(NdisProxyError, ValueError):
    """A frame the host refuses to send (too short, too long)."""


class DriverError(NdisProxyError):
    """The driver misbehaved."""


class DriverStatusError(DriverError):
    """An entry point returned a failure NDIS_STATUS."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class DriverFaulted(DriverError):
    """The driver faulted earlier; its image must be loaded afresh."""


class DriverFault(DriverError):
    """A fault trapped inside driver code.

    Attributes: ``code`` (NTSTATUS), ``entry_point`` (e.g.
    ``"MiniportInitialize"``), ``where`` (``"image.sys+0xOFFSET"``),
    ``address`` (the faulting data address, if any), ``depth`` (bytes of
    private stack in use at the fault), ``irql`` and ``stack_size``.
    """

    def __init__(self, message, *, code, entry_point, where, address, depth,
                 irql, stack_size, image):
        super().__init__(message)
        self.code = code
        self.entry_point = entry_point
        self.where = where
        self.address = address
        self.depth = depth
        self.irql = irql
        self.stack_size = stack_size
        self.image = image


class StackOverflowFault(DriverFault):
    """The driver ran off the end of its private stack."""


class AccessViolationFault(DriverFault):
    """The driver touched memory it does not own."""


class DriverTimeoutFault(DriverFault):
    """The driver did not return before its entry point's deadline."""


class BugCheckFault(DriverFault):
    """The driver called KeBugCheckEx."""


class VerifierFault(DriverFault):
    """The verifier stopped the driver on a violation configured as fatal."""
