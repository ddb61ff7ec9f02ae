"""Cross-check our NDIS headers against mingw-w64's DDK headers.

The drivers ndisproxy loads are real Windows binaries, compiled against
Microsoft's DDK.  Every constant they pass us (NDIS_STATUS codes, OIDs,
filter and attribute bits, enumerators) and every structure they reach
into (NDIS_MINIPORT_BLOCK handlers, NDIS_PACKET, MDL, ...) must therefore
have exactly the value and the layout the DDK gives it.  We cannot ship or
read Microsoft's headers, but mingw-w64 ships an independent DDK, so this
module compiles both with x86_64-w64-mingw32-gcc and compares:

(a) constants: every object-like macro of csrc/include/ndis_constants.h that
    mingw also defines (as a macro or an enumerator) must have the same value
    after conversion to unsigned long long, which also catches signedness
    (an NTSTATUS must sign-extend the way a LONG does).  Our header is also
    compiled with the host compiler, since the LP64 host and the LLP64
    target disagree on the width of `long`.
(b) layouts: sizeof and offsetof for the structures and fields in LAYOUTS
    must agree between mingw's DDK and our csrc/include/ndis.h, and mingw's
    must match the numbers in the table, which guards against the reference
    having been built in the wrong NDIS version mode.

Values are read back from the assembly (`-S`), so nothing is executed and no
Windows runtime is needed.  Without x86_64-w64-mingw32-gcc the module is
skipped, unless NDISPROXY_REQUIRE_TOOLCHAIN=1, in which case it fails: CI
sets that so that a broken toolchain cannot pass silently.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INCLUDE_DIR = REPO / "csrc" / "include"
CONSTANTS_H = INCLUDE_DIR / "ndis_constants.h"
NDIS_H = INCLUDE_DIR / "ndis.h"

MINGW_CC = "x86_64-w64-mingw32-gcc"
ARRAY = "ndisproxy_ref"

# Ours but not mingw's: checked by hand against other public DDK-derived
# headers instead.  A name missing from mingw that is not listed here is
# more likely a typo in our header than a gap in mingw, so it fails.
NOT_IN_MINGW = {
    # XP DDK names; later headers call them OID_GEN_NDIS_RESERVED_1/_2
    "OID_GEN_MINIPORT_INFO",
    "OID_GEN_RESET_VERIFY_PARAMETERS",
    # our own spelling of xfilter.h's ETH_LENGTH_OF_ADDRESS
    "NDIS_ETH_LENGTH_OF_ADDRESS",
    # ntddndis.h's task offload OID and version, not in mingw's headers
    "OID_TCP_TASK_OFFLOAD",
    "NDIS_TASK_OFFLOAD_VERSION",
}

# (struct, field or None for sizeof, value in the DDK for x64 NDIS 5.1)
_CHARACTERISTICS_FIELDS = [
    ("MajorNdisVersion", 0),
    ("MinorNdisVersion", 1),
    ("CheckForHangHandler", 8),
    ("DisableInterruptHandler", 16),
    ("EnableInterruptHandler", 24),
    ("HaltHandler", 32),
    ("HandleInterruptHandler", 40),
    ("InitializeHandler", 48),
    ("ISRHandler", 56),
    ("QueryInformationHandler", 64),
    ("ReconfigureHandler", 72),
    ("ResetHandler", 80),
    ("SendHandler", 88),
    ("SetInformationHandler", 96),
    ("TransferDataHandler", 104),
    ("ReturnPacketHandler", 112),
    ("SendPacketsHandler", 120),
    ("AllocateCompleteHandler", 128),
    ("CoCreateVcHandler", 136),
    ("CoDeleteVcHandler", 144),
    ("CoActivateVcHandler", 152),
    ("CoDeactivateVcHandler", 160),
    ("CoSendPacketsHandler", 168),
    ("CoRequestHandler", 176),
    ("CancelSendPacketsHandler", 184),
    ("PnPEventNotifyHandler", 192),
    ("AdapterShutdownHandler", 200),
]

LAYOUTS = [
    ("NDIS_MINIPORT_BLOCK", None, 752),
    ("NDIS_MINIPORT_BLOCK", "MiniportAdapterContext", 24),
    ("NDIS_MINIPORT_BLOCK", "PacketIndicateHandler", 432),
    ("NDIS_MINIPORT_BLOCK", "SendCompleteHandler", 440),
    ("NDIS_MINIPORT_BLOCK", "SendResourcesHandler", 448),
    ("NDIS_MINIPORT_BLOCK", "ResetCompleteHandler", 456),
    ("NDIS_MINIPORT_BLOCK", "EthRxIndicateHandler", 640),
    ("NDIS_MINIPORT_BLOCK", "EthRxCompleteHandler", 664),
    ("NDIS_MINIPORT_BLOCK", "StatusHandler", 688),
    ("NDIS_MINIPORT_BLOCK", "StatusCompleteHandler", 696),
    ("NDIS_MINIPORT_BLOCK", "TDCompleteHandler", 704),
    ("NDIS_MINIPORT_BLOCK", "QueryCompleteHandler", 712),
    ("NDIS_MINIPORT_BLOCK", "SetCompleteHandler", 720),
    ("NDIS_MINIPORT_CHARACTERISTICS", None, 240),
] + [
    ("NDIS_MINIPORT_CHARACTERISTICS", field, offset)
    for field, offset in _CHARACTERISTICS_FIELDS
] + [
    ("NDIS_PACKET", None, 104),
    ("NDIS_PACKET", "Private", 0),
    ("NDIS_PACKET", "MiniportReserved", 48),
    ("NDIS_PACKET", "WrapperReserved", 64),
    ("NDIS_PACKET", "ProtocolReserved", 96),
    ("NDIS_PACKET_PRIVATE", None, 48),
    ("NDIS_PACKET_PRIVATE", "PhysicalCount", 0),
    ("NDIS_PACKET_PRIVATE", "TotalLength", 4),
    ("NDIS_PACKET_PRIVATE", "Head", 8),
    ("NDIS_PACKET_PRIVATE", "Tail", 16),
    ("NDIS_PACKET_PRIVATE", "Pool", 24),
    ("NDIS_PACKET_PRIVATE", "Count", 32),
    ("NDIS_PACKET_PRIVATE", "Flags", 36),
    ("NDIS_PACKET_PRIVATE", "ValidCounts", 40),
    ("NDIS_PACKET_PRIVATE", "NdisPacketFlags", 41),
    ("NDIS_PACKET_PRIVATE", "NdisPacketOobOffset", 42),
    ("NDIS_PACKET_OOB_DATA", None, 40),
    ("NDIS_PACKET_OOB_DATA", "HeaderSize", 16),
    ("NDIS_PACKET_OOB_DATA", "SizeMediaSpecificInfo", 20),
    ("NDIS_PACKET_OOB_DATA", "MediaSpecificInformation", 24),
    ("NDIS_PACKET_OOB_DATA", "Status", 32),
    ("MDL", None, 48),
    ("MDL", "Next", 0),
    ("MDL", "Size", 8),
    ("MDL", "MdlFlags", 10),
    ("MDL", "MappedSystemVa", 24),
    ("MDL", "StartVa", 32),
    ("MDL", "ByteCount", 40),
    ("MDL", "ByteOffset", 44),
    ("UNICODE_STRING", None, 16),
    ("UNICODE_STRING", "Length", 0),
    ("UNICODE_STRING", "MaximumLength", 2),
    ("UNICODE_STRING", "Buffer", 8),
    ("NDIS_STRING", None, 16),
    ("NDIS_STRING", "Buffer", 8),
    ("NDIS_CONFIGURATION_PARAMETER", None, 24),
    ("NDIS_CONFIGURATION_PARAMETER", "ParameterType", 0),
    ("NDIS_CONFIGURATION_PARAMETER", "ParameterData", 8),
    ("NDIS_SPIN_LOCK", None, 16),
    ("NDIS_MINIPORT_TIMER", None, 160),
    ("NDIS_MINIPORT_INTERRUPT", None, 152),
    ("NDIS_PHYSICAL_ADDRESS", None, 8),
    ("NDIS_TASK_OFFLOAD_HEADER", None, 28),
    ("NDIS_TASK_OFFLOAD_HEADER", "OffsetFirstTask", 12),
    ("NDIS_TASK_OFFLOAD_HEADER", "EncapsulationFormat", 16),
    ("NDIS_TASK_OFFLOAD", None, 24),
    ("NDIS_TASK_OFFLOAD", "OffsetNextTask", 12),
    ("NDIS_TASK_OFFLOAD", "TaskBufferLength", 16),
    ("NDIS_TASK_OFFLOAD", "TaskBuffer", 20),
    ("NDIS_TASK_TCP_IP_CHECKSUM", None, 16),
    ("NDIS_TASK_TCP_IP_CHECKSUM", "V6Receive", 12),
    ("NDIS_TASK_TCP_LARGE_SEND", None, 16),
    ("NDIS_TASK_TCP_LARGE_SEND", "MinSegmentCount", 8),
    ("NDIS_TASK_TCP_LARGE_SEND", "IpOptions", 13),
    ("NDIS_TCP_IP_CHECKSUM_PACKET_INFO", None, 4),
]


class CompileError(Exception):
    pass


def _unavailable(reason):
    """Skip, or fail when the environment promises a working toolchain."""
    if os.environ.get("NDISPROXY_REQUIRE_TOOLCHAIN") == "1":
        pytest.fail(reason + " (NDISPROXY_REQUIRE_TOOLCHAIN=1)")
    pytest.skip(reason)


def _run(cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _search_dirs(cc):
    """The compiler's <...> include path: no install layout is assumed."""
    res = subprocess.run([cc, "-xc", "-E", "-v", "-"], input="",
                         capture_output=True, text=True)
    dirs, inside = [], False
    for line in res.stderr.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            break
        elif inside:
            dirs.append(Path(line.strip()))
    return dirs


