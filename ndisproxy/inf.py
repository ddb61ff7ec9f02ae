"""Windows INF files, as far as a network driver package needs them.

``read(path)`` parses an INF into sections of lines (the syntax of Windows'
setupapi: case-insensitive section names, ``;`` comments, ``\\`` line
continuation, comma-separated fields with ``"quoted"`` parts, ``%token%``
strings from ``[Strings]``); ``read_package(path)`` then reads what
``ndisproxy driver install`` needs from it for an x64 NDIS miniport: the
``[Version]`` (``Class=Net``), the models of ``[Manufacturer]`` for NTamd64,
their install sections, the files ``CopyFiles`` names (found next to the
INF), the service binary, and the ``AddReg`` values of the adapter's key
(``HKR``): ``Ndi\\params`` trees with their defaults, types and ranges, and
plain values - what ``NdisReadConfiguration`` returns.

Every problem raises ``InfError``, whose message is one line naming the
file and, where there is one, the line::

    e1000.inf:42: AddReg line needs a root key (HKR, HKLM, ...)

docs/driver-store.md describes what is read and what is ignored.
"""
import dataclasses
import pathlib
import re

from .errors import NdisProxyError

MAX_INF_BYTES = 4 << 20
# The class every network adapter driver installs under.
NET_CLASS = "net"
NET_CLASS_GUID = "{4d36e972-e325-11ce-bfc1-08002be10318}"
# The platform decoration of x64 sections, and the newest Windows version
# whose models can hold an NDIS 5.x miniport (Server 2003 / XP x64 are 5.2;
# 6.0 models are NDIS 6 drivers).
PLATFORM = "amd64"
MAX_OS_VERSION = (5, 2)

# AddReg flags (setupapi.h)
FLG_ADDREG_BINVALUETYPE = 0x00000001
FLG_ADDREG_DELVAL = 0x00000004
FLG_ADDREG_KEYONLY = 0x00000010
FLG_ADDREG_TYPE_MASK = 0xFFFF0000 | FLG_ADDREG_BINVALUETYPE
REG_TYPES = {
    0x00000000: "sz",
    0x00000001: "binary",
    0x00010000: "multi_sz",
    0x00020000: "expand_sz",
    0x00010001: "dword",
    0x00020001: "none",
}
ROOT_KEYS = ("hkr", "hklm", "hkcu", "hkcr", "hku")

_DIRID = re.compile(r"-?\d+")
_TOKEN = re.compile(r"%([^%]*)%")
_VERSION_DECORATION = re.compile(r"nt([a-z0-9]*)((?:\.\d+){0,2})(?:\..*)?")


class InfError(NdisProxyError, ValueError):
    """An INF file that cannot be read or is not a usable network driver
    package.  ``path``, ``line`` (None for the file as a whole) and
    ``problem``; ``str()`` is one line."""

    def __init__(self, path, line, problem):
        problem = " ".join(str(problem).split())
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


@dataclasses.dataclass(frozen=True)
class Line:
    """One logical line: ``key = field, field`` or ``field, field``.

    ``number`` is the physical line it starts on; ``key`` is None for a line
    without ``=``.  Keys and fields have their quotes removed and their
    ``%strings%`` substituted.
    """
    number: int
    key: str | None
    fields: tuple


@dataclasses.dataclass
class Section:
    name: str                   # as first written
    number: int                 # the line of its (first) header
    lines: list
    _keys: dict | None = None   # lowercase key -> [Line], made on first use

    def values(self, key):
        """Every line whose key is ``key`` (any case), in order."""
        if self._keys is None:
            self._keys = {}
            for line in self.lines:
                if line.key is not None:
                    self._keys.setdefault(line.key.lower(), []).append(line)
        return self._keys.get(key.lower(), [])


