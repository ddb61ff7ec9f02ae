"""Reading a PE driver file without loading it: headers, sections, imports.

``read(data, name)`` describes an image from its bytes; ``resolve(image)``
says which of its imports our export tables (csrc/ndis.c, ntoskrnl.c,
hal.c) provide.  Nothing is mapped and nothing runs: this is what
``ndisproxy driver info`` shows and what the daemon checks before it
starts a host for a driver.  Whether an image really loads is the C
loader's word (csrc/pe.c, docs/loader.md); this reader checks what it needs
to read safely - every offset and RVA before use - and raises
``ImageFormatError`` (one line, as the loader's errors are) otherwise.

PE32 (32-bit) images are described too, so that ``driver info`` can say
what a 32-bit driver is instead of only refusing it.
"""
import dataclasses
import pathlib
import struct

from .errors import ImageError, UnresolvedImportsError

MACHINES = {0x8664: "x86-64", 0x014c: "i386", 0xaa64: "arm64", 0x01c4: "arm",
            0x0200: "ia64"}
SUBSYSTEMS = {1: "native", 2: "windows-gui", 3: "windows-cui", 10: "efi-application",
              11: "efi-boot-driver", 12: "efi-runtime-driver"}
MACHINE_AMD64 = 0x8664
PE32, PE32PLUS = 0x10b, 0x20b

SCN_CNT_CODE = 0x00000020
SCN_CNT_INITIALIZED_DATA = 0x00000040
SCN_CNT_UNINITIALIZED_DATA = 0x00000080
SCN_MEM_DISCARDABLE = 0x02000000
SCN_MEM_NOT_PAGED = 0x08000000
SCN_MEM_EXECUTE = 0x20000000
SCN_MEM_READ = 0x40000000
SCN_MEM_WRITE = 0x80000000

DIRECTORIES = ("export", "import", "resource", "exception", "security", "basereloc",
               "debug", "architecture", "globalptr", "tls", "load_config", "bound_import",
               "iat", "delay_import", "clr", "reserved")
DIR_EXPORT, DIR_IMPORT, DIR_TLS = 0, 1, 9

MAX_IMAGE = 256 << 20           # SizeOfImage, as the loader bounds it
MAX_SECTIONS = 96
MAX_NAME = 256                  # an import name is NUL-terminated within this
MAX_IMPORTS = 16384             # in all: real drivers import a few hundred
MAX_MODULES = 1024
MAX_EXPORTS = 65536


class ImageFormatError(ImageError):
    """The file is not a PE image this reader can describe."""


@dataclasses.dataclass(frozen=True)
class Section:
    name: str
    rva: int
    virtual_size: int
    raw_offset: int
    raw_size: int
    characteristics: int

    @property
    def protection(self):
        """As the loader maps it: "r-x", "rw-", "r--" or "---"."""
        flags = self.characteristics
        return ("r" if flags & (SCN_MEM_READ | SCN_MEM_WRITE | SCN_MEM_EXECUTE) else "-") + \
            ("w" if flags & SCN_MEM_WRITE else "-") + ("x" if flags & SCN_MEM_EXECUTE else "-")

    @property
    def kinds(self):
        """What the section holds and how Windows would treat it."""
        flags = self.characteristics
        names = [("code", SCN_CNT_CODE), ("data", SCN_CNT_INITIALIZED_DATA),
                 ("bss", SCN_CNT_UNINITIALIZED_DATA), ("discardable", SCN_MEM_DISCARDABLE),
                 ("non-paged", SCN_MEM_NOT_PAGED)]
        return [name for name, bit in names if flags & bit]


@dataclasses.dataclass(frozen=True)
class Import:
    module: str
    name: str | None            # None for an import by ordinal
    ordinal: int | None = None

    def __str__(self):
        return f"{self.module}!{self.name}" if self.name is not None else \
            f"{self.module}!#{self.ordinal}"


