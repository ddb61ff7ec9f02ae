"""The one module that talks to the compiled runtime (ndisproxy._native).

It turns C status codes into exceptions and C structs into Python values, so
nothing else in the package handles a raw pointer.  Importing it checks that
the compiled module matches this package.
"""
from . import errors
from ._native import ffi, lib

API_VERSION = 3

if lib.np_api_version() != API_VERSION:  # pragma: no cover - a broken install
    raise ImportError(
        f"ndisproxy._native speaks API {lib.np_api_version()}, this package "
        f"expects {API_VERSION}: reinstall ndisproxy")

ENTRY_POINTS = (
    "DriverEntry",
    "MiniportInitialize",
    "MiniportHalt",
    "MiniportQueryInformation",
    "MiniportSetInformation",
    "MiniportSendPackets",
    "MiniportISR",
    "MiniportHandleInterrupt",
    "MiniportDisableInterrupt",
    "MiniportEnableInterrupt",
    "MiniportReset",
    "MiniportCheckForHang",
    "MiniportReturnPacket",
    "MiniportTimer",
    "MiniportShutdown",
)

VIOLATIONS = (
    "irql",
    "double-complete",
    "indicate-held",
    "free-unreturned",
    "lock-not-held",
    "pool-leak",
    "bad-dma",
    "bad-free",
    "bad-call",
)

IRQL_NAMES = {0: "PASSIVE_LEVEL", 1: "APC_LEVEL", 2: "DISPATCH_LEVEL"}

STATUS_STACK_OVERFLOW = 0xC00000FD
STATUS_ACCESS_VIOLATION = 0xC0000005
STATUS_IO_TIMEOUT = 0xC00000B5
STATUS_IN_PAGE_ERROR = 0xC0000006
STATUS_ILLEGAL_INSTRUCTION = 0xC000001D
STATUS_INTEGER_DIVIDE_BY_ZERO = 0xC0000094

_FAULT_TYPES = {
    STATUS_STACK_OVERFLOW: (errors.StackOverflowFault, "stack overflow"),
    STATUS_ACCESS_VIOLATION: (errors.AccessViolationFault, "access violation"),
    STATUS_IO_TIMEOUT: (errors.DriverTimeoutFault, "deadline missed (hang)"),
    STATUS_IN_PAGE_ERROR: (errors.AccessViolationFault, "bus error"),
    STATUS_ILLEGAL_INSTRUCTION: (errors.DriverFault, "illegal instruction"),
    STATUS_INTEGER_DIVIDE_BY_ZERO: (errors.DriverFault, "integer divide by zero"),
    lib.NP_FAULT_BUGCHECK: (errors.BugCheckFault, "bug check"),
    lib.NP_FAULT_VERIFIER: (errors.VerifierFault, "fatal verifier violation"),
}


# Bug checks a driver's own code raises for /GS, with what they mean here.
BUG_CHECK_NAMES = {
    0xF7: "DRIVER_OVERRAN_STACK_BUFFER: a /GS stack cookie was overwritten",
    0x139: "KERNEL_SECURITY_CHECK_FAILURE",
}
# __fastfail codes (the first parameter of bug check 0x139).
FAST_FAIL_NAMES = {
    2: "FAST_FAIL_STACK_COOKIE_CHECK_FAILURE: a /GS stack cookie was overwritten",
    6: "FAST_FAIL_GS_COOKIE_INIT: the /GS security cookie was not set by the loader",
}


def _bug_check_text(report, fast_fail):
    code, *params = list(report.bugcheck)
    if fast_fail:
        what = FAST_FAIL_NAMES.get(params[0], "")
        return (f"__fastfail({params[0]}){': ' + what if what else ''} "
                f"(bug check 0x{code:X} KERNEL_SECURITY_CHECK_FAILURE)")
    name = BUG_CHECK_NAMES.get(code)
    return (f"KeBugCheckEx(0x{code:X}, " + ", ".join(f"0x{v:X}" for v in params) + ")"
            + (f" {name}" if name else ""))


def _instruction_text(report):
    """``(instruction 0f 20 d8: mov rax, cr3: ...)`` for a fault in driver code,
    or ``(code c7 00 ...)`` when the instruction was not decoded."""
    if not report.insn_len:
        return ""
    raw = " ".join(f"{b:02x}" for b in bytes(report.insn[0:report.insn_len]))
    text = ffi.string(report.insn_text).decode("utf-8", "replace")
    if not report.insn_decoded:
        return f"(code {raw}{': ' + text if text else ''})"
    return f"(instruction {raw}{': ' + text if text else ''})"


