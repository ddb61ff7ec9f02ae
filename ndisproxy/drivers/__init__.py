"""The driver images bundled with ndisproxy, built as PE32+ by the install.

``path(name)`` finds a bundled driver (``"mocknic"``); ``testing_path(name)``
one of the tiny single-purpose test drivers (``"recurse"``, ``"wild"``,
``"spin"``, ``"missing"``, ``"dbgprint"``, ``"ndisapi"``).
"""
import importlib.resources
import pathlib


def _find(package, name):
    image = importlib.resources.files(package) / f"{name}.sys"
    if not image.is_file():
        available = sorted(p.name[:-4] for p in importlib.resources.files(package).iterdir()
                           if p.name.endswith(".sys"))
        raise FileNotFoundError(
            f"no bundled driver {name!r} (available: {', '.join(available) or 'none'})")
    return pathlib.Path(str(image))


def path(name):
    """Path of the bundled driver ``name``."""
    return _find(__name__, name)


def testing_path(name):
    """Path of the test driver ``name``."""
    return _find(__name__ + ".testing", name)
