"""INF files: the setupapi syntax, a network driver package, and every
refusal as one line naming FILE:LINE."""
import pathlib
import textwrap
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ndisproxy import drivers, inf
from ndisproxy.inf import InfError


def write_package(tmp_path, text, files=("nic.sys",), name="nic.inf"):
    """An INF and the files it copies, in tmp_path; the INF's path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    for file in files:
        (tmp_path / file).write_bytes(b"MZ")
    return path


PACKAGE = """
    [Version]
    Signature = "$Windows NT$"
    Class = Net
    Provider = %Vendor%
    DriverVer = 06/01/2008,1.2.3.4

    [Manufacturer]
    %Vendor% = Vendor, NTx86, NTamd64

    [Vendor.NTx86]
    %Nic% = Nic32, PCI\\VEN_1234&DEV_0001

    [Vendor.NTamd64]
    %Nic% = Nic, PCI\\VEN_1234&DEV_0001, PCI\\VEN_1234

    [Nic.NTamd64]
    CopyFiles = Nic.Files
    AddReg = Nic.Params, Nic.Values

    [Nic.NTamd64.Services]
    AddService = nic, 2, Nic.Service

    [Nic.Service]
    ServiceBinary = %12%\\nic.sys

    [Nic.Files]
    nic.sys

    [Nic.Params]
    HKR, Ndi\\params\\Speed,        ParamDesc, 0, %Speed%
    HKR, Ndi\\params\\Speed,        default,   0, "0"
    HKR, Ndi\\params\\Speed,        type,      0, "enum"
    HKR, Ndi\\params\\Speed\\enum,  "0",       0, %Auto%
    HKR, Ndi\\params\\Speed\\enum,  "10",      0, "10 Mb/s"
    HKR, Ndi\\params\\Jumbo,        default,   0, "1514"
    HKR, Ndi\\params\\Jumbo,        type,      0, "int"
    HKR, Ndi\\params\\Jumbo,        min,       0, "1514"
    HKR, Ndi\\params\\Jumbo,        max,       0, "9014"

    [Nic.Values]
    HKR, , Jumbo,       0,          "4088"    ; the key's value beats the page's default
    HKR, , Flow,        0x00010001, 0x10
    HKR, , Bytes,       0x00010001, 01,02,00,00
    HKR, , Name,        0,          "a ""quoted"" name, with a comma"
    HKLM, System\\Whatever, Ignored, 0, "x"
    HKR, Ndi, Service, 0, "nic"

    [Strings]
    Vendor = "Example Networks"
    Nic = "Example NIC"
    Speed = "Link speed"
    Auto = "Auto"