def _host_cc():
    for cc in ("gcc", "cc"):
        path = shutil.which(cc)
        if not path:
            continue
        res = subprocess.run([path, "-dumpmachine"], capture_output=True,
                             text=True)
        if res.returncode == 0 and res.stdout.startswith("x86_64"):
            return path
    return None


# Little-endian byte widths of the data directives gas may use for the array
_DIRECTIVE_WIDTH = {
    ".quad": 8, ".8byte": 8,
    ".long": 4, ".int": 4, ".4byte": 4,
    ".value": 2, ".short": 2, ".word": 2, ".2byte": 2,
    ".byte": 1,
}


def _parse_array(asm, count):
    """Return the `count` 64-bit elements of ARRAY from gcc's assembly."""
    label = re.compile(r"^_?%s:\s*$" % ARRAY)
    data, inside = bytearray(), False
    for raw in asm.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not inside:
            inside = bool(label.match(line))
            continue
        if not line:
            continue
        if line.endswith(":"):
            break
        parts = line.split(None, 1)
        op, args = parts[0], (parts[1] if len(parts) > 1 else "")
        if op in (".zero", ".space"):
            data += bytes(int(args.split(",")[0], 0))
        elif op in _DIRECTIVE_WIDTH:
            width = _DIRECTIVE_WIDTH[op]
            for item in args.split(","):
                value = int(item.strip(), 0) & ((1 << (8 * width)) - 1)
                data += value.to_bytes(width, "little")
        else:
            break
    if not inside:
        raise CompileError("no %s in the assembly" % ARRAY)
    if len(data) != 8 * count:
        raise CompileError("%s has %d bytes, expected %d"
                           % (ARRAY, len(data), 8 * count))
    return [int.from_bytes(data[i:i + 8], "little")
            for i in range(0, len(data), 8)]


