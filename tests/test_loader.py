"""The PE loader: good images bind, bad ones give one line and leave nothing."""
import struct

import pytest

from ndisproxy import DriverImage, ImageError, UnresolvedImportsError, drivers
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