"""


# -- syntax ---------------------------------------------------------------------


def test_lines_fields_quotes_and_comments():
    parsed = inf.parse(textwrap.dedent("""\
        ; a comment
        [Section]   ; a comment after the header
        key = a, "b, c" , d e ; comment
        "quoted key" = "x""y"
        plain, list,, end
        join = one, \\
               two  ; the line goes on
        empty =
    """))
    lines = parsed.section("section").lines
    assert [(l.number, l.key, l.fields) for l in lines] == [
        (3, "key", ("a", "b, c", "d e")),
        (4, "quoted key", ('x"y',)),
        (5, None, ("plain", "list", "", "end")),
        (6, "join", ("one", "two")),
        (8, "empty", ("",)),
    ]


def test_sections_are_case_insensitive_and_merge():
    parsed = inf.parse("[Models]\na = 1\n[MODELS]\nb = 2\n")
    section = parsed.section("mOdElS")
    assert section.name == "Models" and section.number == 1
    assert [l.key for l in section.lines] == ["a", "b"]
    assert parsed.value("models", "B") == "2"


def test_strings_substitution():
    parsed = inf.parse(textwrap.dedent("""\
        [S]
        a = %Name%, %name% x, 100%%, %12%\\n.sys, %undefined%, "%Name%"
        [Strings]
        Name = "Mock, NIC"
        [Strings.0407]
        Name = "Schein-NIC"
        Only = "nur hier"
        [T]
        b = %Only%
    """))
    assert parsed.section("s").lines[0].fields == (
        "Mock, NIC", "Mock, NIC x", "100%", "%12%\\n.sys", "%undefined%", "Mock, NIC")
    assert parsed.value("t", "b") == "nur hier"     # a language's section fills the gaps


def test_utf16_with_bom(tmp_path):
    path = tmp_path / "u.inf"
    path.write_bytes(b"\xff\xfe" + "[Version]\r\nProvider = \"Zürich\"\r\n".encode("utf-16-le"))
    assert inf.read(path).value("Version", "provider") == "Zürich"


def test_ansi_text_is_read_as_windows_1252(tmp_path):
    path = tmp_path / "a.inf"
    path.write_bytes(b"[Version]\nProvider = \"Caf\xe9\"\n")
    assert inf.read(path).value("Version", "Provider") == "Café"


# -- a driver package -------------------------------------------------------------


def test_package(tmp_path):
    package = inf.read_package(write_package(tmp_path, PACKAGE))
    assert package.provider == "Example Networks"
    assert package.driver_version == "06/01/2008,1.2.3.4"
    assert [(m.description, m.install_section, m.hardware_ids) for m in package.models] == [
        ("Example NIC", "Nic.NTamd64", ("PCI\\VEN_1234&DEV_0001", "PCI\\VEN_1234"))]
    assert [f.name for f in package.files] == ["nic.sys"]
    assert (package.image, package.service) == ("nic.sys", "nic")
    values = {name: p.value for name, p in package.parameters.items()}
    assert values == {"Speed": "0", "Jumbo": "4088", "Flow": "16", "Bytes": "513",
                      "Name": 'a "quoted" name, with a comma'}
    speed = package.parameters["Speed"]
    assert (speed.kind, speed.description, speed.choices) == (
        "enum", "Link speed", {"0": "Auto", "10": "10 Mb/s"})
    jumbo = package.parameters["Jumbo"]
    assert (jumbo.kind, jumbo.minimum, jumbo.maximum) == ("int", "1514", "9014")
    assert package.warnings == ()


TWO_MODELS = PACKAGE.replace(
    "%Nic% = Nic, PCI\\VEN_1234&DEV_0001, PCI\\VEN_1234",
    "%Nic% = Nic, PCI\\VEN_1234&DEV_0001, PCI\\VEN_1234\n"
    "    \"Example Fiber NIC\" = Fiber, PCI\\VEN_1234&DEV_0002"
).replace("[Nic.Service]", """[Fiber.NTamd64]
    CopyFiles = Nic.Files
    AddReg = Fiber.Values

    [Fiber.NTamd64.Services]
    AddService = nic, 2, Nic.Service

    [Fiber.Values]
    HKR, , Speed, 0, "1000"

    [Nic.Service]""")


@pytest.mark.parametrize("wanted", [None, "PCI\\VEN_1234&DEV_0001", "pci\\ven_1234",
                                    "example nic"])
def test_the_first_model_or_the_one_asked_for(tmp_path, wanted):
    package = inf.read_package(write_package(tmp_path, TWO_MODELS), wanted)
    assert package.model.install_section == "Nic.NTamd64"
    assert package.parameters["Jumbo"].value == "4088"


@pytest.mark.parametrize("wanted", ["PCI\\VEN_1234&DEV_0002", "pci\\VEN_1234&dev_0002",
                                    "Example Fiber NIC"])
def test_another_model_brings_its_own_install_section(tmp_path, wanted):
    package = inf.read_package(write_package(tmp_path, TWO_MODELS), wanted)
    assert (package.model.description, package.model.install_section) == (
        "Example Fiber NIC", "Fiber.NTamd64")
    assert {n: p.value for n, p in package.parameters.items()} == {"Speed": "1000"}
    assert len(package.models) == 2 and package.image == "nic.sys"


def test_no_such_model_names_the_ones_there_are(tmp_path):
    path = write_package(tmp_path, TWO_MODELS)
    with pytest.raises(inf.InfError) as info:
        inf.read_package(path, "PCI\\VEN_8086&DEV_100E")
    assert str(info.value) == (
        f'{path}: no model with hardware id or description "PCI\\VEN_8086&DEV_100E"; its '
        "models: Example NIC (PCI\\VEN_1234&DEV_0001, PCI\\VEN_1234); Example Fiber NIC "
        "(PCI\\VEN_1234&DEV_0002)")


def test_bundled_mocknic_inf(tmp_path):
    package = inf.read_package(drivers.inf_path("mocknic"))
    assert package.image == "mocknic.sys"
    assert package.files[0].source == drivers.path("mocknic")
    assert {n: p.value for n, p in package.parameters.items() if p.value is not None} == {
        "MTU": "1500", "TxRing": "64", "RxRing": "128", "InterruptModeration": "0"}
    address = package.parameters["NetworkAddress"]
    assert address.value is None and address.optional


def test_source_disks_and_case_insensitive_names(tmp_path):
    text = PACKAGE.replace("[Strings]", textwrap.dedent("""\
        [SourceDisksNames.amd64]
        1 = "Disk",,,\\Drivers
        [SourceDisksFiles.amd64]
        nic.sys = 1,amd64

        [Strings]"""))
    path = write_package(tmp_path, text, files=())
    (tmp_path / "DRIVERS" / "AMD64").mkdir(parents=True)
    (tmp_path / "DRIVERS" / "AMD64" / "NIC.SYS").write_bytes(b"MZ")
    package = inf.read_package(path)
    assert package.files[0].source == tmp_path / "DRIVERS" / "AMD64" / "NIC.SYS"


def test_undecorated_models_and_install_section(tmp_path):
    text = (PACKAGE.replace("%Vendor% = Vendor, NTx86, NTamd64", "%Vendor% = Vendor")
            .replace("[Vendor.NTamd64]", "[Vendor]")
            .replace("[Nic.NTamd64]", "[Nic.NT]")
            .replace("[Nic.NTamd64.Services]", "[Nic.NT.Services]"))
    package = inf.read_package(write_package(tmp_path, text))
    assert package.models[0].install_section == "Nic.NT"
    assert package.service == "nic"


def test_newer_windows_models_are_not_chosen(tmp_path):
    text = PACKAGE.replace("%Vendor% = Vendor, NTx86, NTamd64",
                           "%Vendor% = Vendor, NTamd64.6.0, NTamd64.5.1")
    text = text.replace("[Vendor.NTamd64]", "[Vendor.NTamd64.5.1]")
    package = inf.read_package(write_package(tmp_path, text))
    assert package.models[0].install_section == "Nic.NTamd64"


def test_values_ndis_cannot_read_are_warned_about(tmp_path):
    text = PACKAGE.replace("[Nic.Values]", "[Nic.Values]\nHKR, , Blob, 1, 00, 01\nHKR, , , 0, x")
    package = inf.read_package(write_package(tmp_path, text))
    assert "Blob" not in package.parameters
    assert [w.split(": ", 1)[1] for w in package.warnings] == [
        "Blob is a REG_BINARY value; the host's registry holds text and numbers only; ignored",
        "the key's default value (no value name) is not a parameter; ignored"]


# -- refusals: one line, FILE:LINE ---------------------------------------------------


def line_of(text, needle):
    """The 1-based line of ``needle`` in the dedented package text."""
    lines = textwrap.dedent(text).lstrip().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


BROKEN = [
    # (replace this, with this, the line that holds it, the problem)
    ('Provider = %Vendor%', 'Provider = "Example', 'Provider',
     'unterminated quoted string (a "..." must close on its line)'),
    ("[Manufacturer]", "[Manufacturer", "[Manufacturer",
     "section header without a closing ]"),
    ("[Manufacturer]", "[Manufacturer] extra", "[Manufacturer]",
     "text after the section header: 'extra'"),
    ("Class = Net", "Class = Display", "Class =",
     "Class=Display: not a network adapter driver; ndisproxy runs NDIS miniports (Class=Net)"),
    ('Signature = "$Windows NT$"', 'Signature = "$Windows 3.1$"', "Signature",
     "[Version] Signature is '$Windows 3.1$'; a driver INF has \"$Windows NT$\""),
    ("%Vendor% = Vendor, NTx86, NTamd64", "%Vendor% = Vendor, NTx86", "%Vendor% = Vendor",
     "no models for x64 (NTamd64) Windows up to 5.2: the entry lists NTx86"),
    ("%Vendor% = Vendor, NTx86, NTamd64", "%Vendor% = Other, NTamd64", "%Vendor% = Other",
     "models section [Other.NTamd64] is missing"),
    ("%Nic% = Nic, PCI", "%Nic% = Gone, PCI", "%Nic% = Gone",
     "install section [Gone] (or [Gone.NTamd64], [Gone.NT]) is missing"),
    ("%Nic% = Nic, PCI", "Nic, PCI", "Nic, PCI",
     "a model line is: description = install-section, hardware-id"),
    ("CopyFiles = Nic.Files", "CopyFiles = Nic.Nothing", "CopyFiles",
     "CopyFiles section [Nic.Nothing] is missing"),
    ("CopyFiles = Nic.Files", "CopyFiles = @absent.sys", "CopyFiles",
     "absent.sys (copied by [Nic.NTamd64]) is not in {dir}"),
    ("AddReg = Nic.Params, Nic.Values", "AddReg = Nic.Nowhere", "AddReg",
     "AddReg section [Nic.Nowhere] is missing"),
    ("HKLM, System", "HKXX, System", "HKXX",
     "unknown registry root 'HKXX' (HKR, HKLM, HKCU, HKCR, HKU)"),
    ("HKR, , Flow,        0x00010001, 0x10", "HKR, , Flow, 0x1zz, 0x10", "Flow",
     "'0x1zz' is not a number"),
    ("HKR, , Flow,        0x00010001, 0x10", "HKR, , Flow, 0x00010001, lots", "Flow",
     "'lots' is not a number"),
    ("HKR, , Flow,        0x00010001, 0x10", "HKR, , Flow, 0x00010001, 0x100000000", "Flow",
     "REG_DWORD 0x100000000 is outside 0..4294967295"),
    ("HKR, , Flow,        0x00010001, 0x10", "HKR, , Flow, 0x00050000, 1", "Flow",
     "unknown AddReg value type in flags 0x00050000"),
    ("HKR, , Flow,        0x00010001, 0x10", "Flow = HKR, , Flow, 0, 1", "Flow =",
     "an AddReg line is: root, subkey, value name, flags, value (no =)"),
    ("HKR, , Flow,        0x00010001, 0x10", ", , Flow, 0, 1", ", , Flow",
     "AddReg line needs a root key (HKR, HKLM, ...)"),
    ("ServiceBinary = %12%\\nic.sys", "ServiceBinary = %12%\\other.sys", "ServiceBinary",
     "ServiceBinary other.sys is not among the files [Nic.NTamd64] copies"),
]


@pytest.mark.parametrize("old, new, needle, problem", BROKEN,
                         ids=[b[3][:40] for b in BROKEN])
def test_malformed_inf_names_file_and_line(tmp_path, old, new, needle, problem):
    assert old in PACKAGE
    text = PACKAGE.replace(old, new, 1)
    path = write_package(tmp_path, text)
    with pytest.raises(InfError) as info:
        inf.read_package(path)
    expected = f"{path}:{line_of(text, needle)}: {problem.format(dir=tmp_path)}"
    assert str(info.value) == expected
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, line, problem", [
    ("key = value\n[Version]\n", 1, "text before the first [section] header"),
    ("[Version]\n[]\n", 2, "empty section name []"),
    ("[Version]\na = b, \\\n", 2, "the last line ends in a continuation (\\) with nothing "
                                  "after it"),
    ("[Version]\nSignature=\"$Windows NT$\"\n\nx = \0\n", 4,
     "a NUL byte: not a text file (an INF is ANSI, UTF-8 or UTF-16 text)"),
    ("[Version]\nSignature = \"$Windows NT$\"\nClassGUID = {4d36e968-e325-11ce-bfc1-08002be10318}",
     1, "[Version] has ClassGUID={4d36e968-e325-11ce-bfc1-08002be10318}: not a network "
        "adapter driver; ndisproxy runs NDIS miniports (Class=Net)"),
])
def test_malformed_syntax(tmp_path, text, line, problem):
    path = tmp_path / "bad.inf"
    path.write_bytes(text.encode())
    with pytest.raises(InfError) as info:
        inf.read_package(path)
    assert str(info.value) == f"{path}:{line}: {problem}"


@pytest.mark.parametrize("text, problem", [
    ("[Strings]\na = b\n", "no [Version] section: not a driver INF"),
    ('[Version]\nSignature = "$Windows NT$"\nClass = Net\n',
     "no [Manufacturer] section: the INF installs no device"),
])
def test_what_is_missing_names_the_file(tmp_path, text, problem):
    path = tmp_path / "bad.inf"
    path.write_text(text)
    with pytest.raises(InfError) as info:
        inf.read_package(path)
    assert str(info.value) == f"{path}: {problem}"


def test_two_images_and_no_service(tmp_path):
    text = PACKAGE.replace("AddService = nic, 2, Nic.Service", "").replace(
        "[Nic.Files]\n    nic.sys", "[Nic.Files]\n    nic.sys\n    helper.sys")
    path = write_package(tmp_path, text, files=("nic.sys", "helper.sys"))
    with pytest.raises(InfError) as info:
        inf.read_package(path)
    assert str(info.value) == (
        f"{path}:{line_of(text, '%Nic% = Nic,')}: [Nic.NTamd64] copies 2 .sys images (nic.sys, "
        "helper.sys) and no AddService: cannot tell which is the driver")


def test_unreadable_file(tmp_path):
    with pytest.raises(InfError) as info:
        inf.read_package(tmp_path / "absent.inf")
    assert str(info.value) == (f"{tmp_path / 'absent.inf'}: cannot read the file: "
                               "No such file or directory")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('[]=,;"%\\\n abcNTamd64.HKR0x1'), max_size=300))
def test_any_text_parses_or_is_refused_in_one_line(text):
    try:
        parsed = inf.parse(text, "fuzz.inf")
        inf.package(parsed)
    except InfError as exc:
        assert "\n" not in str(exc)


def test_installed_mocknic_inf_is_the_source_trees():
    source = pathlib.Path(__file__).resolve().parent.parent / "csrc/drivers/mocknic/mocknic.inf"
    assert drivers.inf_path("mocknic").read_bytes() == source.read_bytes()


def test_pathological_text_is_read_in_linear_time():
    start = time.monotonic()
    inf.parse("[S]\nx = " + "\\ " * 200_000 + "y\n")
    inf.parse("".join(f"[Strings.{i}]\nk{i} = v\n[S{i}]\na = %k{i}%\n" for i in range(20_000)))
    elapsed = time.monotonic() - start
    print(f"{elapsed:.2f} s")
    assert elapsed < 10
