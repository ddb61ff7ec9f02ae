"""The PE loader: good images bind, bad ones give one line and leave nothing."""
import struct

import pytest

from ndisproxy import (
    AccessViolationFault, BugCheckFault, DriverImage, DriverStatusError, ImageError,
    UnresolvedImportsError, drivers,
)
from ndisproxy._binding import mappings


def image_bytes(name="wild"):
    return bytearray(drivers.testing_path(name).read_bytes())


class Pe:
    """Offsets of the headers of a PE32+ file, for corrupting it on purpose."""

    def __init__(self, data):
        self.data = data
        self.lfanew = struct.unpack_from("<I", data, 60)[0]
        self.nsections, = struct.unpack_from("<H", data, self.lfanew + 6)
        self.optsize, = struct.unpack_from("<H", data, self.lfanew + 20)
        self.opt = self.lfanew + 24
        self.sections = self.opt + self.optsize
        self.section_end = self.sections + 40 * self.nsections

    def directory(self, index):
        return self.opt + 112 + 8 * index

    def section(self, i):
        off = self.sections + 40 * i
        name = bytes(self.data[off:off + 8]).rstrip(b"\0").decode()
        vsize, rva, rawsize, rawptr = struct.unpack_from("<IIII", self.data, off + 8)
        flags, = struct.unpack_from("<I", self.data, off + 36)
        return off, name, rva, rawsize, rawptr, flags

    def rva_to_offset(self, rva):
        for i in range(self.nsections):
            _, _, srva, rawsize, rawptr, _ = self.section(i)
            if srva <= rva < srva + rawsize:
                return rawptr + rva - srva
        raise KeyError(rva)


def load_bytes(tmp_path, data, name="bad.sys"):
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return DriverImage.load(path)


def expect_one_line(tmp_path, data, match):
    before = mappings()
    with pytest.raises(ImageError) as info:
        load_bytes(tmp_path, data).close()
    message = str(info.value)
    print(message)
    assert "\n" not in message
    assert match in message
    assert mappings() == before          # nothing of the image stayed mapped
    return message


def test_good_image_loads_and_runs_driver_entry(load):
    image = load("dbgprint")
    assert image.base and image.size >= 4096
    assert image.log()[0] == "lu=4000000000 then=next"


def test_every_unresolved_import_is_reported_and_nothing_runs():
    before = mappings()
    with pytest.raises(UnresolvedImportsError) as info:
        DriverImage.load(drivers.testing_path("missing"))
    assert sorted(info.value.imports) == [
        "NDIS.SYS!NdisFrobnicateWidget",
        "NDIS.SYS!NdisMIndicateMagicPacket",
        "ntoskrnl.exe!KeQueryImaginaryCounter",
    ]
    assert "3 unresolved imports" in str(info.value)
    assert mappings() == before


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImageError, match="No such file"):
        DriverImage.load(tmp_path / "nope.sys")


def boundaries():
    pe = Pe(image_bytes())
    _, _, _, rawsize, rawptr, _ = pe.section(0)
    return {
        "empty": 0,
        "inside DOS header": 40,
        "end of DOS header": 64,
        "PE signature": pe.lfanew + 2,
        "file header": pe.lfanew + 20,
        "optional header": pe.opt + 60,
        "data directories": pe.opt + pe.optsize - 8,
        "section table": pe.sections + 20,
        "last section header": pe.section_end - 1,
        "first section's data": rawptr + rawsize - 1,
    }


@pytest.mark.parametrize("where", list(boundaries()))
def test_truncated_at_each_header_boundary(tmp_path, where):
    data = image_bytes()[:boundaries()[where]]
    expect_one_line(tmp_path, data, "")


def test_not_a_pe(tmp_path):
    expect_one_line(tmp_path, b"\x7fELF" + bytes(200), "no MZ signature")


