"""The daemon's configuration file: TOML, validated before anything touches the system.

``load(path)`` reads and validates a file and returns a frozen ``Config``;
``loads(text, name=..., directory=...)`` does the same for text (an embedded
default, a test).  Any problem raises ``ConfigError``, whose message is one
line naming the file, the key and what is wrong::

    ndisproxy.toml: adapter[1].wire.vni: expected an integer in 0..16777215, got "42x"

Validation stops at the first problem, in a fixed order (unknown keys of a
table before its values; the daemon table, then each adapter in file order,
then what adapters must not share), so a file always gives the same message.

``check_system(config)`` then compares a valid config with the running system,
read-only: interface names taken by interfaces ndisproxy does not manage,
existing TAPs that are missing or are not TAPs, network namespaces that do not
exist, driver images the loader would refuse.  A driver named rather than
given as a path is looked up in the driver store (``[daemon] driver_store``,
ndisproxy.store), then among the bundled ones; a stored driver's INF
parameter defaults join ``[adapter.parameters]``, which override them.
docs/config.md is the reference for every key.
"""
import dataclasses
import difflib
import ipaddress
import json
import os
import pathlib
import re
import tomllib

from . import drivers, peimage, store as driver_store
from .driver import DEFAULT_DEADLINES, DEFAULT_STACK_SIZE, MIN_STACK_SIZE
from .errors import ImageError, NdisProxyError
from ._binding import VIOLATIONS, lib

DEFAULT_SOCKET = pathlib.Path("/run/ndisproxy/control.sock")
LOG_LEVELS = ("debug", "info", "warning", "error")
ISOLATIONS = ("process", "inprocess")
WIRE_KINDS = ("tap", "loopback", "vxlan")
MAX_STACK_SIZE = lib.NP_STACK_MAX
MTU_RANGE = (68, 65535)
VNI_MAX = 2**24 - 1
# The host's registry (csrc/include/np.h: struct np_param, NP_MAX_PARAMS):
# names under 64 bytes, values under 192, 64 parameters per adapter.
MAX_PARAMETERS = driver_store.MAX_PARAMETERS
MAX_PARAMETER_VALUE = driver_store.MAX_PARAMETER_VALUE
MAX_DWORD = 2**32 - 1
# Interfaces whose alias starts with this belong to ndisproxy (a previous run
# with keep_on_stop, or a crashed one); anything else is the administrator's.
OWNER_ALIAS = "ndisproxy:"

# sun_path is 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_IFNAMSIZ = 16
# NDIS's standardized keywords start with "*" (*JumboPacket, *SpeedDuplex).
_PARAMETER_NAME = re.compile(r"(?=.{1,63}$)\*?[A-Za-z0-9_]+")
_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
_POOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
_SIZE = re.compile(r"([0-9]+) ?(KiB|MiB|K|M)?")
_SIZE_UNITS = {None: 1, "K": 1024, "KiB": 1024, "M": 1024**2, "MiB": 1024**2}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_POSITION = re.compile(r"(.*) \(at line (\d+), column (\d+)\)")

_TOP_KEYS = ("daemon", "adapter")
_DAEMON_KEYS = ("socket", "log_level", "group", "admin_group", "host_user", "driver_store",
                "heartbeat")
_ADAPTER_KEYS = ("name", "driver", "stack_size", "mtu", "isolation", "host", "existing_tap",
                 "keep_on_stop", "mac", "wire", "parameters", "restart", "deadlines",
                 "verifier_fatal", "hang_check", "offloads")
_RESTART_KEYS = ("delay", "max_delay", "limit", "stable_after")
# Seconds: a deadline under the watchdog's tick is no deadline; over a
# minute is a driver no one would wait for.
DEADLINE_RANGE = (0.01, 60.0)
_WIRE_KEYS = ("kind", "ifname", "netns", "gso", "local", "remote", "vni")
_WIRE_KIND_KEYS = {"tap": ("ifname", "netns", "gso"), "loopback": (), "vxlan": ("local", "remote", "vni")}
_WIRE_REQUIRED = {"tap": ("ifname",), "loopback": (), "vxlan": ("local", "remote", "vni")}


class ConfigError(NdisProxyError, ValueError):
    """The configuration is invalid, or does not fit the running system.

    ``path`` is the file as given, ``key`` the key path
    (``"adapter[1].wire.vni"``; ``None`` for problems with the file as a
    whole), ``problem`` what is wrong; ``line`` and ``column`` are set for
    TOML syntax errors.  ``str()`` of the error is always one line.
    """

    def __init__(self, path, key, problem, *, line=None, column=None):
        # One line, whatever a value or an OS message contained.
        problem = " ".join(str(problem).split("\n"))
        self.path = str(path)
        self.key = key
        self.problem = problem
        self.line = line
        self.column = column
        where = [self.path]
        if line is not None:
            where.append(f"line {line}, column {column}")
        if key:
            where.append(key)
        super().__init__(": ".join(where + [problem]))