@dataclasses.dataclass(frozen=True)
class Exports:
    """What a helper DLL exports, as the loader binds it: names and ordinals
    of functions it holds itself (forwarders are refused, so not here)."""
    names: frozenset
    ordinals: frozenset


@dataclasses.dataclass(frozen=True)
class PeImage:
    name: str
    machine: int
    magic: int
    timestamp: int
    characteristics: int
    image_base: int
    entry_rva: int
    size_of_image: int
    size_of_headers: int
    section_alignment: int
    file_alignment: int
    subsystem: int
    dll_characteristics: int
    directories: tuple          # (rva, size) per DIRECTORIES entry present
    sections: tuple
    imports: tuple

    @property
    def machine_name(self):
        return MACHINES.get(self.machine, "unknown")

    @property
    def subsystem_name(self):
        return SUBSYSTEMS.get(self.subsystem, "unknown")

    @property
    def bits(self):
        return 64 if self.magic == PE32PLUS else 32

    def directory(self, index):
        """(rva, size) of data directory ``index``; (0, 0) if absent."""
        return self.directories[index] if index < len(self.directories) else (0, 0)

    def section_at(self, rva):
        """The section holding ``rva``, or None."""
        for section in self.sections:
            size = section.virtual_size or section.raw_size
            if section.rva <= rva < section.rva + size:
                return section
        return None

    def modules(self):
        """{module as the image names it: [Import, ...]} in import-table order."""
        result = {}
        for item in self.imports:
            result.setdefault(item.module, []).append(item)
        return result


class _Reader:
    def __init__(self, data, name):
        self.data = data
        self.name = name

    def fail(self, problem):
        return ImageFormatError(f"{self.name}: {problem}")

    def unpack(self, fmt, offset, what):
        size = struct.calcsize(fmt)
        if offset < 0 or offset + size > len(self.data):
            raise self.fail(f"truncated image: {what} at 0x{offset:x} is past the end of the "
                            f"{len(self.data)}-byte file")
        return struct.unpack_from(fmt, self.data, offset)


