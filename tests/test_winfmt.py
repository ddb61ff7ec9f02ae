"""Build and run the native np_winfmt checks (tests/native/winfmt_check.c).

The formatter reads arguments laid out by a Windows x64 varargs call, which
only C can produce, so the real assertions live in the C program; this test
builds it with warnings as errors and requires every case to pass.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_winfmt_native(tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on PATH")

    exe = tmp_path / "winfmt_check"
    build = subprocess.run(
        ["cc", "-O2", "-Wall", "-Werror", "-Icsrc/include",
         "csrc/winfmt.c", "tests/native/winfmt_check.c", "-o", str(exe)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert build.returncode == 0, (
        f"build failed:\n{build.stdout}{build.stderr}")

    run = subprocess.run([str(exe)], cwd=REPO, capture_output=True,
                         text=True, errors="replace", timeout=60)
    failures = [line for line in run.stdout.splitlines()
                if line.startswith("FAIL")]
    assert run.returncode == 0 and not failures, (
        f"winfmt_check exited {run.returncode}\n"
        f"{run.stdout}{run.stderr}")
    assert "ok 1" in run.stdout.splitlines()
