"""cffi build script for ndisproxy._native (out-of-line API mode).

The C interface Python sees is exactly csrc/include/np_api.h: cdef is that
file less its preprocessor lines, so the header is the one place it is
declared.  The NDIS_STATUS and OID constants come from the compiled
ndis_constants.h, so Python and drivers can never disagree on a value.
"""
import pathlib
import re

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent.parent
# setuptools wants source paths relative to the project root (its cwd).
CSRC = pathlib.Path("csrc")
INCLUDE = ROOT / "csrc" / "include"

SOURCES = [
    "adapter.c", "arena.c", "bench.c", "call.c", "capture.c", "device.c", "emulate.c", "hal.c",
    "image.c", "indicate.c", "kpcr.c", "latency.c", "maps.c", "ndis.c", "ntoskrnl.c", "offload.c", "pe.c", "pump.c",
    "pump_thread.c", "send.c", "stack.c", "trampoline.c", "trap.c", "verifier.c", "winfmt.c",
]

CONSTANT_PREFIXES = ("NDIS_STATUS_", "OID_", "STATUS_", "NDIS_PACKET_TYPE_",
                     "NDIS_MAC_OPTION_", "NDIS_TASK_")


def api_cdef():
    text = (INCLUDE / "np_api.h").read_text()
    keep = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not re.match(r"#define\s+NP_\w+\s+\d+$", stripped):
            continue
        keep.append(line)
    return "\n".join(keep)


def constants_cdef():
    names = re.findall(r"^#define\s+(\w+)\s", (INCLUDE / "ndis_constants.h").read_text(), re.M)
    return "\n".join(f"#define {name} ..." for name in names
                     if name.startswith(CONSTANT_PREFIXES))


ffibuilder = FFI()
ffibuilder.cdef(api_cdef())
ffibuilder.cdef(constants_cdef())
ffibuilder.set_source(
    "ndisproxy._native",
    '#include "np_api.h"\n#include "ndis_constants.h"\n',
    sources=[str(CSRC / name) for name in SOURCES],
    include_dirs=[str(INCLUDE)],
    extra_compile_args=[
        "-O2", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
        "-fvisibility=hidden", "-fno-omit-frame-pointer", "-fno-strict-aliasing",
    ],
    libraries=["pthread", "dl"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