def _evaluate(cc, flags, prologue, entries, workdir, stem):
    """Evaluate C constant expressions with `cc`, dropping those that fail.

    `entries` maps keys to expressions.  Each expression sits on its own
    line, so a diagnostic's line number names the entry at fault; that is
    what lets one compile tell us which names a header does not define.
    Returns ({key: value}, {key: diagnostic lines}).
    """
    pending = dict(entries)
    failed = {}
    src = workdir / (stem + ".c")
    out = workdir / (stem + ".s")
    while True:
        lines = prologue.rstrip("\n").split("\n")
        lines.append("const unsigned long long %s[] = {" % ARRAY)
        first = len(lines) + 1
        keys = list(pending)
        for key in keys:
            lines.append("\t(unsigned long long)(%s)," % pending[key])
        # keeps the array non-empty when every entry has failed
        lines.append("\t0")
        lines.append("};")
        src.write_text("\n".join(lines) + "\n")
        res = _run([cc, *flags, "-S", "-w", "-O0", "-o", str(out), str(src)],
                   workdir)
        if res.returncode == 0:
            values = _parse_array(out.read_text(), len(keys) + 1)
            return dict(zip(keys, values)), failed
        bad = {}
        where = re.compile(r"%s:(\d+):" % re.escape(src.name))
        for diag in res.stderr.splitlines():
            for m in where.finditer(diag):
                idx = int(m.group(1)) - first
                if 0 <= idx < len(keys):
                    bad.setdefault(keys[idx], []).append(diag)
        if not bad:
            raise CompileError(res.stderr)
        for key, diags in bad.items():
            failed[key] = diags
            del pending[key]