def test_other_machine_is_refused_by_name(tmp_path):
    data = image_bytes()
    struct.pack_into("<H", data, Pe(data).lfanew + 4, 0x014C)
    expect_one_line(tmp_path, data, "wrong machine 0x014c (i386)")


def test_pe32_is_refused(tmp_path):
    data = image_bytes()
    struct.pack_into("<H", data, Pe(data).opt, 0x10B)
    expect_one_line(tmp_path, data, "not PE32+")


def test_writable_executable_section_is_refused(tmp_path):
    data = image_bytes()
    pe = Pe(data)
    off, name, *_ , flags = pe.section(0)
    struct.pack_into("<I", data, off + 36, flags | 0xA0000000)
    expect_one_line(tmp_path, data, f"section {name} is both writable and executable")


def test_tls_directory_is_refused(tmp_path):
    data = image_bytes()
    pe = Pe(data)
    _, _, rva, *_ = pe.section(1)
    struct.pack_into("<II", data, pe.directory(9), rva, 40)
    expect_one_line(tmp_path, data, "TLS directory")


def test_relocation_target_outside_image(tmp_path):
    data = image_bytes()
    pe = Pe(data)
    _, _, rva, rawsize, rawptr, _ = pe.section(1)      # .rdata: room for a block
    struct.pack_into("<IIH", data, rawptr, 0x7FFF0000, 10, 0xA000)
    struct.pack_into("<II", data, pe.directory(5), rva, 10)
    expect_one_line(tmp_path, data, "relocation target RVA 0x7fff0000 lies outside the image")


def test_relocation_directory_outside_image(tmp_path):
    data = image_bytes()
    struct.pack_into("<II", data, Pe(data).directory(5), 0x7FFFF000, 64)
    expect_one_line(tmp_path, data, "data directory 5")


def import_descriptor(data):
    pe = Pe(data)
    rva, _ = struct.unpack_from("<II", data, pe.directory(1))
    return pe.rva_to_offset(rva)


def test_import_name_outside_image(tmp_path):
    data = image_bytes()
    struct.pack_into("<I", data, import_descriptor(data) + 12, 0x7FFFFFF0)
    expect_one_line(tmp_path, data, "import module name RVA 0x7ffffff0 lies outside the image")


def test_import_thunk_outside_image(tmp_path):
    data = image_bytes()
    struct.pack_into("<I", data, import_descriptor(data), 0x7FFFFFF0)
    expect_one_line(tmp_path, data, "import table of NDIS.SYS runs outside the image")


def test_ordinal_import_is_refused(tmp_path):
    data = image_bytes()
    pe = Pe(data)
    lookup, = struct.unpack_from("<I", data, import_descriptor(data))
    struct.pack_into("<Q", data, pe.rva_to_offset(lookup), (1 << 63) | 17)
    expect_one_line(tmp_path, data, "ordinal import NDIS.SYS!#17 is not supported")


def test_section_outside_image(tmp_path):
    data = image_bytes()
    off, name, *_ = Pe(data).section(0)
    struct.pack_into("<I", data, off + 12, 0x7FFF0000)
    expect_one_line(tmp_path, data, f"section {name}")


def test_driver_entry_runs_once(load):
    image = load("dbgprint")
    with pytest.raises(ValueError, match="already ran"):
        image.run_driver_entry()


# ---- what MSVC-built drivers bring --------------------------------------------------------

DEFAULT_SECURITY_COOKIE = 0x2B992DDFA232
MASK64 = (1 << 64) - 1


def gs_cookie(image):
    """(cookie, complement) as gs.sys's GsDriverEntry printed them."""
    line, = (line for line in image.log() if line.startswith("gs.sys: cookie"))
    _, _, cookie, _, complement = line.split()
    return int(cookie, 16), int(complement, 16)


def load_config_offset(data):
    pe = Pe(data)
    rva, size = struct.unpack_from("<II", data, pe.directory(10))
    assert size >= 0x60, "gs.sys is built with a load config directory"
    return pe.rva_to_offset(rva)


