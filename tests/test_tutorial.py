"""The tutorial's example runs as printed (docs/testing-with-ndisproxy.md).

Every fenced block of the tutorial whose first line is ``# file: NAME`` is
written to a fresh directory, and pytest runs there in a subprocess, the
way a reader would run it: its configuration is the tutorial's pytest.ini,
its fixtures come from the installed plugin.
"""
import os
import pathlib
import re
import subprocess
import sys

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "testing-with-ndisproxy.md"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
FILE_LINE = re.compile(r"#\s*file:\s*(\S+)")
EXPECTED = {"linkwatch.py", "test_linkwatch.py", "pytest.ini"}


def example_files():
    """{name: text} of the tutorial's ``# file: NAME`` blocks."""
    files = {}
    for block in FENCE.finditer(DOC.read_text()):
        text = block.group(1)
        found = FILE_LINE.fullmatch(text.split("\n", 1)[0].strip())
        if found:
            name = found.group(1)
            assert name not in files, f"{DOC.name}: two blocks are # file: {name}"
            assert "/" not in name and name not in (".", ".."), f"{DOC.name}: file {name!r}"
            files[name] = text
    return files


def test_the_tutorial_names_its_example_files():
    files = example_files()
    assert set(files) == EXPECTED, f"{DOC.name}: # file: blocks {sorted(files)}"
    for name, text in files.items():
        if name.endswith(".py"):
            compile(text, f"{DOC.name}:{name}", "exec")
    assert "trio_mode = true" in files["pytest.ini"]


def test_the_tutorial_example_passes(tmp_path, ndisproxy_require_net):
    for name, text in example_files().items():
        (tmp_path / name).write_text(text)
    # Privileges are there (ndisproxy_require_net): a skip inside would
    # hide a broken example, so it is a failure there too.
    env = {**os.environ, "NDISPROXY_REQUIRE_NET": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    print(result.stdout)        # the measured figures (pytest -s or -rP shows them)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert re.fullmatch(r"2 passed in [\d.]+s", summary), summary
    for figure in (r"set_link\(False\): linkwatch saw 'down' after [\d.]+ ms",
                   r"set_link\(True\): linkwatch saw 'up' after [\d.]+ ms",
                   r"inject\('crash'\): carrier down after [\d.]+ ms, back up [\d.]+ ms later"):
        assert re.search(figure, result.stdout), f"no {figure!r} in:\n{result.stdout}"
