"""Cross-compile the bundled NDIS drivers into genuine PE32+ .sys images.

Toolchain: Debian's mingw-w64 (x86_64-w64-mingw32-gcc and -dlltool), which
the README's install command puts on the machine (docs/building.md says why
we chose it over PyPI's ziglang).

Import libraries are generated from our own export tables (the NP_EXPORT
lines of csrc/ndis.c, ntoskrnl.c and hal.c), so a bundled driver that calls
something we do not export fails to link here instead of failing to load.

Test drivers are csrc/drivers/testing/*.c, one image each, importing from
any DLL a ``<stem>*.def`` beside them names; helper DLLs are
csrc/drivers/testing/dll/<stem>.c with the exports of <stem>.def.
"""
import os
import pathlib
import re
import shutil
import struct
import subprocess

MODULES = {
    "ndis.c": ("NDIS.SYS", "ndis"),
    "ntoskrnl.c": ("ntoskrnl.exe", "ntoskrnl"),
    "hal.c": ("HAL.dll", "hal"),
}

CC = os.environ.get("NDISPROXY_MINGW_CC", "x86_64-w64-mingw32-gcc")
DLLTOOL = os.environ.get("NDISPROXY_MINGW_DLLTOOL", "x86_64-w64-mingw32-dlltool")
NM = os.environ.get("NDISPROXY_MINGW_NM", "x86_64-w64-mingw32-nm")

CFLAGS = [
    "-O2", "-g0", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
    "-ffreestanding", "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
    "-DNDIS_IMPORTS", "-DNDIS51_MINIPORT",
]
LDFLAGS = [
    "-nostdlib", "-shared", "-Wl,--subsystem,native",
    "-Wl,--dynamicbase", "-Wl,--nxcompat", "-Wl,--image-base,0x140000000",
]
ENTRY = "DriverEntry"

# Test drivers linked as the MSVC-built binaries they stand for are.
TEST_DRIVER_ENTRY = {"gs": "GsDriverEntry"}            # /GS: the WDK's entry point
TEST_DRIVER_LINK = {
    "smallalign": ["-Wl,--section-alignment,0x200",    # WDK drivers: /ALIGN below 4 KiB
                   "-Wl,--file-alignment,0x200"],
}
# The PE32+ optional header's data directory 10: the load config.
LOAD_CONFIG_DIRECTORY = 10


class DriverBuildError(RuntimeError):
    pass


def export_names(source):
    text = source.read_text()
    names = re.findall(r"NP_EXPORT\((\w+)\)", text)
    names += re.findall(r'NP_EXPORT_AS\("(\w+)"', text)
    return sorted(names)


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise DriverBuildError(f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}")


def _import_lib(def_path, dll_name, lib_path):
    _run([DLLTOOL, "--input-def", str(def_path), "--dllname", dll_name,
          "--output-lib", str(lib_path)])


def import_libraries(source_root, temp):
    libs = []
    for source, (dll, stem) in MODULES.items():
        names = export_names(source_root / "csrc" / source)
        def_path = temp / f"{stem}.def"
        def_path.write_text(f"LIBRARY {dll}\nEXPORTS\n" + "".join(f"  {n}\n" for n in names))
        lib = temp / f"lib{stem}.a"
        _import_lib(def_path, dll, lib)
        libs.append(lib)
    return libs


def _rva_to_offset(data, rva):
    lfanew, = struct.unpack_from("<I", data, 60)
    nsections, = struct.unpack_from("<H", data, lfanew + 6)
    optsize, = struct.unpack_from("<H", data, lfanew + 20)
    for i in range(nsections):
        _, va, rawsize, rawptr = struct.unpack_from("<IIII", data,
                                                    lfanew + 24 + optsize + 40 * i + 8)
        if va <= rva < va + rawsize:
            return rawptr + rva - va
    raise DriverBuildError(f"RVA 0x{rva:x} is in no section's file data")


def enter_load_config(image):
    """Point data directory 10 at ``_load_config_used``, as MSVC's linker
    does (ld 2.40 does not): the loader finds the /GS cookie through it."""
    symbols = subprocess.run([NM, str(image)], capture_output=True, text=True).stdout
    found = re.search(r"^([0-9a-f]+) \w _load_config_used$", symbols, re.M)
    if not found:
        return
    data = bytearray(image.read_bytes())
    lfanew, = struct.unpack_from("<I", data, 60)
    opt = lfanew + 24
    image_base, = struct.unpack_from("<Q", data, opt + 24)
    rva = int(found.group(1), 16) - image_base
    size, = struct.unpack_from("<I", data, _rva_to_offset(data, rva))
    struct.pack_into("<II", data, opt + 112 + 8 * LOAD_CONFIG_DIRECTORY, rva, size)
    image.write_bytes(data)


def build_driver(sources, output, libs, include, extra_defs=(), temp=None, link=(),
                 entry=ENTRY):
    extra = []
    for def_path in extra_defs:
        dll = re.search(r"^LIBRARY\s+(\S+)", def_path.read_text(), re.M).group(1)
        lib = temp / f"lib{def_path.stem.replace('.', '-')}-extra.a"
        _import_lib(def_path, dll, lib)
        extra.append(str(lib))
    output.parent.mkdir(parents=True, exist_ok=True)
    _run([CC, *CFLAGS, f"-I{include}", *map(str, sources), "-o", str(output),
          *LDFLAGS, f"-Wl,-e,{entry}", *link, *extra, *map(str, libs), "-lgcc"])
    enter_load_config(output)


def build_all(source_root, out_root, temp_root):
    source_root = pathlib.Path(source_root)
    out_root = pathlib.Path(out_root)
    temp = pathlib.Path(temp_root).resolve()
    if not all(shutil.which(tool) for tool in (CC, DLLTOOL, NM)):
        raise DriverBuildError(
            f"{CC} not found: the bundled drivers are PE32+ images built with "
            "mingw-w64; install it with "
            "'apt-get install -y gcc-mingw-w64-x86-64-win32 binutils-mingw-w64-x86-64'")
    temp.mkdir(parents=True, exist_ok=True)
    libs = import_libraries(source_root, temp)
    include = source_root / "csrc" / "include"
    drivers = source_root / "csrc" / "drivers"

    for src in sorted((drivers / "testing").glob("*.c")):
        defs = sorted(src.parent.glob(src.stem + "*.def"))
        build_driver([src], out_root / "testing" / f"{src.stem}.sys", libs, include,
                     defs, temp, link=TEST_DRIVER_LINK.get(src.stem, ()),
                     entry=TEST_DRIVER_ENTRY.get(src.stem, ENTRY))
    for src in sorted((drivers / "testing" / "dll").glob("*.c")):
        # The .def names the DLL's exports (and forwarders) for the linker.
        build_driver([src, src.with_suffix(".def")], out_root / "testing" / f"{src.stem}.dll",
                     libs, include, temp=temp)
    for folder in sorted(p for p in drivers.iterdir() if p.is_dir() and p.name != "testing"):
        build_driver(sorted(folder.glob("*.c")), out_root / f"{folder.name}.sys", libs,
                     include, temp=temp)
        # The driver package's INF goes next to its image, as a vendor ships
        # them: `ndisproxy driver install` finds the image there.
        for inf in folder.glob("*.inf"):
            shutil.copyfile(inf, out_root / inf.name)
