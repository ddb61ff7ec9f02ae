"""Fuzzing driver images: mocknic.sys truncated, bit-flipped, its headers mutated.

ndisproxy.driver.DriverImage.load() of the bytes either gives an image or
an ImageError of one line naming the file; never another exception, a
crash or a hang.  The loader runs in a worker process
(tests/image_load_worker.py), so a crash is reported with the image that
caused it instead of ending the test run.  DriverEntry is not run: a
mutated image's code is the driver's business, trapped by the runtime;
the loader's checks (csrc/pe.c) are the boundary fuzzed here.
Regressions live in tests/fuzz_corpus/images/*.json as edits of mocknic.sys.
"""
import json
import os
import select
import struct
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndisproxy import drivers

from .fuzzing import budget, corpus, one_line

pytestmark = pytest.mark.fuzz("driver images")

SEED = drivers.path("mocknic").read_bytes()
TIMEOUT = 10


class Worker:
    """The loader in a process of its own; restarted after it dies."""

    def __init__(self):
        self.process = None

    def load(self, data):
        """{"loaded": size} or {"error": ..., "message": ...}; AssertionError
        naming the image if the worker died or hung on it."""
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-I", os.path.join(os.path.dirname(__file__),
                                                    "image_load_worker.py")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
        try:
            self.process.stdin.write(struct.pack("<I", len(data)) + data)
            self.process.stdin.flush()
            ready, _, _ = select.select([self.process.stdout], [], [], TIMEOUT)
            line = self.process.stdout.readline() if ready else b""
        except BrokenPipeError:
            line = b""
        if line:
            return json.loads(line)
        hung = self.process.poll() is None
        self.process.kill()
        _, stderr = self.process.communicate()
        status = self.process.returncode
        self.process = None
        raise AssertionError(f"the loader {'hung' if hung else f'died ({status})'} on a "
                             f"{len(data)}-byte image: {stderr.decode(errors='replace')[-2000:]}")

    def close(self):
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def worker():
    worker = Worker()
    yield worker
    worker.close()


def check(worker, data):
    reply = worker.load(data)
    if "error" in reply:
        assert reply["error"] in ("ImageError", "UnresolvedImportsError"), reply
        assert one_line(reply["message"]), reply["message"]
        assert reply["message"].startswith("fuzzed.sys: "), reply["message"]
    return reply


# -- where mocknic.sys keeps what the loader reads -----------------------------------


def _u16(offset):
    return struct.unpack_from("<H", SEED, offset)[0]


def _u32(offset):
    return struct.unpack_from("<I", SEED, offset)[0]


def fields():
    """[(name, offset, size)] of every header field csrc/pe.c reads."""
    pe = _u32(60)
    opt = pe + 24
    found = [("e_lfanew", 60, 4), ("Signature", pe, 4), ("Machine", pe + 4, 2),
             ("NumberOfSections", pe + 6, 2), ("SizeOfOptionalHeader", pe + 20, 2),
             ("Magic", opt, 2), ("AddressOfEntryPoint", opt + 16, 4),
             ("ImageBase", opt + 24, 8), ("SizeOfImage", opt + 56, 4),
             ("SizeOfHeaders", opt + 60, 4), ("NumberOfRvaAndSizes", opt + 108, 4)]
    for i in range(16):
        found += [(f"dir[{i}].rva", opt + 112 + 8 * i, 4), (f"dir[{i}].size", opt + 116 + 8 * i, 4)]
    sections = opt + _u16(pe + 20)
    for i in range(_u16(pe + 6)):
        at = sections + 40 * i
        found += [(f"section[{i}].{name}", at + off, size) for name, off, size in (
            ("Name", 0, 8), ("VirtualSize", 8, 4), ("VirtualAddress", 12, 4),
            ("SizeOfRawData", 16, 4), ("PointerToRawData", 20, 4),
            ("Characteristics", 36, 4))]
    return found + imports_and_relocations(opt, sections)


def _file_offset(rva, sections, count):
    for i in range(count):
        at = sections + 40 * i
        va, raw, ptr = _u32(at + 12), _u32(at + 16), _u32(at + 20)
        if va <= rva < va + raw:
            return ptr + rva - va
    return None