def irql_name(irql):
    return IRQL_NAMES.get(irql, "DIRQL" if irql >= 3 else str(irql))


def status_name(status):
    """``NDIS_STATUS_FAILURE`` for -1073741823, or the hex value."""
    status &= 0xFFFFFFFF
    for prefix in ("NDIS_STATUS_", "STATUS_"):
        for name in _STATUS_NAMES.get(prefix, ()):
            if getattr(lib, name) & 0xFFFFFFFF == status:
                return name
    return f"0x{status:08X}"


_STATUS_NAMES = {
    prefix: sorted(n for n in dir(lib) if n.startswith(prefix))
    for prefix in ("NDIS_STATUS_", "STATUS_")
}


def error_text(buf):
    return ffi.string(buf).decode("utf-8", "replace")


def raise_fault(code, report, image_name, stack_size, violation=None):
    """Raise the DriverFault subclass for a fault the runtime trapped."""
    if code == lib.NP_REFUSED_FAULTED:
        raise errors.DriverFaulted(
            f"{image_name} faulted earlier; its state was abandoned: load the image again")
    cls, what = _FAULT_TYPES.get(code, (errors.DriverFault, f"fault 0x{code:08X}"))
    entry = ENTRY_POINTS[report.entry] if report.entry < len(ENTRY_POINTS) else "?"
    where = ffi.string(report.where).decode("utf-8", "replace")
    detail = f"at {where}" if where else ""
    if code != STATUS_IO_TIMEOUT and report.insn_len:
        detail += " " + _instruction_text(report)
    if cls is errors.VerifierFault and violation is not None:
        detail = f"({violation.kind}: {violation.text})"
    elif cls is errors.BugCheckFault:
        fast_fail = report.insn_decoded and bytes(report.insn[0:2]) == b"\xcd\x29"
        detail = f"{_bug_check_text(report, fast_fail)} {detail}"
    elif cls is errors.AccessViolationFault and report.addr:
        detail += f" touching 0x{report.addr:x}"
    message = (f"{what} in {entry} of {image_name} {detail}, IRQL {irql_name(report.irql)}, "
               f"{report.depth} bytes deep in a {stack_size // 1024} KiB stack")
    raise cls(" ".join(message.split()), code=code, entry_point=entry, where=where,
              address=report.addr, depth=report.depth, irql=report.irql,
              stack_size=stack_size, image=image_name)


def stack_report(c_report):
    """A StackReport-shaped dict from struct np_api_stack."""
    return {
        "size": c_report.size,
        "lifetime": c_report.lifetime,
        "entry_points": {
            name: {"high_water": c_report.entry[i], "calls": c_report.calls[i]}
            for i, name in enumerate(ENTRY_POINTS) if c_report.calls[i]
        },
    }


def mappings():
    """Every mapping the runtime holds: [(addr, length, kind)]."""
    n = lib.np_api_maps(ffi.NULL, 0)
    buf = ffi.new("struct np_api_map[]", n + 16)
    n = lib.np_api_maps(buf, n + 16)
    return [(m.addr, m.len, ffi.string(m.kind).decode()) for m in buf[0:n]]


OID_NAMES = {getattr(lib, name): name for name in dir(lib) if name.startswith("OID_")}


def oid_number(oid):
    """OID by number or by name (``"OID_GEN_LINK_SPEED"`` or ``"GEN_LINK_SPEED"``)."""
    if isinstance(oid, int):
        if not 0 <= oid <= 0xFFFFFFFF:
            raise ValueError(f"OID 0x{oid:x} is not a 32-bit value")
        return oid
    name = str(oid).strip().upper()
    if name.startswith("0X"):
        return oid_number(int(name, 16))
    if not name.startswith("OID_"):
        name = "OID_" + name
    try:
        return getattr(lib, name) & 0xFFFFFFFF
    except AttributeError:
        raise ValueError(f"unknown OID name {oid!r} (use a name like OID_GEN_LINK_SPEED "
                         "or a number like 0x00010107)") from None


def oid_name(oid):
    return OID_NAMES.get(oid, f"0x{oid:08X}")