def test_loader_gives_each_gs_image_a_random_cookie(load):
    first, second = gs_cookie(load("gs")), gs_cookie(load("gs"))
    for cookie, complement in (first, second):
        print(f"cookie 0x{cookie:x}")
        assert cookie not in (0, DEFAULT_SECURITY_COOKIE)
        assert cookie >> 48 == 0                    # as Windows' x64 loader keeps it
        assert complement == ~cookie & MASK64       # __security_init_cookie ran
    assert first[0] != second[0]


def test_gs_image_without_load_config_fails_its_cookie_check(tmp_path):
    data = image_bytes("gs")
    struct.pack_into("<II", data, Pe(data).directory(10), 0, 0)
    with pytest.raises(BugCheckFault) as info:
        load_bytes(tmp_path, data, "gs.sys")
    message = str(info.value)
    print(message)
    assert "bug check in DriverEntry of gs.sys __fastfail(6): FAST_FAIL_GS_COOKIE_INIT" in message
    assert "(instruction cd 29: int 0x29: __fastfail)" in message


def test_cookie_the_image_chose_is_left_alone(tmp_path):
    data = image_bytes("gs")
    va, = struct.unpack_from("<Q", data, load_config_offset(data) + 0x58)
    base, = struct.unpack_from("<Q", data, Pe(data).opt + 24)
    struct.pack_into("<Q", data, Pe(data).rva_to_offset(va - base), 0x1234_5678_9ABC)
    with load_bytes(tmp_path, data, "gs.sys") as image:
        assert gs_cookie(image)[0] == 0x1234_5678_9ABC


def test_cookie_outside_the_image_is_refused(tmp_path):
    data = image_bytes("gs")
    pe = Pe(data)
    base, = struct.unpack_from("<Q", data, pe.opt + 24)
    size, = struct.unpack_from("<I", data, pe.opt + 56)
    struct.pack_into("<Q", data, load_config_offset(data) + 0x58, base + size + 0x1000)
    expect_one_line(tmp_path, data, f"load config SecurityCookie VA 0x{base + size + 0x1000:x}"
                                    " lies outside the image")


@pytest.mark.parametrize("parameters, text", [
    ({"NameLength": 24},
     "__fastfail(2): FAST_FAIL_STACK_COOKIE_CHECK_FAILURE: a /GS stack cookie was overwritten"
     " (bug check 0x139 KERNEL_SECURITY_CHECK_FAILURE) at gs.sys+0x"),
    ({"NameLength": 24, "GsBugCheck": 1},
     "DRIVER_OVERRAN_STACK_BUFFER: a /GS stack cookie was overwritten at gs.sys+0x"),
])
def test_overwritten_stack_cookie_is_a_named_bug_check(load, parameters, text):
    image = load("gs")
    image.create_adapter().initialize()                 # 16 bytes fit
    assert image.log()[-1].startswith("gs.sys: name checksum ")
    image = load("gs")
    with pytest.raises(BugCheckFault) as info:
        image.create_adapter(parameters=parameters).initialize()
    print(info.value)
    assert "bug check in MiniportInitialize of gs.sys" in str(info.value)
    assert text in str(info.value)


def test_structured_exception_handling_is_refused_by_name(tmp_path):
    message = expect_one_line(tmp_path, image_bytes("seh"),
                              "structured exception handling (__try/__except) is not "
                              "supported: the image imports ntoskrnl.exe!__C_specific_handler")
    assert message.startswith("bad.sys: ")


def helper_checksum(data):
    total = 0
    for byte in data:
        total = (total * 31 + byte) & 0xFFFFFFFF
    return total


