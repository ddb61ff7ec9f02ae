"""The public surface type-checks: mypy is clean on ndisproxy.api."""
import pathlib
import shutil
import subprocess
import sys

import pytest

import ndisproxy


def test_public_api_is_mypy_clean(tmp_path):
    mypy = shutil.which("mypy") or str(pathlib.Path(sys.executable).with_name("mypy"))
    if not pathlib.Path(mypy).exists():
        pytest.skip("mypy is not installed (pip install '.[test]' brings it)")
    package = pathlib.Path(ndisproxy.__file__).parent
    assert (package / "py.typed").exists()
    # As a user's project sees it: the installed, PEP 561-typed package.
    result = subprocess.run([mypy, "--ignore-missing-imports", "--follow-imports=silent",
                             "--check-untyped-defs", "--cache-dir", str(tmp_path / "cache"),
                             "-m", "ndisproxy.api"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