def read(data, name="image.sys"):
    """Describe the PE image in ``data`` (bytes; ``name`` is for messages)."""
    r = _Reader(bytes(data), name)
    if len(r.data) < 64:
        raise r.fail(f"truncated image: {len(r.data)} bytes is shorter than a DOS header")
    if r.data[:2] != b"MZ":
        raise r.fail("not a PE image: no MZ signature")
    (lfanew,) = r.unpack("<I", 60, "e_lfanew")
    if lfanew + 24 > len(r.data):
        raise r.fail(f"truncated image: PE header at 0x{lfanew:x} is past the end of the "
                     f"{len(r.data)}-byte file")
    if r.data[lfanew:lfanew + 4] != b"PE\0\0":
        raise r.fail(f"not a PE image: no PE signature at 0x{lfanew:x}")
    machine, nsections, timestamp, _, _, opt_size, characteristics = r.unpack(
        "<HHIIIHH", lfanew + 4, "COFF header")
    opt = lfanew + 24
    if opt_size < 2 or opt + 2 > len(r.data):
        raise r.fail("truncated image: optional header missing")
    (magic,) = r.unpack("<H", opt, "optional header")
    if magic not in (PE32, PE32PLUS):
        raise r.fail(f"optional header magic 0x{magic:x} is neither PE32 (0x10b) nor "
                     "PE32+ (0x20b)")
    fixed = 112 if magic == PE32PLUS else 96
    if opt_size < fixed or opt + opt_size > len(r.data):
        raise r.fail(f"truncated image: optional header needs {max(opt_size, fixed)} bytes at "
                     f"0x{opt:x}, file has {len(r.data)}")
    (entry_rva,) = r.unpack("<I", opt + 16, "entry point")
    if magic == PE32PLUS:
        (image_base,) = r.unpack("<Q", opt + 24, "ImageBase")
    else:
        (image_base,) = r.unpack("<I", opt + 28, "ImageBase")
    section_alignment, file_alignment = r.unpack("<II", opt + 32, "alignments")
    size_of_image, size_of_headers = r.unpack("<II", opt + 56, "sizes")
    subsystem, dll_characteristics = r.unpack("<HH", opt + 68, "subsystem")
    (ndirs,) = r.unpack("<I", opt + fixed - 4, "NumberOfRvaAndSizes")
    ndirs = min(ndirs, 16)
    if fixed + 8 * ndirs > opt_size:
        raise r.fail(f"malformed image: {ndirs} data directories do not fit a {opt_size}-byte "
                     "optional header")
    if not 0 < size_of_image <= MAX_IMAGE:
        raise r.fail(f"malformed image: SizeOfImage {size_of_image} is out of range")
    if size_of_headers > size_of_image or size_of_headers > len(r.data):
        raise r.fail(f"malformed image: SizeOfHeaders {size_of_headers} exceeds the image or "
                     "the file")
    if not 1 <= nsections <= MAX_SECTIONS:
        raise r.fail(f"malformed image: {nsections} sections")
    directories = tuple(r.unpack("<II", opt + fixed + 8 * i, "data directory")
                        for i in range(ndirs))
    sections = _sections(r, opt + opt_size, nsections, size_of_image, size_of_headers)
    for index, (rva, size) in enumerate(directories):
        # The security directory holds a file offset, not an RVA.
        if size and index != 4 and not _rva_ok(rva, size, size_of_image):
            raise r.fail(f"malformed image: data directory {index} (RVA 0x{rva:x}, {size} "
                         "bytes) lies outside the image")
    if not entry_rva or entry_rva >= size_of_image:
        raise r.fail(f"malformed image: entry point RVA 0x{entry_rva:x} lies outside the image")
    image = PeImage(name=name, machine=machine, magic=magic, timestamp=timestamp,
                    characteristics=characteristics, image_base=image_base,
                    entry_rva=entry_rva, size_of_image=size_of_image,
                    size_of_headers=size_of_headers, section_alignment=section_alignment,
                    file_alignment=file_alignment, subsystem=subsystem,
                    dll_characteristics=dll_characteristics, directories=directories,
                    sections=sections, imports=())
    return dataclasses.replace(image, imports=_imports(r, image))


def _rva_ok(rva, size, image_size):
    return rva <= image_size and size <= image_size - rva


def _sections(r, table, count, size_of_image, size_of_headers):
    if table + 40 * count > len(r.data):
        raise r.fail(f"truncated image: section table ({count} entries at 0x{table:x}) is "
                     "past the end of the file")
    sections = []
    for i in range(count):
        raw_name, vsize, rva, raw_size, raw_offset, _, _, _, _, flags = struct.unpack_from(
            "<8sIIIIIIHHI", r.data, table + 40 * i)
        name = raw_name.rstrip(b"\0").decode("latin-1")
        shown = "".join(c if c.isprintable() else "?" for c in name) or f"#{i}"
        size = vsize or raw_size
        if not _rva_ok(rva, size, size_of_image):
            raise r.fail(f"malformed image: section {shown} (RVA 0x{rva:x}, {size} bytes) "
                         "lies outside the image")
        if size and rva < size_of_headers:
            raise r.fail(f"malformed image: section {shown} overlaps the headers")
        if size and sections and rva < sections[-1].rva + (sections[-1].virtual_size
                                                           or sections[-1].raw_size):
            raise r.fail(f"malformed image: section {shown} (RVA 0x{rva:x}) overlaps section "
                         f"{sections[-1].name} or precedes it")
        if not flags & SCN_CNT_UNINITIALIZED_DATA and raw_size and \
                raw_offset + raw_size > len(r.data):
            raise r.fail(f"truncated image: section {shown} data (0x{raw_size:x} bytes at "
                         f"0x{raw_offset:x}) is past the end of the file")
        sections.append(Section(shown, rva, vsize, raw_offset, raw_size, flags))
    return tuple(sections)