@dataclasses.dataclass(frozen=True)
class DaemonConfig:
    socket: pathlib.Path = DEFAULT_SOCKET
    log_level: str = "info"
    group: str | None = None          # may use read-only control verbs
    admin_group: str | None = None    # may also use mutating ones
    host_user: str | None = None      # driver hosts run as this user
    driver_store: pathlib.Path = driver_store.DEFAULT_STORE   # where `driver = NAME` looks
    # Seconds a driver host may go without answering the proxy's ping
    # before it is killed and restarted; 0 turns the heartbeat off.
    heartbeat: float = 3.0


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    """How an adapter's host is restarted after faults (``[adapter.restart]``).

    The first restart is immediate; the next waits ``delay`` seconds, and
    each one after that twice as long, up to ``max_delay``.  After ``limit``
    faults in a row (0: no limit) the adapter stays faulted until
    ``ndisproxy reset``.  A run of ``stable_after`` seconds forgets the
    faults before it.
    """
    delay: float = 0.25
    max_delay: float = 30.0
    limit: int = 10
    stable_after: float = 60.0


@dataclasses.dataclass(frozen=True)
class WireConfig:
    """Where an adapter's cable goes.

    ``tap``: a TAP named ``ifname`` (in namespace ``netns`` if set) carries
    the frames the driver transmits, a large send whole as one GSO frame
    unless ``gso`` is false; ``loopback``: the cable is looped back;
    ``vxlan``: frames travel in VXLAN datagrams with ``vni`` from ``local`` to
    ``remote``, each an ``(ipaddress.ip_address, port)`` tuple.
    """
    kind: str
    ifname: str | None = None
    netns: str | None = None
    local: tuple | None = None
    remote: tuple | None = None
    vni: int | None = None
    gso: bool | None = None     # tap: True unless the file says false


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
    """One ``[[adapter]]``: a Linux TAP ``name`` served by ``driver``.

    ``parameters`` are the registry values the driver reads: a stored
    driver's INF defaults, overridden by ``[adapter.parameters]``, and
    ``NetworkAddress`` when ``mac`` is set.
    """
    name: str
    driver: pathlib.Path
    driver_name: str
    wire: WireConfig
    stack_size: int = DEFAULT_STACK_SIZE
    mtu: int | None = None
    isolation: str = "process"
    host: str | None = None
    existing_tap: bool = False
    keep_on_stop: bool = False
    mac: str | None = None
    parameters: dict = dataclasses.field(default_factory=dict, hash=False)
    restart: RestartPolicy = RestartPolicy()
    # Seconds per entry-point class (ndisproxy.driver.DEADLINE_CLASSES).
    deadlines: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_DEADLINES),
                                        hash=False)
    # Verifier findings that stop the driver instead of warning.
    verifier_fatal: tuple = ()
    # Seconds between MiniportCheckForHang calls; None: the driver's own.
    hang_check: float | None = None
    # Offer Linux what the driver offloads (checksums, large sends).
    offloads: bool = True


@dataclasses.dataclass(frozen=True)
class Config:
    daemon: DaemonConfig
    adapters: tuple
    path: pathlib.Path | None = None


# -- reading ------------------------------------------------------------------


