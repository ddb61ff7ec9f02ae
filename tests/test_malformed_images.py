"""A corpus of damaged driver images, made from mocknic.sys by named
corruptions, through the loader and through ``ndisproxy driver info``:
each is one line of error, exit status 1 or 2, no crash, no hang, no
traceback.  The corpus is fixed (no randomness): every run checks the same
images."""
import json
import struct
import subprocess
import sys
import textwrap

import pytest

from ndisproxy import drivers

DIR_IMPORT, DIR_BASERELOC = 1, 5


class Pe:
    """Offsets into a PE32+ file, for corrupting it."""

    def __init__(self, data):
        self.data = bytearray(data)
        self.lfanew = struct.unpack_from("<I", data, 0x3C)[0]
        self.coff = self.lfanew + 4
        self.opt = self.lfanew + 24
        self.opt_size = struct.unpack_from("<H", data, self.coff + 16)[0]
        self.nsections = struct.unpack_from("<H", data, self.coff + 2)[0]
        self.sections = self.opt + self.opt_size

    def directory(self, index):
        return self.opt + 112 + 8 * index

    def section(self, index):
        return self.sections + 40 * index

    def put(self, fmt, offset, *values):
        struct.pack_into(fmt, self.data, offset, *values)
        return self

    def file_offset(self, rva):
        for i in range(self.nsections):
            vsize, va, raw_size, raw = struct.unpack_from("<IIII", self.data,
                                                          self.section(i) + 8)
            if va <= rva < va + max(vsize, raw_size):
                return raw + rva - va
        raise ValueError(hex(rva))