def test_helper_dll_beside_the_driver_is_loaded_and_initialised(load):
    image = load("usehelper")
    assert image.helpers == ("nphelper.dll",)
    assert image.log() == [
        "nphelper.dll: DllInitialize "
        "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\nphelper",
        # NpHelperVersion imported by ordinal; DllInitialize ran once, first
        f"usehelper.sys: version 10001 checksum {helper_checksum(b'ndisproxy')}",
    ]
    image.create_adapter().initialize()
    assert image.log()[-1] == f"usehelper.sys: checksum {helper_checksum(b'ndisproxy')}"


def test_fault_inside_a_helper_dll_names_the_dll(load):
    adapter = load("usehelper").create_adapter(parameters={"ChecksumAddress": 0x10})
    with pytest.raises(AccessViolationFault) as info:
        adapter.initialize()
    assert info.value.where.startswith("nphelper.dll+0x")
    assert "in MiniportInitialize of usehelper.sys at nphelper.dll+0x" in str(info.value)


def copy_driver(tmp_path, name, helper_as=None):
    path = tmp_path / f"{name}.sys"
    path.write_bytes(drivers.testing_path(name).read_bytes())
    if helper_as:
        (tmp_path / helper_as).write_bytes(helper_bytes())
    return path


def helper_bytes():
    return drivers.testing_path("usehelper").with_name("nphelper.dll").read_bytes()


def test_helper_dll_name_matches_in_any_case(tmp_path):
    with DriverImage.load(copy_driver(tmp_path, "usehelper", "NPHelper.DLL")) as image:
        assert image.helpers == ("nphelper.dll",)


def test_helper_dll_can_be_handed_over_as_bytes(tmp_path):
    path = copy_driver(tmp_path, "usehelper")
    with DriverImage.load(path, helpers={"NPHELPER.DLL": helper_bytes()}) as image:
        assert image.log()[-1].startswith("usehelper.sys: version 10001")


def test_missing_helper_dll_leaves_its_imports_unresolved(tmp_path):
    before = mappings()
    with pytest.raises(UnresolvedImportsError) as info:
        DriverImage.load(copy_driver(tmp_path, "usehelper"))
    assert info.value.imports == ["nphelper.dll!NpHelperChecksum", "nphelper.dll!#2"]
    assert mappings() == before


def test_forwarded_export_is_refused_by_name():
    before = mappings()
    with pytest.raises(ImageError) as info:
        DriverImage.load(drivers.testing_path("usefwd"))       # nphelper.dll beside it
    assert str(info.value) == (
        "usefwd.sys: nphelper.dll!NpHelperForwarded is forwarded to NTOSKRNL.RtlCompareMemory: "
        "forwarded exports are not supported")
    assert mappings() == before


def test_failing_dll_initialize_stops_the_load_by_name(tmp_path):
    helper = bytearray(helper_bytes())
    knob = helper.index(struct.pack("<I", 0x4B504E4B))           # nphelper_knob
    struct.pack_into("<I", helper, knob + 4, 0xC0000001)
    path = copy_driver(tmp_path, "usehelper")
    before = mappings()
    with pytest.raises(DriverStatusError, match=r"^DllInitialize of nphelper\.dll \(imported by "
                                                r"usehelper\.sys\) returned "):
        DriverImage.load(path, helpers={"nphelper.dll": helper})
    assert mappings() == before


@pytest.mark.parametrize("damage, text", [
    (lambda dll: dll[:300], "helper DLL nphelper.dll: truncated image"),
    (lambda dll: dll.replace(b"ntoskrnl.exe", b"ntoskrnl.exf"),
     "helper DLL nphelper.dll: imports ntoskrnl.exf, but a helper DLL may import only "
     "NDIS.SYS, ntoskrnl.exe and HAL.dll"),
])
def test_bad_helper_dll_is_named(tmp_path, damage, text):
    path = copy_driver(tmp_path, "usehelper")
    before = mappings()
    with pytest.raises(ImageError) as info:
        DriverImage.load(path, helpers={"nphelper.dll": damage(helper_bytes())})
    print(info.value)
    assert str(info.value).startswith(f"usehelper.sys: {text}")
    assert mappings() == before


