"""docs/exports.md lists exactly what the loader can bind.

The export tables at the end of csrc/ndis.c, csrc/ntoskrnl.c and csrc/hal.c
are the whole of what a driver image may import (pe.c binds against nothing
else), and docs/exports.md is where a user looks that up.  This test keeps
the two equal: every NP_EXPORT(Name) / NP_EXPORT_AS("name", fn) of a module
must have a row ``| `Name` | ... |`` under that module's ``## `` heading, and
every such row must name a real export.

Pure text comparison: it reads the sources and the document from the
repository (found from this file's path) and imports nothing of ndisproxy.
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "exports.md"

# module heading in docs/exports.md -> the C file holding its export table
MODULES = {
    "NDIS.SYS": "csrc/ndis.c",
    "ntoskrnl.exe": "csrc/ntoskrnl.c",
    "HAL.dll": "csrc/hal.c",
}

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_EXPORT = re.compile(r"\bNP_EXPORT\(\s*(\w+)\s*\)")
_EXPORT_AS = re.compile(r'\bNP_EXPORT_AS\(\s*"([^"]+)"')
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def exported_names(source):
    """Names in NP_EXPORT/NP_EXPORT_AS entries of one C file, as a list."""
    text = _COMMENT.sub(" ", (ROOT / source).read_text())
    return _EXPORT.findall(text) + _EXPORT_AS.findall(text)


def documented_names():
    """{module heading: [backticked first-column names in its section]}."""
    sections = {}
    current = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            current = title if title in MODULES else None
            if current is not None:
                sections.setdefault(current, [])
            continue
        if current is not None:
            match = _ROW.match(line)
            if match:
                sections[current].append(match.group(1))
    return sections


def _duplicates(names):
    return sorted({n for n in names if names.count(n) > 1})


@pytest.mark.parametrize("module", sorted(MODULES))
def test_export_table_matches_docs(module):
    code = exported_names(MODULES[module])
    assert code, f"no NP_EXPORT entries found in {MODULES[module]}"
    assert not _duplicates(code), (
        f"{MODULES[module]} exports these twice: {', '.join(_duplicates(code))}")

    sections = documented_names()
    assert module in sections, f"docs/exports.md has no '## {module}' section"
    doc = sections[module]
    assert not _duplicates(doc), (
        f"docs/exports.md lists these twice under {module}: {', '.join(_duplicates(doc))}")

    missing = sorted(set(code) - set(doc))
    extra = sorted(set(doc) - set(code))
    problems = []
    if missing:
        problems.append(f"exported by {MODULES[module]} but not documented: "
                        + ", ".join(missing))
    if extra:
        problems.append(f"documented under {module} but not exported: " + ", ".join(extra))
    assert not problems, "; ".join(problems)