def load(path):
    """Read and validate the config file ``path``; a ``Config`` or ``ConfigError``."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(path, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
                          line=line, column=column) from None
    return _parse(text, path, path.absolute().parent)


def loads(text, *, name="<string>", directory=None):
    """Validate config ``text``; ``name`` is the file name errors show,
    ``directory`` the base of relative paths (default: the current one)."""
    directory = pathlib.Path(directory) if directory is not None else pathlib.Path.cwd()
    return _parse(text, pathlib.Path(name), directory.absolute())


def adapter_config(table, *, others=(), name="<api>", directory=None, store=None):
    """One adapter from a mapping shaped like an ``[[adapter]]`` table (the
    library API's way in): validated as a config file's would be, and
    against ``others`` (AdapterConfigs already running) for what adapters
    must not share.  ``store`` is the driver store a driver name is looked
    up in (default /var/lib/ndisproxy/drivers)."""
    directory = pathlib.Path(directory) if directory is not None else pathlib.Path.cwd()
    store = driver_store.DEFAULT_STORE if store is None else pathlib.Path(store)
    try:
        adapter = _adapter(table, "adapter", directory.absolute(), store)
        _check_shared((*others, adapter))
    except _Invalid as exc:
        raise ConfigError(pathlib.Path(name), exc.key, exc.problem) from None
    return adapter


class _Invalid(Exception):
    """A problem found below _parse(); it adds the file name."""

    def __init__(self, key, problem):
        super().__init__(key, problem)
        self.key = key
        self.problem = problem


def _parse(text, path, directory):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.fullmatch(str(exc))
        if match is None:
            raise ConfigError(path, None, f"invalid TOML: {_lower_first(str(exc))}") from None
        raise ConfigError(path, None, f"invalid TOML: {_lower_first(match[1])}",
                          line=int(match[2]), column=int(match[3])) from None
    try:
        _check_keys(data, "", _TOP_KEYS)
        daemon = _daemon(data.get("daemon"), directory)
        adapters = _adapters(data.get("adapter"), directory, daemon.driver_store)
    except _Invalid as exc:
        raise ConfigError(path, exc.key, exc.problem) from None
    return Config(daemon=daemon, adapters=adapters, path=path)


def _daemon(table, directory):
    if table is None:
        return DaemonConfig()
    _expect_table(table, "daemon", "[daemon]")
    _check_keys(table, "daemon", _DAEMON_KEYS)
    socket = DEFAULT_SOCKET
    if "socket" in table:
        socket = _socket_path(table["socket"], "daemon.socket", directory)
    log_level = _choice(table.get("log_level", "info"), "daemon.log_level", LOG_LEVELS)
    store = driver_store.DEFAULT_STORE
    if "driver_store" in table:
        store = _directory(table["driver_store"], "daemon.driver_store", directory)
    groups = {}
    for key in ("group", "admin_group", "host_user"):
        if key in table:
            value = table[key]
            what = "a user name" if key == "host_user" else "a group name"
            if not isinstance(value, str) or not _GROUP_NAME.fullmatch(value):
                raise _Invalid(f"daemon.{key}", f"expected {what}, got {_describe(value)}")
            groups[key] = value
    heartbeat = DaemonConfig.heartbeat
    if "heartbeat" in table:
        heartbeat = _seconds(table["heartbeat"], "daemon.heartbeat", 0.0, 3600.0)
        if 0 < heartbeat < 0.1:
            raise _Invalid("daemon.heartbeat", f"expected 0 (off) or at least 0.1 seconds, "
                                               f"got {heartbeat}")
    return DaemonConfig(socket=socket, log_level=log_level, driver_store=store,
                        heartbeat=heartbeat, **groups)


def _adapters(tables, directory, store):
    if tables is None or tables == []:
        raise _Invalid("adapter", "no adapters configured; add at least one [[adapter]] table")
    if isinstance(tables, dict):
        raise _Invalid("adapter", "expected an array of tables ([[adapter]], double brackets), "
                                  "got a single table ([adapter])")
    if not isinstance(tables, list):
        raise _Invalid("adapter", f"expected an array of tables ([[adapter]]), "
                                  f"got {_describe(tables)}")
    adapters = tuple(_adapter(table, f"adapter[{i}]", directory, store)
                     for i, table in enumerate(tables))
    _check_shared(adapters)
    return adapters


def _adapter(table, key, directory, store):
    _expect_table(table, key, "[[adapter]]")
    _check_keys(table, key, _ADAPTER_KEYS)
    for required in ("name", "driver", "wire"):
        if required not in table:
            what = "table [adapter.wire]" if required == "wire" else "key"
            raise _Invalid(f"{key}.{required}", f"missing required {what}")
    name = _ifname(table["name"], f"{key}.name")
    driver_name, driver, defaults = _driver(table["driver"], f"{key}.driver", directory, store)
    stack_size = DEFAULT_STACK_SIZE
    if "stack_size" in table:
        stack_size = _stack_size(table["stack_size"], f"{key}.stack_size")
    mtu = None
    if "mtu" in table:
        mtu = _integer(table["mtu"], f"{key}.mtu", *MTU_RANGE)
    isolation = _choice(table.get("isolation", "process"), f"{key}.isolation", ISOLATIONS)
    host = None
    if "host" in table:
        host = _pool_name(table["host"], f"{key}.host")
        if isolation != "process":
            raise _Invalid(f"{key}.host", f'a host pool needs isolation = "process" '
                                          f'({key}.isolation is "{isolation}")')
    existing_tap = _boolean(table.get("existing_tap", False), f"{key}.existing_tap")
    keep_on_stop = _boolean(table.get("keep_on_stop", False), f"{key}.keep_on_stop")
    offloads = _boolean(table.get("offloads", True), f"{key}.offloads")
    mac = None
    if "mac" in table:
        mac = _mac(table["mac"], f"{key}.mac")
    wire = _wire(table["wire"], f"{key}.wire")
    parameters = _parameters(table.get("parameters", {}), f"{key}.parameters")
    if mac is not None:
        clash = _same_parameter(parameters, "NetworkAddress")
        if clash is not None:
            raise _Invalid(f"{key}.mac", f"set twice: here and as {key}.parameters.{clash}; "
                                         "keep one of them")
        parameters["NetworkAddress"] = mac
    # A stored driver's INF defaults, for what the config does not set.
    inherited = {name: value for name, value in (defaults or {}).items()
                 if _same_parameter(parameters, name) is None}
    if len(inherited) + len(parameters) > MAX_PARAMETERS:
        counted = [f"NetworkAddress from {key}.mac"] if mac is not None else []
        if inherited:
            counted.append(f"{len(inherited)} defaults from the INF of {driver_name}")
        raise _Invalid(f"{key}.parameters",
                       f"{len(inherited) + len(parameters)} parameters, counting "
                       f"{' and '.join(counted)}; a driver can have at most {MAX_PARAMETERS}")
    parameters = {**inherited, **parameters}
    restart = _restart(table.get("restart", {}), f"{key}.restart")
    deadlines = _deadlines(table.get("deadlines", {}), f"{key}.deadlines")
    verifier_fatal = _verifier_fatal(table.get("verifier_fatal", []), f"{key}.verifier_fatal")
    hang_check = None
    if "hang_check" in table:
        hang_check = _seconds(table["hang_check"], f"{key}.hang_check", 0.0, 3600.0)
    return AdapterConfig(name=name, driver=driver, driver_name=driver_name, wire=wire,
                         stack_size=stack_size, mtu=mtu, isolation=isolation, host=host,
                         existing_tap=existing_tap, keep_on_stop=keep_on_stop, mac=mac,
                         parameters=parameters, restart=restart, deadlines=deadlines,
                         verifier_fatal=verifier_fatal, hang_check=hang_check,
                         offloads=offloads)


def _restart(table, key):
    _expect_table(table, key, "[adapter.restart]")
    _check_keys(table, key, _RESTART_KEYS)
    values = {}
    for name in ("delay", "max_delay", "stable_after"):
        if name in table:
            values[name] = _seconds(table[name], f"{key}.{name}", 0.0, 86400.0)
    if "limit" in table:
        values["limit"] = _integer(table["limit"], f"{key}.limit", 0, 1_000_000)
    policy = RestartPolicy(**values)
    if policy.max_delay < policy.delay:
        raise _Invalid(f"{key}.max_delay", f"{policy.max_delay} is less than "
                                           f"{key}.delay ({policy.delay})")
    return policy


def _deadlines(table, key):
    _expect_table(table, key, "[adapter.deadlines]")
    _check_keys(table, key, tuple(DEFAULT_DEADLINES))
    deadlines = dict(DEFAULT_DEADLINES)
    for name, value in table.items():
        deadlines[name] = _seconds(value, f"{key}.{name}", *DEADLINE_RANGE)
    return deadlines


def _verifier_fatal(value, key):
    if not isinstance(value, list):
        raise _Invalid(key, f"expected a list of verifier finding kinds, got {_describe(value)}")
    for item in value:
        if item not in VIOLATIONS:
            raise _Invalid(key, f"expected {_alternatives(VIOLATIONS)}, got {_describe(item)}")
    return tuple(dict.fromkeys(value))


def _wire(table, key):
    _expect_table(table, key, "[adapter.wire]")
    _check_keys(table, key, _WIRE_KEYS)
    if "kind" not in table:
        raise _Invalid(f"{key}.kind", f"missing required key ({_alternatives(WIRE_KINDS)})")
    kind = _choice(table["kind"], f"{key}.kind", WIRE_KINDS)
    takes = _WIRE_KIND_KEYS[kind]
    for name in table:
        if name != "kind" and name not in takes:
            usable = f"it takes {', '.join(takes)}" if takes else "it takes no other keys"
            raise _Invalid(_join(key, name), f'not used by kind = "{kind}" ({usable})')
    for name in _WIRE_REQUIRED[kind]:
        if name not in table:
            raise _Invalid(f"{key}.{name}", f'missing required key (kind = "{kind}" needs '
                                            f'{", ".join(_WIRE_REQUIRED[kind])})')
    if kind == "tap":
        netns = None
        if "netns" in table:
            netns = _netns_name(table["netns"], f"{key}.netns")
        return WireConfig(kind, ifname=_ifname(table["ifname"], f"{key}.ifname"), netns=netns,
                          gso=_boolean(table.get("gso", True), f"{key}.gso"))
    if kind == "vxlan":
        local = _endpoint(table["local"], f"{key}.local")
        remote = _endpoint(table["remote"], f"{key}.remote")
        if local[0].version != remote[0].version:
            raise _Invalid(f"{key}.remote", f"{_quote(table['remote'])} is IPv{remote[0].version}"
                                            f" but local is IPv{local[0].version}; both ends "
                                            "must be one family")
        if local[0].is_multicast:
            raise _Invalid(f"{key}.local", f"{local[0]} is a multicast address; local must be "
                                           "an address of this host (or unspecified)")
        if remote[0].is_unspecified:
            raise _Invalid(f"{key}.remote", f"{remote[0]} is the unspecified address; remote "
                                            "must be the peer's address")
        if local == remote:
            raise _Invalid(f"{key}.remote", f"{_quote(table['remote'])} is the same endpoint as"
                                            ' local (for a cable to itself use kind = "loopback")')
        vni = _integer(table["vni"], f"{key}.vni", 0, VNI_MAX)
        return WireConfig(kind, local=local, remote=remote, vni=vni)
    return WireConfig(kind)


def _check_shared(adapters):
    """What adapters must not share: interface names, VXLAN endpoints, pools."""
    names = {}
    for i, adapter in enumerate(adapters):
        if adapter.name in names:
            raise _Invalid(f"adapter[{i}].name", f"{_quote(adapter.name)} is already the name of "
                                                 f"adapter[{names[adapter.name]}]")
        names[adapter.name] = i
    wires = {}
    for i, adapter in enumerate(adapters):
        ifname = adapter.wire.ifname
        if ifname is None:
            continue
        if ifname in names:
            raise _Invalid(f"adapter[{i}].wire.ifname", f"{_quote(ifname)} is also the name of "
                                                       f"adapter[{names[ifname]}]")
        if ifname in wires:
            raise _Invalid(f"adapter[{i}].wire.ifname", f"{_quote(ifname)} is already "
                                                       f"adapter[{wires[ifname]}].wire.ifname")
        wires[ifname] = i
    for i, adapter in enumerate(adapters):
        wire = adapter.wire
        for j, other in enumerate(adapters[:i]):
            if (wire.kind == other.wire.kind == "vxlan" and wire.vni == other.wire.vni
                    and _overlap(wire.local, other.wire.local)):
                raise _Invalid(f"adapter[{i}].wire",
                               f"same local endpoint and vni as adapter[{j}].wire "
                               f"({show_endpoint(wire.local)}, vni {wire.vni}): received "
                               "frames could not be told apart")
    pools = {}
    for i, adapter in enumerate(adapters):
        if adapter.host is None:
            continue
        first = pools.setdefault(adapter.host, i)
        if adapters[first].driver != adapter.driver:
            raise _Invalid(f"adapter[{i}].host",
                           f'pool {_quote(adapter.host)} runs {adapters[first].driver_name} '
                           f"(adapter[{first}]), not {adapter.driver_name}: "
                           "a host process loads one driver")


def _overlap(a, b):
    """Whether two local endpoints receive some of the same datagrams."""
    if a[1] != b[1] or a[0].version != b[0].version:
        return False
    return a[0] == b[0] or a[0].is_unspecified or b[0].is_unspecified


# -- values -------------------------------------------------------------------


def _ifname(value, key):
    """A Linux interface name, as the kernel's dev_valid_name() accepts it."""
    if not isinstance(value, str):
        raise _Invalid(key, f"expected an interface name (a string), got {_describe(value)}")
    size = len(value.encode())
    if size == 0:
        raise _Invalid(key, "interface name is empty")
    if size >= _IFNAMSIZ:
        raise _Invalid(key, f"interface name {_quote(value)} is {size} bytes; Linux allows "
                            f"at most {_IFNAMSIZ - 1}")
    if value in (".", ".."):
        raise _Invalid(key, f'"{value}" is not a valid interface name')
    for char in value:
        if char == "%":
            raise _Invalid(key, f'interface name {_quote(value)} contains "%", which would make '
                                "it a name template for the kernel to fill in")
        if char in "/:" or char.isspace() or not char.isprintable():
            raise _Invalid(key, f"interface name {_quote(value)} contains {_quote(char)} "
                                '(Linux interface names cannot contain "/", ":", whitespace '
                                "or control characters)")
    return value


def _netns_name(value, key):
    """A name under /run/netns, as `ip netns add` accepts it."""
    if not isinstance(value, str):
        raise _Invalid(key, f"expected a network namespace name (a string), "
                            f"got {_describe(value)}")
    if not value or value in (".", "..") or "/" in value or "\0" in value:
        raise _Invalid(key, f"{_quote(value)} is not a valid network namespace name "
                            '(a name under /run/netns: not empty, no "/", not "." or "..")')
    if len(value.encode()) > 255:
        raise _Invalid(key, "network namespace name is longer than 255 bytes")
    return value


def _pool_name(value, key):
    if not isinstance(value, str):
        raise _Invalid(key, f"expected a host pool name (a string), got {_describe(value)}")
    if not _POOL_NAME.fullmatch(value):
        raise _Invalid(key, f"{_quote(value)} is not a valid pool name (1..64 of A-Z, a-z, "
                            "0-9, _, ., -, starting with a letter or digit)")
    return value


def _driver(value, key, directory, store):
    """(name as written, resolved path, INF parameter defaults or None) of a
    driver installed in ``store``, a bundled driver or a .sys file.

    A value with a "/" or ending in ".sys" is a path; anything else names a
    driver in the store, else a bundled one.  Relative paths are relative to
    the config's directory.
    """
    if not isinstance(value, str):
        raise _Invalid(key, f"expected a driver name or a path to a .sys, "
                            f"got {_describe(value)}")
    if not value or "\0" in value:
        raise _Invalid(key, f"{_quote(value)} is not a driver name or path")
    if "/" not in value and not value.lower().endswith(".sys"):
        return _named_driver(value, key, store)
    path = directory / value
    try:
        if not path.exists():
            raise _Invalid(key, f"{path} does not exist")
        if not path.is_file():
            raise _Invalid(key, f"{path} is not a regular file")
    except OSError as exc:
        raise _Invalid(key, f"cannot examine {path}: {exc.strerror or exc}") from None
    return value, path.resolve(), None


def _named_driver(value, key, store):
    drivers_here = driver_store.DriverStore(store)
    try:
        stored = drivers_here.get(value)
        return value, stored.image, stored.parameters
    except KeyError:
        pass
    except driver_store.StoreError as exc:
        raise _Invalid(key, str(exc)) from None
    try:
        return value, drivers.path(value), None
    except FileNotFoundError:
        pass
    try:
        installed = ", ".join(drivers_here.names()) or "none"
    except driver_store.StoreError:
        installed = "unreadable"
    raise _Invalid(key, f"no driver {_quote(value)} in the driver store {store} (installed: "
                        f"{installed}) and no bundled driver {value!r} (bundled: "
                        f"{', '.join(drivers.names()) or 'none'}); install one with "
                        'ndisproxy driver install FILE.inf, or give a path to a .sys (with '
                        'a "/" or ending in ".sys")')


def _directory(value, key, directory):
    if not isinstance(value, str):
        raise _Invalid(key, f"expected a directory (a string), got {_describe(value)}")
    if not value or "\0" in value:
        raise _Invalid(key, f"{_quote(value)} is not a directory path")
    return pathlib.Path(os.path.normpath(directory / value))


def _socket_path(value, key, directory):
    if not isinstance(value, str):
        raise _Invalid(key, f"expected a path (a string), got {_describe(value)}")
    if not value or "\0" in value:
        raise _Invalid(key, f"{_quote(value)} is not a path")
    path = pathlib.Path(os.path.normpath(directory / value))
    size = len(os.fsencode(path))
    if size > _MAX_SOCKET_PATH:
        raise _Invalid(key, f"{path} is {size} bytes; a Unix socket path can have at most "
                            f"{_MAX_SOCKET_PATH}")
    return path


def parse_size(value):
    """Bytes from an int or "N", "NKiB"/"NK", "NMiB"/"NM"; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    return int(match[1]) * _SIZE_UNITS[match[2]]


def format_size(size):
    """The shortest exact form parse_size() reads back: 65536 -> "64KiB"."""
    for unit in ("MiB", "KiB"):
        if size and size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return str(size)


def _stack_size(value, key):
    expected = (f"expected a size in {format_size(MIN_STACK_SIZE)}..{format_size(MAX_STACK_SIZE)}"
                ' (bytes, or "N", "NKiB", "NMiB", "NK", "NM"; K = KiB, M = MiB)')
    try:
        size = parse_size(value)
    except ValueError:
        raise _Invalid(key, f"{expected}, got {_describe(value)}") from None
    if not MIN_STACK_SIZE <= size <= MAX_STACK_SIZE:
        shown = _describe(value)
        if not isinstance(value, int):
            shown += f" ({size} bytes)"
        raise _Invalid(key, f"{expected}, got {shown}")
    return size


def _mac(value, key):
    """A unicast Ethernet address, normalised to "02:4e:44:49:53:00"."""
    if not isinstance(value, str) or not _MAC.fullmatch(value):
        raise _Invalid(key, 'expected a MAC address like "02:4e:44:49:53:00" (6 bytes, ":" or '
                            f'"-" separated), got {_describe(value)}')
    raw = bytes.fromhex(value.replace(value[2], ""))
    if raw[0] & 1:
        raise _Invalid(key, f"{_quote(value)} is a group (multicast) address: the low bit of the "
                            "first octet is set; an adapter needs a unicast address such as "
                            '"02:4e:44:49:53:00"')
    if not any(raw):
        raise _Invalid(key, f"{_quote(value)} is the all-zero address; an adapter needs a "
                            'unicast address such as "02:4e:44:49:53:00"')
    return ":".join(f"{b:02x}" for b in raw)


def _endpoint(value, key):
    """(address, port) from "a.b.c.d:port" or "[v6]:port"; no name lookups."""
    expected = 'expected "IPv4:port" or "[IPv6]:port"'
    if not isinstance(value, str):
        raise _Invalid(key, f"{expected}, got {_describe(value)}")
    if value.startswith("["):
        host, bracket, port = value[1:].partition("]:")
        if not bracket:
            raise _Invalid(key, f"{expected}, got {_quote(value)}")
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise _Invalid(key, f"{_quote(host)} is not an IPv6 address (brackets are for IPv6: "
                                f"{expected})") from None
    else:
        host, colon, port = value.rpartition(":")
        if ":" in host:
            raise _Invalid(key, f'write an IPv6 endpoint with brackets, as "[2001:db8::1]:4789"; '
                                f"got {_quote(value)}")
        if not colon:
            raise _Invalid(key, f"{expected} (the port is missing), got {_quote(value)}")
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            raise _Invalid(key, f"{_quote(host)} is not an IPv4 address (names are not looked up:"
                                f" {expected})") from None
    # The length first: int() refuses over 4300 digits with its own ValueError.
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or not 1 <= int(port) <= 65535:
        raise _Invalid(key, f"port {_quote(port)} is not a number in 1..65535")
    return address, int(port)


def _parameters(table, key):
    _expect_table(table, key, "[adapter.parameters]")
    if len(table) > MAX_PARAMETERS:
        raise _Invalid(key, f"{len(table)} parameters; a driver can have at most "
                            f"{MAX_PARAMETERS}")
    parameters = {}
    for name, value in table.items():
        where = _join(key, name)
        if not _PARAMETER_NAME.fullmatch(name):
            raise _Invalid(where, "a parameter name is 1..63 of A-Z, a-z, 0-9 and _, "
                                  "the first of them may be * (*JumboPacket)")
        clash = _same_parameter(parameters, name)
        if clash is not None:
            raise _Invalid(where, f"same parameter as {key}.{clash} (parameter names are "
                                  "case-insensitive, as in the Windows registry)")
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if not 0 <= value <= MAX_DWORD:
                raise _Invalid(where, f"expected an integer in 0..{MAX_DWORD} (a REG_DWORD), "
                                      f"got {value}")
        elif isinstance(value, str):
            size = len(value.encode())
            if size > MAX_PARAMETER_VALUE:
                raise _Invalid(where, f"string is {size} bytes; a parameter value can have at "
                                      f"most {MAX_PARAMETER_VALUE}")
            if "\0" in value:
                raise _Invalid(where, "string contains a NUL character")
        else:
            raise _Invalid(where, f"expected a string, an integer or a boolean, "
                                  f"got {_describe(value)}")
        parameters[name] = value
    return parameters


def _same_parameter(parameters, name):
    folded = name.lower()
    return next((other for other in parameters if other.lower() == folded), None)


def _integer(value, key, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Invalid(key, f"expected an integer in {low}..{high}, got {_describe(value)}")
    return value


def _seconds(value, key, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not low <= value <= high:
        raise _Invalid(key, f"expected a number of seconds in {low:g}..{high:g}, "
                            f"got {_describe(value)}")
    return float(value)


def _boolean(value, key):
    if not isinstance(value, bool):
        raise _Invalid(key, f"expected true or false, got {_describe(value)}")
    return value


def _choice(value, key, choices):
    if not isinstance(value, str) or value not in choices:
        raise _Invalid(key, f"expected {_alternatives(choices)}, got {_describe(value)}")
    return value


def _expect_table(value, key, header):
    if not isinstance(value, dict):
        raise _Invalid(key, f"expected a table ({header}), got {_describe(value)}")


def _check_keys(table, key, allowed):
    for name in table:
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            hint = f', did you mean "{close[0]}"?' if close else ""
            raise _Invalid(_join(key, name), f"unknown key{hint} (allowed: {', '.join(allowed)})")


# -- showing values in messages -----------------------------------------------


def _join(key, name):
    name = name if _BARE_KEY.fullmatch(name) else _quote(name)
    return f"{key}.{name}" if key else name


def _quote(text, limit=60):
    """A string as TOML/JSON would write it: quoted, escaped, one line, short."""
    if len(text) > limit:
        text = text[:limit] + "..."
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in quoted)


def _describe(value):
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if hasattr(value, "isoformat"):
        return f"{value.isoformat()} (a date/time)"
    return type(value).__name__


def _alternatives(choices):
    quoted = [f'"{c}"' for c in choices]
    if len(quoted) < 3:
        return " or ".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _lower_first(text):
    return text[:1].lower() + text[1:]


def show_endpoint(endpoint):
    """An (address, port) tuple written as the config writes it."""
    address, port = endpoint
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


# -- the running system -------------------------------------------------------


def check_system(config):
    """Check, read-only, that ``config`` fits the running system.

    Raises ConfigError naming the key for: an adapter name or tap wire ifname
    taken by an interface ndisproxy does not manage (its alias does not start
    with "ndisproxy:"); with existing_tap, a missing interface or one that is
    not a TAP; a tap wire's netns that does not exist; a driver image the
    loader would refuse (damaged, another machine, unresolved imports - all
    of them named).  A wire ifname is checked where the wire is created (this
    namespace) and, with netns, where it ends up.  OSError if netlink or a
    namespace cannot be read.
    """
    # Imported here: reading and validating a config needs no netlink.
    from pyroute2 import netns

    import grp
    import pwd

    path = config.path if config.path is not None else "<config>"
    if config.daemon.host_user is not None:
        try:
            if pwd.getpwnam(config.daemon.host_user).pw_uid == 0:
                raise ConfigError(path, "daemon.host_user", "must not be root")
        except KeyError:
            raise ConfigError(path, "daemon.host_user",
                              f"user {config.daemon.host_user!r} does not exist") from None
    for key in ("group", "admin_group"):
        name = getattr(config.daemon, key)
        if name is not None:
            try:
                grp.getgrnam(name)
            except KeyError:
                raise ConfigError(path, f"daemon.{key}",
                                  f"group {name!r} does not exist") from None
    for i, adapter in enumerate(config.adapters):
        # What the daemon would refuse to start: checked here too, before
        # anything runs (reading the file; nothing of it is loaded).
        try:
            peimage.check_file(adapter.driver)
        except ImageError as exc:
            raise ConfigError(path, f"adapter[{i}].driver", str(exc)) from None
    namespaces = set(netns.listnetns())
    links = {None: _links(None)}
    for i, adapter in enumerate(config.adapters):
        key = f"adapter[{i}]"
        link = links[None].get(adapter.name)
        if adapter.existing_tap:
            _check_existing_tap(path, f"{key}.name", adapter.name, link)
        elif link is not None and not _ours(link):
            raise ConfigError(path, f"{key}.name", f"interface {_quote(adapter.name)} exists "
                                                   "and is not managed by ndisproxy")
        wire = adapter.wire
        if wire.kind != "tap":
            continue
        if wire.netns is not None and wire.netns not in namespaces:
            raise ConfigError(path, f"{key}.wire.netns",
                              f"network namespace {_quote(wire.netns)} does not exist "
                              f"(create it with: ip netns add {wire.netns})")
        for where in (None, wire.netns) if wire.netns is not None else (None,):
            if where not in links:
                links[where] = _links(where)
            link = links[where].get(wire.ifname)
            if link is not None and not _ours(link):
                inside = f" in network namespace {_quote(where)}" if where else ""
                raise ConfigError(path, f"{key}.wire.ifname",
                                  f"interface {_quote(wire.ifname)} exists{inside} and is not "
                                  "managed by ndisproxy")


def _links(netns):
    """{ifname: RTM_NEWLINK message} of this namespace, or of ``netns``."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    where = f"network namespace {_quote(netns)}" if netns else "this network namespace"
    try:
        # groups=0: a query socket, no link events; flags=0: never create the
        # namespace (pyroute2's default would).
        with IPRoute(netns=netns, flags=0, groups=0) as ipr:
            return {link.get_attr("IFLA_IFNAME"): link for link in ipr.get_links()}
    except NetlinkError as exc:
        raise OSError(exc.code, f"cannot list the interfaces of {where}: "
                                f"{os.strerror(exc.code)}") from exc
    except OSError as exc:
        raise OSError(exc.errno, f"cannot list the interfaces of {where}: "
                                 f"{exc.strerror or exc}") from exc


def _ours(link):
    return (link.get_attr("IFLA_IFALIAS") or "").startswith(OWNER_ALIAS)


def _check_existing_tap(path, key, name, link):
    create = f"ip tuntap add dev {name} mode tap"
    if link is None:
        raise ConfigError(path, key, f"interface {_quote(name)} does not exist; existing_tap = "
                                     f"true needs a TAP made beforehand ({create})")
    info = link.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    if kind != "tun":
        what = f'a "{kind}" device' if kind else "a device without a link kind"
        raise ConfigError(path, key, f"interface {_quote(name)} is not a TAP (it is {what}); "
                                     f"existing_tap = true needs one made with: {create}")
    data = info.get_attr("IFLA_INFO_DATA")
    # IFLA_TUN_TYPE is IFF_TUN (1) or IFF_TAP (2); kernels before 4.15 omit it.
    if data is not None and data.get_attr("IFLA_TUN_TYPE") == 1:
        raise ConfigError(path, key, f"interface {_quote(name)} is a TUN (layer 3) device, not "
                                     f"a TAP; make it with: {create}")