def _span(r, image, rva, size, what):
    """(file offset of ``rva``, bytes from there to the end of its section's
    data in the file); ``size`` of them at least."""
    if rva + size <= image.size_of_headers:
        return rva, image.size_of_headers - rva
    for section in image.sections:
        if section.rva <= rva and rva + size <= section.rva + section.raw_size and \
                not section.characteristics & SCN_CNT_UNINITIALIZED_DATA:
            return section.raw_offset + (rva - section.rva), section.rva + section.raw_size - rva
    raise r.fail(f"malformed image: {what} (RVA 0x{rva:x}) is not in the file's data")


def _offset(r, image, rva, size, what):
    """The file offset of ``size`` bytes at ``rva``, all in one place."""
    return _span(r, image, rva, size, what)[0]


def _string(r, image, rva, what):
    start = _offset(r, image, rva, 1, what)
    end = r.data.find(b"\0", start, start + MAX_NAME)
    if end < 0:
        raise r.fail(f"malformed image: {what} (RVA 0x{rva:x}) is not a NUL-terminated name "
                     f"within {MAX_NAME} bytes")
    text = r.data[start:end].decode("latin-1")
    return "".join(c if c.isprintable() else "?" for c in text)


def _imports(r, image):
    rva, size = image.directory(DIR_IMPORT)
    if not size:
        return ()
    thunk_size = 8 if image.magic == PE32PLUS else 4
    ordinal_bit = 1 << (8 * thunk_size - 1)
    imports = []
    for index in range(min(size // 20, MAX_MODULES)):
        at = _offset(r, image, rva + 20 * index, 20, "import descriptor")
        lookup, _, _, name_rva, first_thunk = struct.unpack_from("<IIIII", r.data, at)
        if not (lookup or name_rva or first_thunk):
            break
        module = _string(r, image, name_rva, "import module name")
        table = lookup or first_thunk
        start, room = _span(r, image, table, thunk_size, f"import table of {module}")
        fmt = "<Q" if thunk_size == 8 else "<I"
        for slot in range(room // thunk_size + 1):
            if slot == room // thunk_size:
                raise r.fail(f"malformed image: import table of {module} runs outside the "
                             "image's data")
            (thunk,) = struct.unpack_from(fmt, r.data, start + thunk_size * slot)
            if not thunk:
                break
            if len(imports) == MAX_IMPORTS:
                raise r.fail(f"malformed image: more than {MAX_IMPORTS} imports")
            if thunk & ordinal_bit:
                imports.append(Import(module, None, thunk & 0xFFFF))
                continue
            if thunk >= image.size_of_image:
                raise r.fail(f"malformed image: import name RVA 0x{thunk:x} of {module} lies "
                             "outside the image")
            imports.append(Import(module, _string(r, image, (thunk & 0x7FFFFFFF) + 2,
                                                  f"import name of {module}")))
    return tuple(imports)


# -- what binds ---------------------------------------------------------------


RESOLVED, NO_EXPORT, NO_MODULE, BY_ORDINAL = "resolved", "no-export", "no-module", "ordinal"


def status(item, helpers=None):
    """Whether the loader binds ``item``: RESOLVED, NO_EXPORT (the module is
    ours, or a helper DLL in ``helpers`` ({lower-case name: Exports}), but
    lacks the function), NO_MODULE or BY_ORDINAL (refused from the kernel
    modules)."""
    from ._binding import lib
    exports = (helpers or {}).get(item.module.lower())
    if exports is not None:
        found = item.ordinal in exports.ordinals if item.name is None \
            else item.name in exports.names
        return RESOLVED if found else NO_EXPORT
    if item.name is None:
        return BY_ORDINAL
    code = lib.np_api_import_status(item.module.encode(), item.name.encode())
    return (RESOLVED, NO_EXPORT, NO_MODULE)[code]


def unresolved(image, helpers=None):
    """The imports the loader would not bind, in import-table order."""
    return [item for item in image.imports if status(item, helpers) != RESOLVED]


def read_exports(data, name):
    """The Exports of the DLL in ``data``; ImageFormatError if damaged."""
    r = _Reader(bytes(data), name)
    image = read(data, name)
    rva, size = image.directory(DIR_EXPORT)
    if not size:
        return Exports(frozenset(), frozenset())
    at = _offset(r, image, rva, 40, "export directory")
    base, nfunctions, nnames, functions, names, ordinals = struct.unpack_from(
        "<IIIIII", r.data, at + 16)
    if nfunctions > MAX_EXPORTS or nnames > nfunctions:
        raise r.fail(f"malformed image: {nfunctions} exported functions, {nnames} names")
    table = _offset(r, image, functions, 4 * nfunctions, "export address table") \
        if nfunctions else 0
    own = set()
    for index in range(nfunctions):
        (target,) = struct.unpack_from("<I", r.data, table + 4 * index)
        if target and not rva <= target < rva + size:      # inside: a forwarder
            own.add(base + index)
    exported = set()
    if nnames:
        name_table = _offset(r, image, names, 4 * nnames, "export name table")
        ordinal_table = _offset(r, image, ordinals, 2 * nnames, "export ordinal table")
        for index in range(nnames):
            (name_rva,) = struct.unpack_from("<I", r.data, name_table + 4 * index)
            (slot,) = struct.unpack_from("<H", r.data, ordinal_table + 2 * index)
            if base + slot in own:
                exported.add(_string(r, image, name_rva, "export name"))
    return Exports(frozenset(exported), frozenset(own))


def helpers_beside(path, image):
    """{module as imported: path} of the helper DLLs ``image`` imports that
    lie beside ``path`` (the file name in any case), as the loader finds them."""
    wanted = {item.module for item in image.imports if status(item) == NO_MODULE}
    if not wanted:
        return {}
    try:
        beside = {entry.name.lower(): entry
                  for entry in pathlib.Path(path).resolve().parent.iterdir()}
    except OSError:
        return {}
    return {module: beside[module.lower()] for module in sorted(wanted)
            if module.lower() in beside and beside[module.lower()].is_file()}


def helper_exports(paths):
    """{lower-case module: Exports} of helper DLL files; ImageError if one
    cannot be read or is damaged."""
    found = {}
    for module, path in paths.items():
        try:
            data = pathlib.Path(path).read_bytes()
        except OSError as exc:
            raise ImageError(f"{path}: {exc.strerror or exc}") from None
        found[module.lower()] = read_exports(data, pathlib.Path(path).name)
    return found


def unresolved_message(missing):
    """The loader's words for them: "3 unresolved imports: A!f, B!g, ..."."""
    count = len(missing)
    return f"{count} unresolved import{'s' if count != 1 else ''}: " + \
        ", ".join(str(item) for item in missing)


def check_file(path):
    """check_loadable() on the file ``path``, with the helper DLLs beside it;
    its image, or ImageError."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_IMAGE + 1)
    except OSError as exc:
        raise ImageError(f"{path}: {exc.strerror or exc}") from None
    name = pathlib.Path(path).name
    image = read(data, name)
    return check_loadable(data, name, helper_exports(helpers_beside(path, image)))


def check_loadable(data, name, helpers=None):
    """Raise what stops this image before a host is started for it: an
    ImageFormatError, the wrong machine, or UnresolvedImportsError listing
    every import we do not provide (nor a helper DLL in ``helpers``,
    {lower-case name: Exports})."""
    image = read(data, name)
    if image.machine != MACHINE_AMD64 or image.magic != PE32PLUS:
        raise ImageFormatError(f"{name}: {image.machine_name} (0x{image.machine:04x}) "
                               f"PE{'32+' if image.magic == PE32PLUS else '32'} image: only "
                               "x86-64 (0x8664) PE32+ drivers can run here")
    missing = unresolved(image, helpers)
    if missing:
        raise UnresolvedImportsError(f"{name}: {unresolved_message(missing)}",
                                     [str(item) for item in missing])
    return image
