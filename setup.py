"""Build hooks: the cffi runtime module and the PE32+ driver images.

Everything declarative lives in pyproject.toml; this file only adds what
setuptools cannot express: cffi's out-of-line module, and a build step that
cross-compiles the bundled drivers (build_support/drivers.py).
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from build_support import drivers  # noqa: E402


class BuildPyWithDrivers(build_py):
    def run(self):
        super().run()
        drivers.build_all(
            source_root=os.path.dirname(os.path.abspath(__file__)),
            out_root=os.path.join(self.build_lib, "ndisproxy", "drivers"),
            temp_root=os.path.join(self.build_lib, "..", "driver-build"),
        )


setup(
    cffi_modules=["ndisproxy/_ffi_build.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithDrivers},
)
