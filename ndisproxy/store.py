"""The driver store: driver packages installed from their INF files.

    store = DriverStore("/var/lib/ndisproxy/drivers")
    driver = store.install("e1000.inf")          # parses, copies, records
    store.get("e1000").image                     # the .sys the config's driver = "e1000" runs
    store.remove("e1000")

Each driver is a directory ``STORE/NAME/`` holding a copy of the INF, every
file its install sections copy, and ``manifest.json``: what was read from
the INF (models, files with their SHA-256, the service image, the AddReg
parameters with their defaults and types).  An install is built in a
hidden directory and renamed into place, and a removal renamed away before
it is deleted, so a reader (the daemon resolving ``driver = NAME``) sees a
driver whole or not at all.

Errors are ``StoreError`` (or ``inf.InfError`` for the INF itself), one line.
docs/driver-store.md is the user's description.
"""
import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil

from . import inf as inf_files
from ._binding import lib
from .errors import NdisProxyError

DEFAULT_STORE = pathlib.Path("/var/lib/ndisproxy/drivers")
MANIFEST = "manifest.json"
FORMAT = 1
# The host's registry (csrc/include/np.h: struct np_param): names under 64
# bytes, values under 192, NP_MAX_PARAMS per adapter.
MAX_PARAMETERS = lib.NP_MAX_PARAMS
MAX_PARAMETER_VALUE = 191
_NAME = re.compile(r"[a-z0-9][a-z0-9_.+-]{0,63}")


class StoreError(NdisProxyError, ValueError):
    """A store operation failed (one line)."""


@dataclasses.dataclass(frozen=True)
class StoredDriver:
    """One installed driver.  ``parameters`` are the registry values its
    adapters start with ({name: text}); ``manifest`` is everything recorded."""
    name: str
    directory: pathlib.Path
    image: pathlib.Path
    parameters: dict
    manifest: dict

    @property
    def inf(self):
        return self.directory / self.manifest["inf"]


