"""What ``ndisproxy driver info`` reports about a driver image.

``await describe(data, name)`` reads the image's headers, sections and
imports (ndisproxy.peimage: nothing is mapped), says which imports our
export tables provide, and - when the image can load - runs its DriverEntry
in a throwaway driver host forked from a fork server of its own, with the
sandbox every host has (ndisproxy.hostproc's probe), to learn the NDIS
version and the handlers it registers.  The result is a dict, the JSON
that ``--json`` prints; ``problems`` lists, one line each, everything that
stops the image from running here.

Nothing of the driver runs in the calling process.
"""
import hashlib
import os

import trio

from . import peimage
from .errors import ImageError

PROBE_TIMEOUT = 30


def _hex(value):
    return f"0x{value:x}"


def static_report(image, exports=None):
    """The part of the report read from the file: headers, sections, imports
    (``exports``: {lower-case module: Exports} of helper DLLs beside it)."""
    entry = image.section_at(image.entry_rva)
    modules = []
    for module, items in image.modules().items():
        functions = [{"name": str(item).split("!", 1)[1],
                      "status": peimage.status(item, exports)} for item in items]
        modules.append({"module": module, "functions": functions,
                        "resolved": sum(f["status"] == peimage.RESOLVED for f in functions)})
    return {
        "machine": image.machine_name,
        "machine_code": _hex(image.machine),
        "format": "PE32+" if image.bits == 64 else "PE32",
        "subsystem": image.subsystem_name,
        "subsystem_code": image.subsystem,
        "timestamp": image.timestamp,
        "image_base": _hex(image.image_base),
        "size_of_image": image.size_of_image,
        "section_alignment": image.section_alignment,
        "file_alignment": image.file_alignment,
        "entry_point": {"rva": _hex(image.entry_rva),
                        "section": entry.name if entry is not None else None},
        "directories": {peimage.DIRECTORIES[i]: {"rva": _hex(rva), "size": size}
                        for i, (rva, size) in enumerate(image.directories) if size},
        "sections": [{"name": s.name, "rva": _hex(s.rva), "virtual_size": s.virtual_size,
                      "raw_size": s.raw_size, "protection": s.protection, "kinds": s.kinds}
                     for s in image.sections],
        "imports": modules,
        "unresolved": [str(item) for item in peimage.unresolved(image, exports)],
        "helpers": sorted(exports or ()),
    }


def _static_problems(image, report, exports=None):
    problems = []
    if image.machine != peimage.MACHINE_AMD64 or image.bits != 64:
        problems.append(f"{image.name}: {image.machine_name} ({report['machine_code']}) "
                        f"{report['format']} image: only x86-64 (0x8664) PE32+ drivers can "
                        "run here")
    missing = peimage.unresolved(image, exports)
    if missing:
        problems.append(f"{image.name}: {peimage.unresolved_message(missing)}")
    return problems


async def describe(data, name, *, run_driver_entry=True, helpers=None):
    """The report on the image ``data`` (file name ``name``), with the helper
    DLLs it imports in ``helpers`` ({module: bytes})."""
    report = {"ok": False, "name": name, "size": len(data),
              "sha256": hashlib.sha256(data).hexdigest(), "problems": []}
    try:
        image = peimage.read(data, name)
    except ImageError as exc:
        report["problems"].append(str(exc))
        report["driver_entry"] = None
        return report
    try:
        exports = {module.lower(): peimage.read_exports(blob, module)
                   for module, blob in (helpers or {}).items()}
    except ImageError as exc:
        report["problems"].append(str(exc))
        report["driver_entry"] = None
        return report
    report.update(static_report(image, exports))
    report["problems"] = _static_problems(image, report, exports)
    report["driver_entry"] = None
    if run_driver_entry and not report["problems"]:
        probe = await run_probe(data, name, helpers)
        report["driver_entry"] = probe
        if not probe["ok"]:
            report["problems"].append(probe["error"])
    report["ok"] = not report["problems"]
    return report


async def run_probe(data, name, helpers=None, timeout=PROBE_TIMEOUT):
    """DriverEntry of ``data`` (with ``helpers``, {module: bytes}) in a
    throwaway sandboxed host: the host's probe message (see
    ndisproxy.hostproc), with "ok" and "error" set."""
    from .supervisor import HostError, open_fork_server

    fds = []
    try:
        for blob_name, blob in ((name, data), *(helpers or {}).items()):
            fds.append(os.memfd_create(blob_name, os.MFD_CLOEXEC))
            _write_all(fds[-1], blob)
            os.lseek(fds[-1], 0, os.SEEK_SET)
        spec = {"probe": {"name": name, "image": 0,
                          "helpers": {module: i + 1 for i, module in enumerate(helpers or {})}}}
        with trio.move_on_after(timeout) as deadline:
            try:
                async with open_fork_server() as server:
                    host = await server.spawn(spec, fds)
                    for fd in fds:
                        os.close(fd)
                    fds = []
                    try:
                        async for event in host.events():
                            if event.get("event") == "probe":
                                event.pop("event")
                                return event
                    finally:
                        host.close()
                    await host.exited.wait()
                    return _failed(f"{name}: the driver host ended (status "
                                   f"{host.exit_status}) before reporting on DriverEntry")
            except (OSError, HostError) as exc:
                return _failed(f"{name}: cannot start a driver host to run DriverEntry: "
                               f"{getattr(exc, 'strerror', None) or exc}")
        if deadline.cancelled_caught:
            return _failed(f"{name}: no report on DriverEntry within {timeout} s")
    finally:
        for fd in fds:
            os.close(fd)
    return _failed(f"{name}: no report on DriverEntry")


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _failed(error):
    return {"ok": False, "error": error, "kind": "HostError", "ndis_version": None,
            "handlers": {}, "log": [], "stack": None, "sandbox": None}