def _our_constant_names():
    names = []
    define = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)(?!\()\s+\S")
    for line in CONSTANTS_H.read_text().splitlines():
        m = define.match(line)
        if m:
            names.append(m.group(1))
    return names


def _patch_ndis_h(text, ntddndis_text):
    """Make Debian's mingw-w64 (10.0.0) ddk/ndis.h compile.

    Patterns, not line numbers, so a fixed or moved upstream header passes
    through untouched.
    """
    # ntddndis.h already declares enum _NDIS_REQUEST_TYPE; a second
    # definition of the same tag is an error in C.
    enum = re.compile(r"typedef\s+enum\s+_NDIS_REQUEST_TYPE\s*\{[^}]*\}"
                      r"\s*NDIS_REQUEST_TYPE\b[^;]*;")
    if enum.search(ntddndis_text):
        text = enum.sub("", text)
    # A parameter list line that runs straight into the next IN/OUT
    # parameter has lost its comma (NdisMWanIndicateReceiveComplete).
    text = re.sub(r"(\b(?:IN|OUT)\s+(?:OUT\s+)?[A-Za-z_]\w*\s+\**\s*"
                  r"[A-Za-z_]\w*)(?=[ \t]*\n\s*(?:IN|OUT)\b)", r"\1,", text)
    return text


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("ddk_reference")


@pytest.fixture(scope="module")
def mingw_cc():
    cc = shutil.which(MINGW_CC)
    if not cc:
        _unavailable("%s not found on PATH" % MINGW_CC)
    return cc


@pytest.fixture(scope="module")
def mingw_ddk(mingw_cc, workdir):
    """(prologue, flags) for a translation unit that sees mingw's DDK."""
    for incdir in _search_dirs(mingw_cc):
        ddk = incdir / "ddk"
        if (ddk / "ndis.h").is_file() and (incdir / "ntddndis.h").is_file():
            break
    else:
        _unavailable("mingw-w64 DDK headers (ddk/ndis.h) not found")

    patched = workdir / "patched"
    patched.mkdir(exist_ok=True)
    (patched / "ndis.h").write_text(_patch_ndis_h(
        (ddk / "ndis.h").read_text(errors="replace"),
        (incdir / "ntddndis.h").read_text(errors="replace")))
    # the patched copy must shadow the original for every <ndis.h>
    flags = ["-I", str(patched), "-I", str(ddk)]
    prologue = ("#define NDIS_MINIPORT_DRIVER 1\n"
                "#define NDIS51_MINIPORT 1\n"
                "#define NDIS51 1\n"
                "#include <ntddk.h>\n"
                "#include <ndis.h>\n")
    probe = workdir / "probe.c"
    probe.write_text(prologue + "int ndisproxy_probe;\n")
    res = _run([mingw_cc, *flags, "-fsyntax-only", "-w", str(probe)],
               workdir)
    if res.returncode != 0:
        _unavailable("mingw-w64's ddk/ndis.h does not compile even "
                     "after patching:\n" + res.stderr[-3000:])
    return prologue, flags


def test_constants_match_mingw_ddk(mingw_cc, mingw_ddk, workdir):
    prologue, flags = mingw_ddk
    names = _our_constant_names()
    assert names, "no #define found in %s" % CONSTANTS_H
    entries = {name: name for name in names}

    try:
        ref, missing = _evaluate(mingw_cc, flags, prologue, entries,
                                 workdir, "ref_constants")
    except CompileError as e:
        pytest.fail("mingw DDK constant probe failed:\n%s" % e)

    ours_prologue = '#include "ndis_constants.h"\n'
    ours_flags = ["-I", str(INCLUDE_DIR)]
    ours, broken = _evaluate(mingw_cc, ours_flags, ours_prologue, entries,
                             workdir, "our_constants")
    assert not broken, "ndis_constants.h does not evaluate:\n" + \
        "\n".join(d for ds in broken.values() for d in ds)

    host = _host_cc()
    host_vals = {}
    if host:
        host_vals, broken = _evaluate(host, ours_flags, ours_prologue,
                                      entries, workdir, "host_constants")
        assert not broken, "ndis_constants.h fails under host cc:\n" + \
            "\n".join(d for ds in broken.values() for d in ds)

    problems = []
    for name in names:
        if name in host_vals and host_vals[name] != ours[name]:
            problems.append("%s: our header gives 0x%016x under mingw "
                            "but 0x%016x under host cc"
                            % (name, ours[name], host_vals[name]))
        if name in ref and ref[name] != ours[name]:
            problems.append("%s: ours 0x%016x, DDK 0x%016x"
                            % (name, ours[name], ref[name]))
    unexpected = sorted(set(missing) - NOT_IN_MINGW)
    for name in unexpected:
        problems.append("%s: not defined by mingw's DDK (misspelt? "
                        "else add it to NOT_IN_MINGW)" % name)

    checked = len(ref)
    print("\n%d constants cross-checked against mingw-w64, %d not defined "
          "there: %s" % (checked, len(missing), ", ".join(sorted(missing))))
    assert not problems, "%d of %d constants disagree:\n  %s" % (
        len(problems), len(names), "\n  ".join(problems))


def _layout_entries():
    entries = {}
    for struct, field, _ in LAYOUTS:
        if field is None:
            entries[(struct, None)] = "sizeof(%s)" % struct
        else:
            # builtin, so our ndis.h is compiled with no other include
            entries[(struct, field)] = "__builtin_offsetof(%s, %s)" % (
                struct, field)
    return entries


def _describe(key):
    struct, field = key
    return "sizeof(%s)" % struct if field is None else \
        "offsetof(%s, %s)" % (struct, field)


def test_layouts_match_mingw_ddk(mingw_cc, mingw_ddk, workdir):
    if not NDIS_H.is_file():
        pytest.skip("%s does not exist yet" % NDIS_H.relative_to(REPO))
    prologue, flags = mingw_ddk
    entries = _layout_entries()

    try:
        ref, ref_bad = _evaluate(mingw_cc, flags, prologue, entries,
                                 workdir, "ref_layouts")
        ours, ours_bad = _evaluate(mingw_cc, ["-I", str(INCLUDE_DIR)],
                                   '#include "ndis.h"\n', entries,
                                   workdir, "our_layouts")
    except CompileError as e:
        pytest.fail("layout probe does not compile:\n%s" % e)

    problems = []
    for struct, field, expect in LAYOUTS:
        key = (struct, field)
        what = _describe(key)
        if key in ref_bad:
            problems.append("%s: not in mingw's DDK: %s"
                            % (what, ref_bad[key][0]))
        elif ref[key] != expect:
            problems.append("%s: mingw's DDK says %d, table says %d "
                            "(reference built in the wrong mode?)"
                            % (what, ref[key], expect))
        if key in ours_bad:
            problems.append("%s: not in our ndis.h: %s"
                            % (what, ours_bad[key][0]))
        elif key in ref and ours[key] != ref[key]:
            problems.append("%s: ours %d, DDK %d"
                            % (what, ours[key], ref[key]))
    assert not problems, "%d of %d layout checks fail:\n  %s" % (
        len(problems), len(LAYOUTS), "\n  ".join(problems))
