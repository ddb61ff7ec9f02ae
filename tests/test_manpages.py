"""docs/man is generated from the CLI's parsers and must be current."""
import pathlib

from ndisproxy import manpage

MAN = pathlib.Path(__file__).resolve().parent.parent / "docs" / "man"


def test_man_pages_are_current():
    pages = manpage.pages()
    assert sorted(p.name for p in MAN.glob("*.1")) == sorted(pages), \
        "run: python -m ndisproxy.manpage docs/man"
    for name, text in pages.items():
        assert (MAN / name).read_text() == text, \
            f"docs/man/{name} is stale: run python -m ndisproxy.manpage docs/man"
        assert text.startswith(manpage.HEADER)