def header_boundaries(pe):
    cuts = {0, 2, 63, 64, pe.lfanew, pe.lfanew + 4, pe.lfanew + 24, pe.lfanew + 26,
            pe.opt + 112, pe.sections, pe.sections + 40 * pe.nsections}
    for i in range(pe.nsections):
        raw_size, raw = struct.unpack_from("<II", pe.data, pe.section(i) + 16)
        if raw_size:
            cuts |= {raw, raw + raw_size // 2, raw + raw_size - 1}
    return sorted(c for c in cuts if 0 <= c < len(pe.data))


def corpus():
    """{name: bytes} of damaged images."""
    original = drivers.path("mocknic").read_bytes()
    fresh = lambda: Pe(original)       # noqa: E731
    images = {f"cut-at-{cut:#x}": original[:cut] for cut in header_boundaries(fresh())}
    pe = fresh()
    import_rva = struct.unpack_from("<I", pe.data, pe.directory(DIR_IMPORT))[0]
    descriptor = pe.file_offset(import_rva)
    name_rva = struct.unpack_from("<I", pe.data, descriptor + 12)[0]
    lookup_rva = struct.unpack_from("<I", pe.data, descriptor)[0]
    first_name = struct.unpack_from("<Q", pe.data, pe.file_offset(lookup_rva))[0]
    images.update({
        "import-directory-outside": fresh().put("<I", fresh().directory(DIR_IMPORT),
                                                0x7FFFFF00).data,
        "import-module-name-outside": fresh().put("<I", descriptor + 12, 0x7FFFFF00).data,
        "import-lookup-table-outside": fresh().put("<II", descriptor, 0x7FFFFF00, 0).put(
            "<I", descriptor + 16, 0x7FFFFF00).data,
        "import-name-outside": fresh().put("<Q", pe.file_offset(lookup_rva),
                                           0x7FFFFF00).data,
        "reloc-directory-outside": fresh().put("<I", fresh().directory(DIR_BASERELOC),
                                               0x7FFFFF00).data,
        "size-of-image-absurd": fresh().put("<I", fresh().opt + 56, 0xFFFFF000).data,
        "size-of-headers-absurd": fresh().put("<I", fresh().opt + 60, 0x7FFFFFFF).data,
        "sections-absurd": fresh().put("<H", fresh().coff + 2, 0xFFFF).data,
        "no-sections": fresh().put("<H", fresh().coff + 2, 0).data,
        "section-size-absurd": fresh().put("<I", fresh().section(0) + 8, 0xFFFFFFF0).data,
        "section-raw-data-outside": fresh().put("<I", fresh().section(0) + 20,
                                                0x7FFFFFF0).data,
        "entry-point-outside": fresh().put("<I", fresh().opt + 16, 0x7FFFFFF0).data,
        "optional-header-size-absurd": fresh().put("<H", fresh().coff + 16, 0xFFFF).data,
        "not-pe32plus": fresh().put("<H", fresh().opt, 0x107).data,
        "e-lfanew-outside": fresh().put("<I", 0x3C, 0x7FFFFFF0).data,
    })
    # Two sections at the same address.
    pe = fresh()
    va0 = struct.unpack_from("<I", pe.data, pe.section(0) + 12)[0]
    images["sections-overlap"] = pe.put("<I", pe.section(1) + 12, va0).data
    # A module name and a function name with no NUL before their section ends.
    for what, rva in (("module", name_rva), ("function", first_name + 2)):
        pe = fresh()
        at = pe.file_offset(rva)
        end = next(raw + size for raw, size in (struct.unpack_from("<II", pe.data,
                                                                    pe.section(i) + 20)[::-1]
                                                for i in range(pe.nsections))
                   if raw <= at < raw + size)
        pe.data[at:end] = b"A" * (end - at)
        images[f"import-{what}-name-unterminated"] = pe.data
    # A relocation block that claims more than the directory holds.
    pe = fresh()
    reloc_rva, reloc_size = struct.unpack_from("<II", pe.data, pe.directory(DIR_BASERELOC))
    if reloc_size:
        images["reloc-block-size-absurd"] = pe.put("<I", pe.file_offset(reloc_rva) + 4,
                                                   0xFFFFFFF0).data
    return {name: bytes(data) for name, data in images.items()}


LOADER = textwrap.dedent("""
    import json, sys
    from ndisproxy import DriverImage, errors
    results = {}
    for name, path in json.loads(sys.stdin.read()).items():
        try:
            DriverImage.load(path, run_driver_entry=False).close()
            results[name] = None
        except errors.NdisProxyError as exc:
            results[name] = [type(exc).__name__, str(exc)]
    print(json.dumps(results))
""")


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    directory = tmp_path_factory.mktemp("damaged")
    paths = {}
    for name, data in corpus().items():
        paths[name] = directory / f"{name}.sys"
        paths[name].write_bytes(data)
    return paths


def test_the_corpus_names_every_kind_of_damage(damaged):
    kinds = {"cut-at", "outside", "absurd", "unterminated", "overlap"}
    # (NumberOfRvaAndSizes above 16 is not damage: Windows reads the first 16.)
    assert all(any(kind in name for name in damaged) for kind in kinds), sorted(damaged)
    assert len(damaged) >= 40


def test_the_loader_refuses_each_in_one_line(damaged):
    # In a child: a crash there is a finding, not the end of the test run.
    result = subprocess.run([sys.executable, "-c", LOADER], input=json.dumps(
        {name: str(path) for name, path in damaged.items()}), capture_output=True, text=True,
        timeout=120, cwd="/")
    assert result.returncode == 0, f"the loader crashed: {result.returncode}\n{result.stderr}"
    results = json.loads(result.stdout)
    loaded = [name for name, error in results.items() if error is None]
    assert loaded == [], f"damaged images that loaded: {loaded}"
    for name, (kind, message) in results.items():
        assert kind in ("ImageError", "ImageFormatError", "UnresolvedImportsError"), \
            (name, kind, message)
        assert "\n" not in message and message.startswith(f"{name}.sys: "), (name, message)


def test_driver_info_says_one_line_and_exits_1_or_2(damaged):
    for name, path in damaged.items():
        result = subprocess.run([sys.executable, "-m", "ndisproxy", "driver", "info", str(path)],
                                capture_output=True, text=True, timeout=60, cwd="/")
        assert result.returncode in (1, 2), (name, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout, (name, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{name}.sys: "), (name, result.stderr)
