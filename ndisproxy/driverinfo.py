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


def static_report(image):
    """The part of the report read from the file: headers, sections, imports."""
    entry = image.section_at(image.entry_rva)
    modules = []
    for module, items in image.modules().items():
        functions = [{"name": str(item).split("!", 1)[1], "status": peimage.status(item)}
                     for item in items]
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
        "unresolved": [str(item) for item in peimage.unresolved(image)],
    }


def _static_problems(image, report):
    problems = []
    if image.machine != peimage.MACHINE_AMD64 or image.bits != 64:
        problems.append(f"{image.name}: {image.machine_name} ({report['machine_code']}) "
                        f"{report['format']} image: only x86-64 (0x8664) PE32+ drivers can "
                        "run here")
    missing = peimage.unresolved(image)
    if missing:
        problems.append(f"{image.name}: {peimage.unresolved_message(missing)}")
    return problems


async def describe(data, name, *, run_driver_entry=True):
    """The report on the image ``data`` (file name ``name``)."""
    report = {"ok": False, "name": name, "size": len(data),
              "sha256": hashlib.sha256(data).hexdigest(), "problems": []}
    try:
        image = peimage.read(data, name)
    except ImageError as exc:
        report["problems"].append(str(exc))
        report["driver_entry"] = None
        return report
    report.update(static_report(image))
    report["problems"] = _static_problems(image, report)
    report["driver_entry"] = None
    if run_driver_entry and not report["problems"]:
        probe = await run_probe(data, name)
        report["driver_entry"] = probe
        if not probe["ok"]:
            report["problems"].append(probe["error"])
    report["ok"] = not report["problems"]
    return report


async def run_probe(data, name, timeout=PROBE_TIMEOUT):
    """DriverEntry of ``data`` in a throwaway sandboxed host: the host's
    probe message (see ndisproxy.hostproc), with "ok" and "error" set."""
    from .supervisor import HostError, open_fork_server

    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        _write_all(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        with trio.move_on_after(timeout) as deadline:
            try:
                async with open_fork_server() as server:
                    host = await server.spawn({"probe": {"name": name, "image": 0}}, [fd])
                    os.close(fd)
                    fd = None
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
        if fd is not None:
            os.close(fd)
    return _failed(f"{name}: no report on DriverEntry")


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _failed(error):
    return {"ok": False, "error": error, "kind": "HostError", "ndis_version": None,
            "handlers": {}, "log": [], "stack": None, "sandbox": None}
