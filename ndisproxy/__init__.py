"""ndisproxy: a user-space NDIS driver host for Linux.

Windows NDIS miniport drivers run here in user space, every entry point on
a guarded private stack, against an emulated NDIS library; a driver fault
costs a DriverFault exception (or, in the daemon, one host process), never
the kernel.

The in-process host core::

    from ndisproxy import DriverImage, drivers

    with DriverImage.load(drivers.testing_path("recurse")) as image:
        adapter = image.create_adapter(parameters={"RecurseKiB": 12})
        adapter.initialize()
        print(adapter.stack_report())
"""
import importlib

from .driver import Adapter, DriverImage, Event, OidResult, Violation
from .errors import (
    AccessViolationFault, BugCheckFault, DriverError, DriverFault, DriverFaulted,
    DriverStatusError, DriverTimeoutFault, FrameError, ImageError, InternalError, NdisProxyError,
    StackOverflowFault, UnresolvedImportsError, VerifierFault,
)

__version__ = "0.1.0"

# The trio API is imported when first named: a driver host (forked from a
# fork server that imports only what hosts run) never loads the daemon.
_API_NAMES = {
    "AdapterEvent": "AdapterEvent", "CableEnd": "CableEnd", "Host": "Host",
    "HostAdapter": "Adapter", "LoopbackWire": "LoopbackWire", "SocketWire": "SocketWire",
    "TapWire": "TapWire", "VxlanWire": "VxlanWire", "open_host": "open_host",
}


def __getattr__(name):
    if name not in _API_NAMES:
        raise AttributeError(f"module 'ndisproxy' has no attribute {name!r}")
    api = importlib.import_module(".api", __name__)
    value = globals()[name] = getattr(api, _API_NAMES[name])
    return value


def __dir__():
    return sorted(set(globals()) | set(_API_NAMES))

__all__ = [
    "AccessViolationFault", "Adapter", "BugCheckFault", "DriverError", "DriverFault",
    "DriverFaulted", "DriverImage", "DriverStatusError", "DriverTimeoutFault", "Event",
    "FrameError",
    "ImageError", "InternalError", "NdisProxyError", "OidResult", "StackOverflowFault",
    "UnresolvedImportsError", "VerifierFault", "Violation",
    # the trio API (ndisproxy.api)
    "AdapterEvent", "CableEnd", "Host", "HostAdapter", "LoopbackWire", "SocketWire", "TapWire",
    "VxlanWire", "open_host",
]
