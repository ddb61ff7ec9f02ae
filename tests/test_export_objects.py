"""Code a driver can be aborted inside must not allocate or take global locks.

The trap or the watchdog may abandon a driver call anywhere, including in
the middle of one of our exports; if that export held malloc's arena lock or
a process-wide mutex, the host would deadlock later (notes/rulings.md).  So
the object files of everything reachable from driver code are checked for
references to the allocator, pthread mutexes and stdio.
"""
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DRIVER_SIDE = ["ndis.c", "ntoskrnl.c", "hal.c", "indicate.c", "verifier.c", "winfmt.c",
               "arena.c", "device.c", "send.c", "capture.c", "emulate.c"]
FORBIDDEN = ("malloc", "calloc", "realloc", "free", "pthread_mutex_lock",
             "pthread_mutex_unlock", "printf", "snprintf", "vsnprintf", "fprintf", "fwrite",
             "puts")


@pytest.mark.parametrize("source", DRIVER_SIDE)
def test_driver_side_objects_reference_no_allocator_or_locks(source, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    obj = tmp_path / "x.o"
    subprocess.run([cc, "-O2", "-std=gnu11", f"-I{ROOT / 'csrc/include'}", "-c",
                    str(ROOT / "csrc" / source), "-o", str(obj)], check=True)
    undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True,
                               check=True).stdout.split()
    bad = sorted(set(undefined) & set(FORBIDDEN))
    assert not bad, f"{source} references {bad}"