class Inf:
    """A parsed INF: sections by case-insensitive name."""

    def __init__(self, path, sections):
        self.path = pathlib.Path(path)
        self.sections = sections

    def section(self, name):
        """The section ``name`` (any case), or None."""
        return self.sections.get(name.lower())

    def values(self, section, key):
        """Every line of ``section`` whose key is ``key`` (any case)."""
        found = self.section(section)
        return [] if found is None else found.values(key)

    def value(self, section, key):
        """The first field of the first ``key`` line of ``section``, or None."""
        lines = self.values(section, key)
        return lines[0].fields[0] if lines and lines[0].fields else None

    def error(self, line, problem):
        """An InfError at ``line`` (a Line, a number or None) of this file."""
        number = line.number if isinstance(line, Line) else line
        return InfError(self.path, number, problem)


# -- the syntax ---------------------------------------------------------------


def _decode(path, data):
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", "replace")
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", "replace")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] and data[2]:
        return data.decode("utf-16-le", "replace")      # UTF-16 without a BOM
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise InfError(path, line, "a NUL byte: not a text file (an INF is ANSI, UTF-8 or "
                                   "UTF-16 text)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # ANSI in the system's code page; Windows-1252 is the likely one, and
        # latin-1 maps every byte, so reading never fails.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


class _LineReader:
    """Splits logical lines into key and fields, across continuations.

    Fields are lists of (character, quoted) pairs until the line ends, so
    that unquoted whitespace around a field can be trimmed and quoted
    whitespace kept."""

    def __init__(self, path):
        self.path = path
        self.reset(0)

    def reset(self, number):
        self.number = number
        self.key = None
        self.fields = []
        self.field = []
        self.has_text = False

    def feed(self, text, number):
        """Consume one physical line; True if the logical line continues."""
        quoted = False
        at = 0
        end = len(text)
        while at < end:
            c = text[at]
            if quoted:
                if c == '"':
                    if at + 1 < end and text[at + 1] == '"':
                        self.field.append(('"', True))
                        at += 2
                        continue
                    quoted = False
                else:
                    self.field.append((c, True))
                at += 1
                continue
            if c == ";":
                break
            if c == '"':
                quoted = True
                self.has_text = True
            elif c == "\\" and _ends_line(text, at + 1):
                return True                 # continued on the next line
            elif c == ",":
                self.fields.append(self.field)
                self.field = []
                self.has_text = True
            elif c == "=" and self.key is None and not self.fields:
                self.key = self.field
                self.field = []
                self.has_text = True
            else:
                self.field.append((c, False))
                if not c.isspace():
                    self.has_text = True
            at += 1
        if quoted:
            raise InfError(self.path, number, 'unterminated quoted string (a "..." must close '
                                              "on its line)")
        return False

    def finish(self):
        """The logical line read so far: (key or None, [fields]), or None
        for a blank or comment line."""
        if not self.has_text:
            return None
        self.fields.append(self.field)
        key = _trim(self.key) if self.key is not None else None
        return key, [_trim(field) for field in self.fields]


def _ends_line(text, at):
    """Whether only blanks or a comment follow ``at``."""
    while at < len(text) and text[at] in " \t":
        at += 1
    return at == len(text) or text[at] == ";"


def _trim(chars):
    start, end = 0, len(chars)
    while start < end and chars[start][0].isspace() and not chars[start][1]:
        start += 1
    while end > start and chars[end - 1][0].isspace() and not chars[end - 1][1]:
        end -= 1
    return "".join(c for c, _ in chars[start:end])


def parse(text, path="<inf>"):
    """Parse INF ``text`` (``path`` names it in errors): an ``Inf``."""
    sections = {}
    raw = []            # (section, number, key, fields) before %string% substitution
    current = None
    reader = _LineReader(path)
    continuing = False
    lines = text.split("\x1a", 1)[0].splitlines()
    for number, physical in enumerate(lines, 1):
        if not continuing:
            stripped = physical.lstrip()
            if stripped.startswith("["):
                current = _section_header(path, number, stripped, sections)
                continue
            reader.reset(number)
        continuing = reader.feed(physical, number)
        if continuing:
            continue
        line = reader.finish()
        if line is None:
            continue
        if current is None:
            raise InfError(path, reader.number, "text before the first [section] header")
        raw.append((current, reader.number, *line))
    if continuing:
        raise InfError(path, reader.number, "the last line ends in a continuation (\\) "
                                            "with nothing after it")
    strings = _strings(sections, raw)
    for section, number, key, fields in raw:
        if key is not None:
            key = _substitute(key, strings)
        section.lines.append(Line(number, key, tuple(_substitute(f, strings) for f in fields)))
    return Inf(path, sections)


def _section_header(path, number, text, sections):
    close = text.find("]")
    if close < 0:
        raise InfError(path, number, "section header without a closing ]")
    rest = text[close + 1:].split(";", 1)[0].strip()
    if rest:
        raise InfError(path, number, f"text after the section header: {rest[:40]!r}")
    name = text[1:close].strip()
    if not name:
        raise InfError(path, number, "empty section name []")
    # A section written twice is one section (setupapi merges them).
    return sections.setdefault(name.lower(), Section(name, number, []))


def _strings(sections, raw):
    """{lowercase token: text} from [Strings], then [Strings.LANGID] for
    tokens only those define (US English, 0409, first)."""
    by_section = {}
    for owner, _, key, fields in raw:
        name = owner.name.lower()
        if key is not None and (name == "strings" or name.startswith("strings.")):
            by_section.setdefault(name, []).append((key.lower(), ",".join(fields)))
    order = ["strings", "strings.0409"] + sorted(
        name for name in by_section if name not in ("strings", "strings.0409"))
    strings = {}
    for name in order:
        for key, text in by_section.get(name, ()):
            strings.setdefault(key, text)
    return strings


def _substitute(text, strings):
    if "%" not in text:
        return text

    def replace(match):
        token = match[1]
        if not token:
            return "%"                          # %% is a literal %
        if _DIRID.fullmatch(token):
            return match[0]                     # %12% is a directory id: kept
        return strings.get(token.lower(), match[0])   # undefined: kept, as Windows does
    return _TOKEN.sub(replace, text)


def read(path):
    """Read and parse the INF file ``path``; InfError if it cannot be."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INF_BYTES + 1)
    except OSError as exc:
        raise InfError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_INF_BYTES:
        raise InfError(path, None, f"larger than {MAX_INF_BYTES >> 20} MiB: not an INF file")
    return parse(_decode(path, data), path)


# -- a network driver package ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One value the adapter's registry key gets, as NdisReadConfiguration
    reads it: ``value`` is the text (a REG_DWORD in decimal), or None for
    an ``Ndi\\params`` entry without a default.  The rest describes the
    entry for people: ``kind`` is the Ndi ``type`` ("int", "enum", "edit",
    ...) or the registry type of a plain value ("dword", "sz")."""
    name: str
    value: str | None
    kind: str
    line: int
    description: str | None = None
    minimum: str | None = None
    maximum: str | None = None
    step: str | None = None
    optional: bool = False
    choices: dict = dataclasses.field(default_factory=dict)

    def as_json(self):
        out = {"value": self.value, "type": self.kind, "line": self.line}
        for name in ("description", "minimum", "maximum", "step"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.optional:
            out["optional"] = True
        if self.choices:
            out["choices"] = dict(self.choices)
        return out


@dataclasses.dataclass(frozen=True)
class Model:
    description: str
    install_section: str        # as resolved: the decorated name found
    hardware_ids: tuple
    line: int


@dataclasses.dataclass(frozen=True)
class PackageFile:
    name: str                   # the name it is installed under
    source: pathlib.Path        # where it was found
    line: int


@dataclasses.dataclass(frozen=True)
class Package:
    """What installing the INF would do on x64 Windows, for ndisproxy.

    ``models`` in [Manufacturer] order; ``model`` the one installed (the
    first, unless one was chosen); ``files`` every file their install
    sections copy; ``image`` the service binary of that model (the driver
    ``driver = NAME`` runs); ``parameters`` {name: Parameter} of its
    AddReg, by name as written (look names up case-insensitively);
    ``warnings`` what was read but is not used (one line each).
    """
    inf: Inf
    provider: str | None
    driver_version: str | None
    models: tuple
    model: Model
    files: tuple
    image: str
    service: str | None
    parameters: dict
    warnings: tuple


def read_package(path, model=None):
    """Read ``path`` as an x64 network driver package: a ``Package``."""
    return package(read(path), model)


def package(inf, model=None):
    """The ``Package`` an ``Inf`` describes, installing the model whose
    hardware id (or description) is ``model``, or else the first;
    InfError if it is not one, or has no such model."""
    _check_version(inf)
    warnings = []
    models = _models(inf)
    files, seen = [], {}
    install = {}
    for each in models:
        if each.install_section.lower() in install:
            continue
        copied = _copy_files(inf, each.install_section)
        install[each.install_section.lower()] = copied
        for item in copied:
            if item.name.lower() not in seen:
                seen[item.name.lower()] = item
                files.append(item)
    chosen = models[0] if model is None else _choose(inf, models, model)
    service, image = _service(inf, chosen, install[chosen.install_section.lower()])
    parameters = _parameters(inf, chosen.install_section, warnings)
    return Package(inf=inf, provider=inf.value("Version", "Provider"),
                   driver_version=_driver_version(inf), models=tuple(models), model=chosen,
                   files=tuple(files), image=image, service=service, parameters=parameters,
                   warnings=tuple(warnings))


def _choose(inf, models, wanted):
    """The model with hardware id ``wanted`` (case-insensitive, as Windows
    matches them), or else with that description."""
    folded = wanted.lower()
    for found in (m for m in models if folded in (h.lower() for h in m.hardware_ids)):
        return found
    for found in (m for m in models if m.description.lower() == folded):
        return found
    listed = "; ".join(f"{m.description} ({', '.join(m.hardware_ids) or 'no hardware id'})"
                       for m in models)
    raise inf.error(None, f'no model with hardware id or description "{wanted}"; '
                          f"its models: {listed}")


def _check_version(inf):
    version = inf.section("Version")
    if version is None:
        raise inf.error(None, "no [Version] section: not a driver INF")
    signature = inf.value("Version", "Signature")
    if signature is None:
        raise inf.error(version.number, '[Version] has no Signature; a driver INF has '
                                        'Signature = "$Windows NT$"')
    if signature.lower() not in ("$windows nt$", "$chicago$", "$windows 95$"):
        raise inf.error(inf.values("Version", "Signature")[0],
                        f'[Version] Signature is {signature!r}; a driver INF has '
                        '"$Windows NT$"')
    klass = inf.value("Version", "Class")
    guid = inf.value("Version", "ClassGUID")
    if klass is not None:
        if klass.lower() != NET_CLASS:
            raise inf.error(inf.values("Version", "Class")[0],
                            f"Class={klass}: not a network adapter driver; ndisproxy runs "
                            "NDIS miniports (Class=Net)")
    elif guid is None or guid.lower() != NET_CLASS_GUID:
        shown = f"ClassGUID={guid}" if guid else "no Class or ClassGUID"
        raise inf.error(version.number, f"[Version] has {shown}: not a network adapter "
                                        "driver; ndisproxy runs NDIS miniports (Class=Net)")


def _driver_version(inf):
    lines = inf.values("Version", "DriverVer")
    if not lines:
        return None
    return ",".join(f for f in lines[0].fields if f)


def _decoration(text):
    """(platform, (major, minor)) of a TargetOS decoration like
    "NTamd64.5.1"; None if it is not an NT decoration."""
    match = _VERSION_DECORATION.fullmatch(text.lower())
    if match is None:
        return None
    numbers = tuple(int(n) for n in match[2].split(".")[1:])
    return match[1], (numbers + (0, 0))[:2] if numbers else (0, 0)


def _models(inf):
    manufacturer = inf.section("Manufacturer")
    if manufacturer is None:
        raise inf.error(None, "no [Manufacturer] section: the INF installs no device")
    models, skipped = [], []
    for line in manufacturer.lines:
        if not line.fields or not line.fields[0]:
            raise inf.error(line, "[Manufacturer] entry names no models section")
        name = line.fields[0]
        decorations = [d for d in line.fields[1:] if d]
        section = _models_section(inf, line, name, decorations, skipped)
        if section is None:
            continue
        for entry in section.lines:
            models.append(_model(inf, entry))
    if not models:
        if skipped:
            raise inf.error(skipped[0][0], f"no models for x64 (NTamd64) Windows up to "
                                           f"{MAX_OS_VERSION[0]}.{MAX_OS_VERSION[1]}: the "
                                           f"entry lists {', '.join(skipped[0][1])}")
        raise inf.error(manufacturer.number, "[Manufacturer] lists no models")
    return models


def _models_section(inf, line, name, decorations, skipped):
    """The models section this manufacturer line means on x64 Windows 5.2."""
    if not decorations:
        found = inf.section(name)
        if found is None:
            raise inf.error(line, f"models section [{name}] is missing")
        return found
    best = None
    for decoration in decorations:
        parsed = _decoration(decoration)
        if parsed is None or parsed[0] not in (PLATFORM, ""):
            continue
        platform, version = parsed
        if version > MAX_OS_VERSION:
            continue
        rank = (platform == PLATFORM, version)
        if best is None or rank > best[0]:
            best = (rank, decoration)
    if best is None:
        skipped.append((line, decorations))
        return None
    found = inf.section(f"{name}.{best[1]}")
    if found is None:
        raise inf.error(line, f"models section [{name}.{best[1]}] is missing")
    return found


def _model(inf, line):
    if line.key is None or len(line.fields) < 1 or not line.fields[0]:
        raise inf.error(line, "a model line is: description = install-section, hardware-id")
    install = _install_section(inf, line, line.fields[0])
    return Model(description=line.key, install_section=install,
                 hardware_ids=tuple(f for f in line.fields[1:] if f), line=line.number)


def _install_section(inf, line, name):
    """The decorated install section x64 Windows uses: NAME.NTamd64,
    NAME.NT, then NAME."""
    for candidate in (f"{name}.NTamd64", f"{name}.NT", name):
        section = inf.section(candidate)
        if section is not None:
            return section.name
    raise inf.error(line, f"install section [{name}] (or [{name}.NTamd64], [{name}.NT]) "
                          "is missing")


def _source_directory(inf, name):
    """Where a file to copy lies relative to the INF: [SourceDisksFiles]
    and [SourceDisksNames] (x64-decorated first), else next to it."""
    for suffix in (".amd64", ""):
        entries = inf.values("SourceDisksFiles" + suffix, name)
        if not entries:
            continue
        entry = entries[0]
        disk = entry.fields[0] if entry.fields else ""
        subdir = entry.fields[1] if len(entry.fields) > 1 else ""
        disk_path = ""
        for disk_suffix in (".amd64", ""):
            disk_line = next((line for line in inf.values("SourceDisksNames" + disk_suffix,
                                                          disk)), None)
            if disk_line is not None:
                disk_path = disk_line.fields[3] if len(disk_line.fields) > 3 else ""
                break
        parts = [p for p in re.split(r"[\\/]+", f"{disk_path}\\{subdir}") if p and p != "."]
        if ".." in parts:
            raise inf.error(entry, f"source path of {name} leaves the driver package (..)")
        return parts
    return []


def _find_file(directory, parts, name):
    """directory/parts.../name, each component matched case-insensitively
    (Windows file names are); None if absent."""
    here = directory
    for part in [*parts, name]:
        exact = here / part
        if exact.exists():
            here = exact
            continue
        try:
            match = next((p for p in here.iterdir() if p.name.lower() == part.lower()), None)
        except OSError:
            return None
        if match is None:
            return None
        here = match
    return here if here.is_file() else None


def _copy_files(inf, install):
    files = []
    directory = inf.path.parent
    for line in inf.values(install, "CopyFiles"):
        for entry in (f for f in line.fields if f):
            if entry.startswith("@"):
                files.append(_located(inf, line, directory, entry[1:], entry[1:], install))
                continue
            section = inf.section(entry)
            if section is None:
                raise inf.error(line, f"CopyFiles section [{entry}] is missing")
            for file_line in section.lines:
                names = list(file_line.fields)
                if file_line.key is not None:
                    raise inf.error(file_line, "a file list line is: destination[, source]")
                if not names or not names[0]:
                    raise inf.error(file_line, "a file list line names no file")
                source = names[1] if len(names) > 1 and names[1] else names[0]
                files.append(_located(inf, file_line, directory, names[0], source, install))
    return files


def _located(inf, line, directory, name, source, install):
    if "/" in name or "\\" in name or name in (".", ".."):
        raise inf.error(line, f"file name {name!r} has a directory in it")
    parts = _source_directory(inf, source)
    found = _find_file(directory, parts, source)
    if found is None and parts:
        found = _find_file(directory, [], source)
    if found is None:
        raise inf.error(line, f"{source} (copied by [{install}]) is not in "
                              f"{directory / pathlib.Path(*parts) if parts else directory}")
    return PackageFile(name=name, source=found, line=line.number)


def _service(inf, model, files):
    """(service name, image file name) of an install section."""
    images = [f.name for f in files if f.name.lower().endswith(".sys")]
    for line in inf.values(f"{model.install_section}.Services", "AddService"):
        if not line.fields or not line.fields[0]:
            raise inf.error(line, "AddService names no service")
        flags = _number(inf, line, line.fields[1]) if len(line.fields) > 1 and \
            line.fields[1] else 0
        if not flags & 0x2:         # SPSVCINST_ASSOCSERVICE: the device's function driver
            continue
        if len(line.fields) < 3 or not line.fields[2]:
            raise inf.error(line, "AddService names no service install section")
        binary = inf.value(line.fields[2], "ServiceBinary")
        if binary is None:
            raise inf.error(line, f"service section [{line.fields[2]}] has no ServiceBinary")
        image = re.split(r"[\\/]", binary)[-1]
        if image.lower() not in (name.lower() for name in images):
            raise inf.error(inf.values(line.fields[2], "ServiceBinary")[0],
                            f"ServiceBinary {image} is not among the files "
                            f"[{model.install_section}] copies")
        return line.fields[0], next(n for n in images if n.lower() == image.lower())
    if len(images) == 1:
        return None, images[0]
    what = f"{len(images)} .sys images ({', '.join(images)}) and no AddService" if images \
        else "no .sys image"
    raise inf.error(model.line, f"[{model.install_section}] copies {what}: cannot tell "
                                "which is the driver")


def _number(inf, line, text):
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise inf.error(line, f"{text!r} is not a number") from None


def _parameters(inf, install, warnings):
    """{name: Parameter} from the AddReg sections of ``install``."""
    params = {}             # lowercase name -> dict of Ndi\params attributes
    plain = {}              # lowercase name -> Parameter
    for line in inf.values(install, "AddReg"):
        for name in (f for f in line.fields if f):
            section = inf.section(name)
            if section is None:
                raise inf.error(line, f"AddReg section [{name}] is missing")
            for entry in section.lines:
                _add_reg(inf, entry, params, plain, warnings)
    result = {}
    for folded, attributes in params.items():
        name, first = attributes["name"], attributes["line"]
        kind = attributes.get("type", "edit").lower()
        optional = attributes.get("optional", "0") not in ("0", "")
        value = attributes.get("default")
        result[folded] = Parameter(
            name=name, value=value, kind=kind, line=first,
            description=attributes.get("paramdesc"), minimum=attributes.get("min"),
            maximum=attributes.get("max"), step=attributes.get("step"), optional=optional,
            choices=attributes.get("enum", {}))
    # A value written to the key itself is what the driver reads; the
    # property page's default only fills a value that is absent.
    for folded, parameter in plain.items():
        described = result.get(folded)
        if described is not None:
            parameter = dataclasses.replace(described, value=parameter.value)
        result[folded] = parameter
    return {p.name: p for p in result.values()}


def _add_reg(inf, line, params, plain, warnings):
    if line.key is not None:
        raise inf.error(line, "an AddReg line is: root, subkey, value name, flags, value "
                              "(no =)")
    fields = list(line.fields) + [""] * (4 - len(line.fields))
    root, subkey, name, flags_text = (f.strip() for f in fields[:4])
    values = list(line.fields[4:])
    if not root:
        raise inf.error(line, "AddReg line needs a root key (HKR, HKLM, ...)")
    if root.lower() not in ROOT_KEYS:
        raise inf.error(line, f"unknown registry root {root!r} (HKR, HKLM, HKCU, HKCR, HKU)")
    flags = _number(inf, line, flags_text) if flags_text else 0
    if root.lower() != "hkr":
        return                  # not the adapter's key: nothing the driver reads through NDIS
    if flags & (FLG_ADDREG_KEYONLY | FLG_ADDREG_DELVAL):
        return
    kind = REG_TYPES.get(flags & FLG_ADDREG_TYPE_MASK)
    if kind is None:
        raise inf.error(line, f"unknown AddReg value type in flags 0x{flags:08x}")
    path = [p for p in re.split(r"\\+", subkey) if p]
    lowered = [p.lower() for p in path]
    if lowered[:2] == ["ndi", "params"] and len(path) in (3, 4):
        if lowered[2] not in params:
            _check_parameter_name(inf, line, path[2])
        attributes = params.setdefault(lowered[2], {"name": path[2], "line": line.number})
        text = _value_text(inf, line, kind, values)
        if len(path) == 4:
            if lowered[3] == "enum" and name:
                attributes.setdefault("enum", {})[name] = text
            return
        if name:
            attributes[name.lower()] = text
            if name.lower() == "default":
                attributes["line"] = line.number    # where a bad default is reported
        return
    if path:
        return                  # Ndi, Ndi\Interfaces, ...: read by Windows' setup, not NDIS
    if not name:
        warnings.append(f"{inf.path.name}:{line.number}: the key's default value (no value "
                        "name) is not a parameter; ignored")
        return
    if kind in ("binary", "none") or (kind == "multi_sz" and len(values) > 1):
        warnings.append(f"{inf.path.name}:{line.number}: {name} is a REG_{kind.upper()} "
                        "value; the host's registry holds text and numbers only; ignored")
        return
    _check_parameter_name(inf, line, name)
    plain[name.lower()] = Parameter(name=name, value=_value_text(inf, line, kind, values),
                                    kind=kind, line=line.number)


def _value_text(inf, line, kind, values):
    if kind == "dword":
        text = values[0].strip() if values else "0"
        if len(values) > 1:
            # Written as its four little-endian bytes: 01,00,00,00.
            try:
                raw = bytes(int(v, 16) for v in values[:4])
            except ValueError:
                raise inf.error(line, "a REG_DWORD written as bytes needs hex bytes") from None
            return str(int.from_bytes(raw.ljust(4, b"\0"), "little"))
        number = _number(inf, line, text or "0")
        if not 0 <= number <= 0xFFFFFFFF:
            raise inf.error(line, f"REG_DWORD {text} is outside 0..4294967295")
        return str(number)
    return values[0] if values else ""


def _check_parameter_name(inf, line, name):
    if len(name.encode()) > 63 or not name.isprintable():
        raise inf.error(line, f"parameter name {name[:70]!r} is not 1..63 printable bytes")
