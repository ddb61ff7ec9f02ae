"""The driver images bundled with ndisproxy, built as PE32+ by the install.

``path(name)`` finds a bundled driver (``"mocknic"``), ``inf_path(name)``
the INF of its driver package (for ``ndisproxy driver install``);
``testing_path(name)`` one of the tiny single-purpose test drivers
(``"recurse"``, ``"wild"``, ``"spin"``, ``"missing"``, ``"dbgprint"``,
``"ndisapi"``, ``"kernelapi"``, ``"adapterapi"``, and those of what
MSVC-built drivers do: ``"cr8"``, ``"kuser"``, ``"kpcr"``, ``"gs"``, ``"seh"``,
``"smallalign"``, ``"usehelper"`` and ``"usefwd"``, whose helper
``nphelper.dll`` lies beside them).
"""
import importlib.resources
import pathlib


def _find(package, name, suffix=".sys"):
    image = importlib.resources.files(package) / f"{name}{suffix}"
    if not image.is_file():
        available = names(package, suffix)
        what = "driver" if suffix == ".sys" else "driver package (INF)"
        raise FileNotFoundError(
            f"no bundled {what} {name!r} (available: {', '.join(available) or 'none'})")
    return pathlib.Path(str(image))


def names(package=__name__, suffix=".sys"):
    """The bundled drivers' names (or of those with an INF: ``suffix=".inf"``)."""
    return sorted(p.name[:-len(suffix)] for p in importlib.resources.files(package).iterdir()
                  if p.name.endswith(suffix))


def path(name):
    """Path of the bundled driver ``name``."""
    return _find(__name__, name)


def inf_path(name):
    """Path of the INF of the bundled driver ``name``, next to its image."""
    return _find(__name__, name, ".inf")


def testing_path(name):
    """Path of the test driver ``name``."""
    return _find(__name__ + ".testing", name)