def imports_and_relocations(opt, sections):
    """Import descriptors, their thunks and names; relocation blocks."""
    count = _u16(_u32(60) + 6)
    found = []
    at = _file_offset(_u32(opt + 112 + 8), sections, count)
    for d in range(_u32(opt + 116 + 8) // 20):
        desc = at + 20 * d
        if not any(SEED[desc:desc + 20]):
            break
        found += [(f"import[{d}].lookup", desc, 4), (f"import[{d}].name", desc + 12, 4),
                  (f"import[{d}].iat", desc + 16, 4)]
        name = _file_offset(_u32(desc + 12), sections, count)
        found.append((f"import[{d}].module", name, len(SEED[name:].split(b"\0")[0])))
        thunk = _file_offset(_u32(desc) or _u32(desc + 16), sections, count)
        for i in range(3):
            found.append((f"import[{d}].thunk[{i}]", thunk + 8 * i, 8))
            hint = _file_offset(_u32(thunk + 8 * i), sections, count)
            if hint is not None:
                found.append((f"import[{d}].thunk[{i}].name", hint + 2,
                              len(SEED[hint + 2:].split(b"\0")[0])))
    reloc = _file_offset(_u32(opt + 112 + 8 * 5), sections, count)
    if reloc is not None:
        found += [("reloc.page", reloc, 4), ("reloc.block", reloc + 4, 4),
                  ("reloc.entry[0]", reloc + 8, 2), ("reloc.entry[1]", reloc + 10, 2)]
    return found


FIELDS = fields()
HEADERS = _u32(_u32(60) + 24 + 60)


def interesting(old, size):
    """Values a field of ``size`` bytes holding ``old`` is worth trying."""
    top = (1 << (8 * size)) - 1
    values = {0, 1, 2, 8, 0x7F, 0x80, 0xFF, 0x1000, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
              top, top - 1, len(SEED), len(SEED) - 1, _u32(_u32(60) + 24 + 56),
              old, old + 1, old - 1, old * 2, old >> 1}
    return st.sampled_from(sorted(v for v in values if 0 <= v <= top)) | st.integers(0, top)


def _edit(name, offset, size):
    """(offset, new bytes) for one field: names get bytes (newlines among
    them), numbers get interesting values."""
    if name.endswith((".module", ".name", "Name")):
        values = st.binary(min_size=size, max_size=size) \
            | st.sampled_from((b"\n" * size, (b"A\r\nB" * size)[:size], bytes(size)))
    else:
        old = int.from_bytes(SEED[offset:offset + size], "little")
        values = interesting(old, size).map(lambda value: value.to_bytes(size, "little"))
    return st.tuples(st.just(offset), values)


# One strategy per field, built once (building them per draw is slow).
field_edit = st.one_of([_edit(*field) for field in FIELDS])


@st.composite
def images(draw):
    """mocknic.sys after header-field edits, bit flips and a truncation."""
    data = bytearray(SEED)
    for offset, value in draw(st.lists(field_edit, max_size=4)):
        data[offset:offset + len(value)] = value
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, HEADERS - 1) | st.integers(0, len(data) - 1))
        data[at] ^= 1 << draw(st.integers(0, 7))
    if draw(st.integers(0, 4)) == 0:
        del data[draw(st.integers(0, len(data))):]
    return bytes(data)


def apply(edits):
    """tests/fuzz_corpus/images/*.json: {"set": {FIELD: hex}, "truncate":
    length} applied to mocknic.sys, fields named as fields() names them
    (offsets would move whenever the mock driver is rebuilt)."""
    data = bytearray(SEED)
    where = {name: offset for name, offset, _ in FIELDS}
    for name, value in edits.get("set", {}).items():
        value = bytes.fromhex(value)
        data[where[name]:where[name] + len(value)] = value
    if "truncate" in edits:
        del data[edits["truncate"]:]
    return bytes(data)


CASES = [(name, json.loads(text)) for name, text in corpus("images")]


def test_the_seed_loads(worker):
    assert check(worker, SEED) == {"loaded": _u32(_u32(60) + 24 + 56)}


@pytest.mark.parametrize("edits", [e for _, e in CASES], ids=[n for n, _ in CASES])
def test_corpus(worker, edits):
    check(worker, apply(edits))


@budget(600)
@given(data=images())
def test_mutated_images(worker, fuzzed, data):
    fuzzed()
    check(worker, data)


@budget(100)
@given(length=st.integers(0, len(SEED)))
def test_every_truncation(worker, fuzzed, length):
    fuzzed()
    check(worker, SEED[:length])