def check_name(name):
    """``name`` if it can name a stored driver, else StoreError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".sys"):
        raise StoreError(f"{name!r} is not a driver name: 1..64 of a-z, 0-9, _ . + -, "
                         "starting with a letter or digit, not ending in .sys")
    return name


def default_name(inf_path):
    """The name an INF installs under unless told: its file name, lower case."""
    return pathlib.Path(inf_path).stem.lower()


class DriverStore:
    def __init__(self, directory=DEFAULT_STORE):
        self.directory = pathlib.Path(directory)

    def __repr__(self):
        return f"<DriverStore {self.directory}>"

    # -- reading ----------------------------------------------------------------

    def names(self):
        """Installed driver names, sorted; [] if the store does not exist."""
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"{self.directory}: cannot list the store: "
                             f"{exc.strerror or exc}") from None
        return sorted(p.name for p in entries
                      if not p.name.startswith(".") and (p / MANIFEST).is_file())

    def get(self, name):
        """The stored driver ``name``; KeyError if there is none, StoreError
        if its record is damaged."""
        directory = self.directory / name
        try:
            present = _NAME.fullmatch(name) and (directory / MANIFEST).is_file()
        except OSError as exc:
            raise StoreError(f"{self.directory}: cannot read the store: "
                             f"{exc.strerror or exc}") from None
        if not present:
            raise KeyError(name)
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{directory / MANIFEST}: cannot read the driver's record: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format {manifest.get('format')!r}, expected {FORMAT}")
            image = directory / manifest["image"]
            parameters = {p: entry["value"] for p, entry in manifest["parameters"].items()
                          if entry["value"] is not None}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"{directory / MANIFEST}: not a driver record "
                             f"({exc}); reinstall the driver") from None
        if not image.is_file():
            raise StoreError(f"{name}: its image {image} is missing; reinstall the driver")
        return StoredDriver(name=name, directory=directory, image=image,
                            parameters=parameters, manifest=manifest)

    def drivers(self):
        """Every stored driver whose record reads."""
        found = []
        for name in self.names():
            try:
                found.append(self.get(name))
            except (KeyError, StoreError):
                continue
        return found

    # -- changing -----------------------------------------------------------------

    def install(self, inf_path, name=None, model=None):
        """Install the driver package ``inf_path`` describes as ``name``
        (default: the INF's file name in lower case), with the install
        section of ``model`` (a hardware id or description; default: the
        first model): a StoredDriver."""
        inf_path = pathlib.Path(inf_path)
        name = check_name(name if name is not None else default_name(inf_path))
        package = inf_files.read_package(inf_path, model)
        _check_limits(package)
        if name in self.names():
            raise StoreError(f"a driver {name!r} is already installed in {self.directory}; "
                             f"remove it first (ndisproxy driver remove {name})")
        try:
            if not self.directory.is_dir():
                # Readable by all: hosts may run as [daemon] host_user.
                self.directory.mkdir(parents=True)
                self.directory.chmod(0o755)
        except OSError as exc:
            raise StoreError(f"{self.directory}: cannot create the store: "
                             f"{exc.strerror or exc}") from None
        staging = self.directory / f".{name}.installing-{secrets.token_hex(4)}"
        try:
            staging.mkdir(mode=0o755)
            files = {}
            for item in package.files:
                files[item.name] = _copy(item.source, staging / item.name)
            inf_copy = inf_path.name
            if inf_copy.lower() in (n.lower() for n in files):
                raise StoreError(f"{inf_path}: the INF copies a file of its own name")
            _copy(inf_path, staging / inf_copy)
            manifest = _manifest(name, package, inf_copy, files)
            _write(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
            _fsync_directory(staging)
            try:
                os.rename(staging, self.directory / name)
            except OSError as exc:
                raise StoreError(f"{self.directory / name}: cannot install: "
                                 f"{exc.strerror or exc} (installed meanwhile?)") from None
            _fsync_directory(self.directory)
        except OSError as exc:
            raise StoreError(f"{self.directory}: cannot install {name}: "
                             f"{exc.strerror or exc}") from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return self.get(name)

    def remove(self, name):
        """Remove the stored driver ``name``; KeyError if there is none."""
        if name not in self.names():
            raise KeyError(name)
        doomed = self.directory / f".{name}.removing-{secrets.token_hex(4)}"
        try:
            os.rename(self.directory / name, doomed)
        except OSError as exc:
            raise StoreError(f"{self.directory / name}: cannot remove: "
                             f"{exc.strerror or exc}") from None
        shutil.rmtree(doomed, ignore_errors=True)


def _check_limits(package):
    """What the host's registry cannot hold is refused at install, naming
    the INF line, rather than when an adapter starts."""
    values = [p for p in package.parameters.values() if p.value is not None]
    if len(values) > MAX_PARAMETERS:
        raise inf_files.InfError(package.inf.path, None,
                                 f"{len(values)} parameters with values; an adapter's "
                                 f"registry holds at most {MAX_PARAMETERS}")
    for parameter in values:
        size = len(parameter.value.encode())
        if size > MAX_PARAMETER_VALUE or "\0" in parameter.value:
            raise inf_files.InfError(package.inf.path, parameter.line,
                                     f"{parameter.name}'s value is {size} bytes; a parameter "
                                     f"value can have at most {MAX_PARAMETER_VALUE}")


def _copy(source, target):
    """Copy a file (readable by everyone: hosts may run as another user);
    its SHA-256."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "xb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    os.chmod(target, 0o644)
    return digest.hexdigest()


def _write(path, text):
    with open(path, "x") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o644)


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _manifest(name, package, inf_copy, files):
    chosen = package.model
    return {
        "format": FORMAT,
        "name": name,
        "installed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "inf": inf_copy,
        "source": str(package.inf.path.resolve()),
        "provider": package.provider,
        "driver_version": package.driver_version,
        "image": package.image,
        "service": package.service,
        "install_section": chosen.install_section,
        "model": {"description": chosen.description,
                  "hardware_ids": list(chosen.hardware_ids)},
        "models": [{"description": m.description, "install_section": m.install_section,
                    "hardware_ids": list(m.hardware_ids)} for m in package.models],
        "files": [{"name": item.name, "sha256": files[item.name]} for item in package.files],
        "parameters": {p.name: p.as_json() for p in package.parameters.values()},
        "warnings": list(package.warnings),
    }