def expected_page_protections(data):
    """Page index -> "rwx"-style protection, computed from the section table:
    the union of what the headers and each section on the page need."""
    pe = Pe(data)
    headers, = struct.unpack_from("<I", data, pe.opt + 60)
    size_of_image, = struct.unpack_from("<I", data, pe.opt + 56)
    pages = {p: set("r") for p in range(-(-headers // 4096))}
    for i in range(pe.nsections):
        off, _, rva, rawsize, _, flags = pe.section(i)
        vsize, = struct.unpack_from("<I", data, off + 8)
        vsize = vsize or rawsize
        need = {"r"} if flags & 0x40000000 else set()
        need |= {"r", "w"} if flags & 0x80000000 else set()
        need |= {"r", "x"} if flags & 0x20000000 else set()
        for p in range(rva // 4096, -(-(rva + vsize) // 4096)):
            pages.setdefault(p, set()).update(need)
    return {p: "".join(c if c in pages.get(p, "rw") else "-" for c in "rwx")
            for p in range(-(-size_of_image // 4096))}


def mapped_page_protections(base, size):
    found = {}
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            for addr in range(max(lo, base), min(hi, base + size), 4096):
                found[(addr - base) // 4096] = perms[:3]
    return found


def test_section_alignment_below_page_size_merges_protections_per_page(load):
    data = image_bytes("smallalign")
    assert struct.unpack_from("<II", data, Pe(data).opt + 32) == (0x200, 0x200)
    image = load("smallalign")
    # 12 KiB table, counter and buffer: .rdata, .data and .bss all read right.
    assert image.log() == ["smallalign.sys: sum 20294 calls 101 scratch 69"]
    expected = expected_page_protections(data)
    print(expected)
    assert set(expected.values()) == {"r-x", "rwx", "r--", "rw-"}
    assert mapped_page_protections(image.base, image.size) == expected
    assert image.wx_pages == list(expected.values()).count("rwx")


def test_a_writable_section_laid_over_the_code_is_refused(tmp_path):
    data = image_bytes()
    pe = Pe(data)
    sections = [pe.section(i) for i in range(pe.nsections)]
    code = next(s for s in sections if s[5] & 0x20000000)
    index, (data_off, data_name, *_) = next((i, s) for i, s in enumerate(sections)
                                            if s[5] & 0x80000000)
    struct.pack_into("<I", data, data_off + 12, code[2])       # its RVA: the code's
    expect_one_line(tmp_path, data, f"malformed image: section {data_name} (RVA "
                                    f"0x{code[2]:x}) overlaps section {sections[index - 1][1]} "
                                    "or precedes it")


def stripped(data, image_base=None):
    pe = Pe(data)
    characteristics, = struct.unpack_from("<H", data, pe.lfanew + 22)
    struct.pack_into("<H", data, pe.lfanew + 22, characteristics | 0x0001)
    if image_base is not None:
        struct.pack_into("<Q", data, pe.opt + 24, image_base)
    return data


def test_stripped_relocations_load_at_the_preferred_base(tmp_path):
    data = stripped(image_bytes("dbgprint"))
    base, = struct.unpack_from("<Q", data, Pe(data).opt + 24)
    with load_bytes(tmp_path, data, "dbgprint.sys") as image:
        assert image.base == base
        assert image.log()[0] == "lu=4000000000 then=next"
        # A second copy cannot go anywhere else.
        expect_one_line(tmp_path, data, "relocations stripped (IMAGE_FILE_RELOCS_STRIPPED) and "
                                        f"the preferred base 0x{base:x} is taken")


def test_stripped_relocations_with_a_kernel_base_are_refused(tmp_path):
    data = stripped(image_bytes(), image_base=0xFFFFF880_01000000)
    expect_one_line(tmp_path, data, "relocations stripped (IMAGE_FILE_RELOCS_STRIPPED) and the "
                                    "preferred base 0xfffff88001000000 is not user address space")
