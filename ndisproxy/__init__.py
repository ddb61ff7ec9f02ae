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
from .driver import Adapter, DriverImage, Event, OidResult, Violation
from .errors import (
    AccessViolationFault, BugCheckFault, DriverError, DriverFault, DriverFaulted,
    DriverStatusError, DriverTimeoutFault, FrameError, ImageError, InternalError, NdisProxyError,
    StackOverflowFault, UnresolvedImportsError, VerifierFault,
)

from .api import (
    Adapter as HostAdapter, AdapterEvent, CableEnd, Host, LoopbackWire, SocketWire, TapWire,
    VxlanWire, open_host,
)

__version__ = "0.1.0"

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
