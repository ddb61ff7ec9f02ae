"""The ``ndisproxy`` command line.

Every subcommand is one ``Command`` in ``COMMANDS``: its one-line help, a
description and examples for ``ndisproxy NAME --help``, a function that adds
its arguments to its parser, and a function that runs it and returns the exit
status.  Adding a subcommand is writing those two functions and one entry;
``build_parser()`` gives every subcommand ``--json`` (every verb has it).

Exit status: 0 success, 1 the command could not do its job (the system could
not be inspected, ...), 2 bad input (an invalid config; also argparse's
usage errors).
"""
import argparse
import dataclasses
import functools
import json
import pathlib
import sys
from typing import Callable

from . import __version__
from . import config as configuration
from . import demo, privileges

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


@dataclasses.dataclass(frozen=True)
class Command:
    help: str
    description: str
    examples: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# -- check-config -------------------------------------------------------------


def _check_config_arguments(parser):
    parser.add_argument("file", metavar="FILE", help="the TOML configuration file")
    parser.add_argument("--no-system", action="store_true",
                        help="only validate the file; do not compare it with the running "
                             "system (interfaces, network namespaces)")


def _check_config(args):
    system = not args.no_system
    try:
        config = configuration.load(args.file)
        if system:
            configuration.check_system(config)
    except configuration.ConfigError as exc:
        if args.json:
            _print_json({"ok": False, "file": args.file, "error": str(exc), "key": exc.key,
                         "problem": exc.problem, "line": exc.line, "column": exc.column})
        else:
            print(exc, file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        message = (f"{args.file}: cannot check the system: {exc.strerror or exc} "
                   "(run as root, or pass --no-system)")
        if args.json:
            _print_json({"ok": False, "file": args.file, "error": message, "key": None,
                         "problem": None, "line": None, "column": None})
        else:
            print(message, file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _print_json({"ok": True, "file": args.file, "system_checked": system,
                     "adapters": [_adapter_json(adapter) for adapter in config.adapters]})
        return EXIT_OK
    arrow = _arrow(sys.stdout)
    count = len(config.adapters)
    summary = ", ".join(_adapter_summary(adapter, arrow) for adapter in config.adapters)
    unchecked = "; system not checked (--no-system)" if not system else ""
    print(f"{args.file}: ok ({count} adapter{'s' if count != 1 else ''}: {summary}){unchecked}")
    return EXIT_OK


def _adapter_summary(adapter, arrow):
    """``ndis0 mocknic tap→peer/ndis0w``: name, driver as written, wire."""
    wire = adapter.wire
    if wire.kind == "tap":
        where = f"{wire.netns}/{wire.ifname}" if wire.netns else wire.ifname
        shown = f"tap{arrow}{where}" + ("" if wire.gso else " (segments)")
    elif wire.kind == "vxlan":
        shown = (f"vxlan {configuration.show_endpoint(wire.local)}{arrow}"
                 f"{configuration.show_endpoint(wire.remote)} vni {wire.vni}")
    else:
        shown = wire.kind
    return f"{adapter.name} {adapter.driver_name} {shown}"


def _adapter_json(adapter):
    wire = {}
    for field in dataclasses.fields(adapter.wire):
        value = getattr(adapter.wire, field.name)
        if value is not None:
            wire[field.name] = (configuration.show_endpoint(value)
                                if field.name in ("local", "remote") else value)
    return {
        "name": adapter.name,
        "driver": str(adapter.driver),
        "driver_name": adapter.driver_name,
        "stack_size": adapter.stack_size,
        "mtu": adapter.mtu,
        "isolation": adapter.isolation,
        "host": adapter.host,
        "existing_tap": adapter.existing_tap,
        "keep_on_stop": adapter.keep_on_stop,
        "mac": adapter.mac,
        "wire": wire,
        "parameters": dict(adapter.parameters),
    }


# -- run ---------------------------------------------------------------------


def _run_arguments(parser):
    parser.add_argument("--config", "-c", metavar="FILE", required=True,
                        help="the TOML configuration file (docs/config.md)")
    parser.add_argument("--log-level", choices=configuration.LOG_LEVELS,
                        help="override [daemon] log_level")


def _setup_logging(level):
    from . import logs
    logs.setup(level)


def _run(args):
    import trio

    from . import daemon
    try:
        config = configuration.load(args.config)
        configuration.check_system(config)
    except configuration.ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        print(f"{args.config}: cannot check the system: {exc.strerror or exc} "
              "(ndisproxy run needs root: CAP_NET_ADMIN, and CAP_SYS_ADMIN for tap wires in a "
              "network namespace)", file=sys.stderr)
        return EXIT_FAILED
    _setup_logging(args.log_level or config.daemon.log_level)
    try:
        return trio.run(daemon.run_until_signalled, config)
    except daemon.DaemonError as exc:
        print(f"ndisproxy: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BaseExceptionGroup as group:
        # Adapters are brought up concurrently: their failures come grouped.
        failures, others = group.split(daemon.DaemonError)
        if failures is None or others is not None:
            raise
        for exc in _leaves(failures):
            print(f"ndisproxy: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _leaves(group):
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


# -- verbs over the control socket ------------------------------------------


EXIT_UNREACHABLE = 3


def _socket_argument(parser):
    parser.add_argument("--socket", metavar="PATH",
                        help="the daemon's control socket (default: $NDISPROXY_SOCKET, "
                             "else /run/ndisproxy/control.sock)")


def _adapter_argument(parser):
    _socket_argument(parser)
    parser.add_argument("adapter", metavar="ADAPTER", help="the adapter's (TAP's) name")


def _ask(args, verb, **fields):
    """One request; prints the error line and returns the exit status on failure."""
    from .client import ClientError, Connection
    try:
        with Connection(args.socket) as connection:
            return connection.request(verb, **fields), EXIT_OK
    except ClientError as exc:
        if args.json:
            _print_json({"ok": False, "error": str(exc)})
        else:
            print(f"ndisproxy {verb}: {exc}", file=sys.stderr)
        return None, EXIT_UNREACHABLE if exc.unreachable else EXIT_FAILED


def _table(rows, headers):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _status(args):
    reply, code = _ask(args, "status")
    if reply is None:
        return code
    if args.json:
        _print_json(reply)
        return EXIT_OK
    rows = [(a["name"], a["state"], "up" if a["link"] else "down", a["pid"] or "-",
             a["driver"], a["mac"] or "-", a["restarts"], a.get("resets", 0),
             f"{a['uptime']:.0f}s" if a["uptime"] is not None else "-",
             configuration.format_size(a["stack_size"])) for a in reply["adapters"]]
    _table(rows, ("ADAPTER", "STATE", "LINK", "HOST PID", "DRIVER", "MAC", "RESTARTS",
                  "RESETS", "UPTIME", "STACK"))
    sandboxes = {privileges.describe_sandbox(a.get("sandbox")) for a in reply["adapters"]}
    for sandbox in sorted(sandboxes - {""}):
        print(f"host sandbox: {sandbox}")
    return EXIT_OK


def _stats(args):
    reply, code = _ask(args, "stats", adapter=args.adapter)
    if reply is None:
        return code
    if args.json:
        _print_json(reply)
        return EXIT_OK
    rows = [(name, value) for name, value in reply["driver"].items()]
    rows += [(f"host {k}", v) for k, v in reply["host"].items()]
    rows += [(f"pump {k}", v) for k, v in reply["pump"].items()]
    rows += [(f"device {k}", v) for k, v in reply["device"].items()]
    latency = reply.get("rx_latency") or {}
    if latency.get("count"):
        rows += [("interrupt delivery p50", f"{latency['p50_us']} us"),
                 ("interrupt delivery p99", f"{latency['p99_us']} us")]
    _table(rows, ("COUNTER", "VALUE"))
    print(f"({reply['note']})")
    return EXIT_OK


def _oid_arguments(parser):
    _adapter_argument(parser)
    parser.add_argument("action", choices=("get", "set"))
    parser.add_argument("oid", metavar="NAME|0xHEX",
                        help="e.g. OID_GEN_LINK_SPEED, GEN_LINK_SPEED or 0x00010107")
    parser.add_argument("value", nargs="?", metavar="VALUE",
                        help="set: a ULONG (decimal or 0x...) or hex:BYTES")
    parser.add_argument("--length", type=int, default=256,
                        help="get: the buffer length offered (default %(default)s)")


def _oid(args):
    fields = {"adapter": args.adapter, "action": args.action, "oid": args.oid}
    if args.action == "set":
        if args.value is None:
            print("ndisproxy oid: set needs a VALUE", file=sys.stderr)
            return EXIT_INVALID
        fields["value"] = args.value
    else:
        fields["length"] = args.length
    reply, code = _ask(args, "oid", **fields)
    if reply is None:
        return code
    if args.json:
        _print_json(reply)
    else:
        shown = reply.get("value", reply["data"] or "-")
        print(f"{reply['oid']}: {reply['status_name']}"
              + (f", {shown}" if args.action == "get" else "")
              + (f" (needs {reply['needed']} bytes)" if reply["needed"] else ""))
    return EXIT_OK if reply["status"] == 0 else EXIT_FAILED


def _stack(args):
    reply, code = _ask(args, "stack", adapter=args.adapter)
    if reply is None:
        return code
    if args.json:
        _print_json(reply)
        return EXIT_OK
    stack = reply["stack"]
    print(f"{reply['adapter']}: {stack['size'] // 1024} KiB private stack, deepest use "
          f"{stack['lifetime'] / 1024:.1f} KiB")
    _table([(name, f"{e['high_water'] / 1024:.1f} KiB", e["calls"])
            for name, e in stack["entry_points"].items()],
           ("ENTRY POINT", "HIGH-WATER", "CALLS"))
    return EXIT_OK


def _reset(args):
    reply, code = _ask(args, "reset", adapter=args.adapter)
    if reply is None:
        return code
    if args.json:
        _print_json(reply)
    elif reply.get("restarted"):
        print(f"{args.adapter}: was faulted; restarting its driver host")
    else:
        print(f"{args.adapter}: MiniportReset returned {reply['status_name']}"
              + (", addressing reset" if reply.get("addressing_reset") else ""))
    return EXIT_OK


def _inject_arguments(parser):
    _adapter_argument(parser)
    from .control import FAULTS
    parser.add_argument("fault", choices=FAULTS, help="the mock driver's fault knob")


def _inject(args):
    reply, code = _ask(args, "inject", adapter=args.adapter, fault=args.fault)
    if reply is None:
        return code
    if args.json:
        _print_json(reply)
    else:
        print(f"{args.adapter}: {args.fault} injected")
    return EXIT_OK


def _capture_arguments(parser):
    _adapter_argument(parser)
    parser.add_argument("-w", "--write", metavar="FILE", required=True,
                        help="pcapng output file, or - for stdout (tshark -r -)")
    parser.add_argument("-c", "--count", type=int, default=0,
                        help="stop after this many frames (default: until interrupted)")


def _capture(args):
    from .client import ClientError, Connection
    from .pcapng import PcapngWriter
    out = sys.stdout.buffer if args.write == "-" else open(args.write, "wb")
    count = 0
    try:
        with Connection(args.socket, timeout=None) as connection:
            connection.request("capture", adapter=args.adapter)
            # As tcpdump says "listening on": from here on nothing is missed.
            print(f"ndisproxy capture: capturing {args.adapter} at the miniport boundary",
                  file=sys.stderr, flush=True)
            writer = PcapngWriter(out)
            iface = writer.add_interface(args.adapter, "miniport boundary")
            while not args.count or count < args.count:
                record = connection.read()
                writer.write(iface, bytes.fromhex(record["frame"]), timestamp_ns=record["t"],
                             direction=record["dir"])
                writer.flush()
                count += 1
    except KeyboardInterrupt:
        pass
    except ClientError as exc:
        print(f"ndisproxy capture: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.unreachable else EXIT_FAILED
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    if args.write != "-":
        print(f"{count} frames written to {args.write}", file=sys.stderr)
    return EXIT_OK


def _verb(help, description, examples, arguments, run):
    return Command(help=help, description=description, examples=examples,
                   arguments=arguments, run=run)


VERBS = {
    "status": _verb("show every adapter: state, link, host, driver",
                    "Ask the running daemon for its adapters: state, link (the TAP's carrier),\n"
                    "host pid, driver, MAC, restarts, uptime, private stack size; then what\n"
                    "the hosts' sandbox holds them to (capabilities, no_new_privs, Landlock,\n"
                    "the size of the seccomp allowlist).",
                    "examples:\n  ndisproxy status\n  ndisproxy status --json",
                    _socket_argument, _status),
    "stats": _verb("an adapter's counters: driver OIDs, host, device",
                   "The driver's statistics OIDs (XMIT_OK, RCV_OK, ...), the host's counters\n"
                   "and the mock NIC's. `ip -s link` counts the TAP, not the driver.",
                   "examples:\n  ndisproxy stats ndis0", _adapter_argument, _stats),
    "oid": _verb("query or set an OID on an adapter's driver",
                 "MiniportQueryInformation or MiniportSetInformation on the adapter's driver.\n"
                 "set needs root or the admin_group. Exit status 1 when the driver answers a\n"
                 "failure status.",
                 "examples:\n  ndisproxy oid ndis0 get OID_GEN_LINK_SPEED\n"
                 "  ndisproxy oid ndis0 get 0x00010107\n"
                 "  ndisproxy oid ndis0 set OID_GEN_CURRENT_PACKET_FILTER 0x2f",
                 _oid_arguments, _oid),
    "stack": _verb("an adapter's private-stack high-water marks",
                   "Lifetime and per-entry-point high-water marks of the driver's private stack.",
                   "examples:\n  ndisproxy stack ndis0", _adapter_argument, _stack),
    "reset": _verb("run MiniportReset on an adapter's driver (root, admin_group)",
                   "MiniportReset; with an addressing reset the packet filter and multicast list\n"
                   "are applied again, as NDIS does.",
                   "examples:\n  ndisproxy reset ndis0", _adapter_argument, _reset),
    "inject": _verb("fire one of the mock driver's fault knobs (root, admin_group)",
                    "For testing fault containment: the driver's host faults and is restarted.",
                    "examples:\n  ndisproxy inject ndis0 overflow", _inject_arguments,
                    _inject),
    "capture": _verb("write an adapter's frames at the miniport boundary as pcapng",
                     "Frames the host hands MiniportSendPackets (outbound) and frames the driver\n"
                     "indicates (inbound), as pcapng for Wireshark or tshark, until interrupted\n"
                     "or --count frames.",
                     "examples:\n  ndisproxy capture ndis0 -w ndis0.pcapng\n"
                     "  ndisproxy capture ndis0 -w - | tshark -r -", _capture_arguments,
                    _capture),
}


# -- driver: the driver store and driver info ---------------------------------


def _driver_arguments(parser):
    parser.usage = "%(prog)s [-h] [--json] ACTION ..."
    actions = parser.add_subparsers(prog="ndisproxy driver", metavar="ACTION", dest="action",
                                    help=argparse.SUPPRESS)
    for name, action in DRIVER_ACTIONS.items():
        sub = actions.add_parser(name, help=action.help, description=action.description,
                                 epilog=action.examples,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        # Also after the action (`driver list --json`); SUPPRESS keeps the
        # parent's value when it is given before it instead.
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                         help="print one JSON object on stdout instead of text")
        action.arguments(sub)
        sub.set_defaults(driver_run=action.run)


def _store_argument(parser):
    from .store import DEFAULT_STORE
    parser.add_argument("--store", metavar="DIR", default=str(DEFAULT_STORE),
                        help="the driver store (default %(default)s; the daemon's is "
                             "[daemon] driver_store)")


def _driver(args):
    if getattr(args, "action", None) is None:
        print("ndisproxy driver: an ACTION is needed: "
              f"{', '.join(DRIVER_ACTIONS)} (ndisproxy driver --help)", file=sys.stderr)
        return EXIT_INVALID
    return args.driver_run(args)


def _driver_failure(args, verb, message, code):
    if args.json:
        _print_json({"ok": False, "error": message})
    else:
        print(f"ndisproxy driver {verb}: {message}", file=sys.stderr)
    return code


def _install_arguments(parser):
    parser.add_argument("inf", metavar="FILE.inf",
                        help="the driver package's INF, its files next to it; or the name of "
                             "a bundled driver (mocknic)")
    parser.add_argument("--name", metavar="NAME",
                        help="install under this name (default: the INF's file name in "
                             "lower case)")
    parser.add_argument("--model", metavar="HWID",
                        help="the model whose install section (files, parameter defaults) "
                             "to install, by hardware id, e.g. 'PCI\\VEN_8086&DEV_100E', or "
                             "by description (default: the first model)")
    _store_argument(parser)


def _driver_install(args):
    from . import drivers, peimage
    from .errors import ImageError
    from .inf import InfError
    from .store import DriverStore, StoreError, check_name, default_name

    inf = args.inf
    if "/" not in inf and not inf.lower().endswith(".inf") and inf in drivers.names(
            suffix=".inf"):
        inf = str(drivers.inf_path(inf))
    try:
        name = check_name(args.name if args.name is not None else default_name(inf))
    except StoreError as exc:
        hint = "" if args.name is not None else " (choose one with --name)"
        return _driver_failure(args, "install", f"{exc}{hint}", EXIT_INVALID)
    try:
        stored = DriverStore(args.store).install(inf, name=name, model=args.model)
    except InfError as exc:
        return _driver_failure(args, "install", str(exc), EXIT_INVALID)
    except StoreError as exc:
        return _driver_failure(args, "install", str(exc), EXIT_FAILED)
    try:
        peimage.check_file(stored.image)
        image_problem = None
    except ImageError as exc:
        image_problem = str(exc)
    manifest = stored.manifest
    if args.json:
        _print_json({"ok": True, "store": args.store, "directory": str(stored.directory),
                     "image_problem": image_problem, "driver": manifest})
        return EXIT_OK
    version = manifest["driver_version"] or "no DriverVer"
    print(f"installed {stored.name} ({manifest['provider'] or 'no provider'}, {version}) in "
          f"{stored.directory}: {manifest['image']}, {len(stored.parameters)} parameter "
          f"default{'s' if len(stored.parameters) != 1 else ''}")
    if len(manifest["models"]) > 1:
        model = manifest["model"]
        others = len(manifest["models"]) - 1
        print(f"model: {model['description']} ({', '.join(model['hardware_ids'])}); "
              f"{others} other{'s' if others != 1 else ''} in the INF (--model)")
    for warning in manifest["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if image_problem:
        print(f"warning: it will not run here: {image_problem} "
              f"(ndisproxy driver info {stored.name})", file=sys.stderr)
    return EXIT_OK


def _driver_list(args):
    from .store import DriverStore, StoreError
    store = DriverStore(args.store)
    try:
        installed = store.drivers()
    except StoreError as exc:
        return _driver_failure(args, "list", str(exc), EXIT_FAILED)
    if args.json:
        _print_json({"ok": True, "store": args.store,
                     "drivers": [dict(d.manifest, directory=str(d.directory))
                                 for d in installed]})
        return EXIT_OK
    if not installed:
        print(f"no drivers installed in {args.store}")
        return EXIT_OK
    rows = [(d.name, d.manifest["image"], d.manifest["driver_version"] or "-",
             d.manifest["provider"] or "-", len(d.parameters),
             d.manifest["installed"].replace("T", " ").removesuffix("+00:00"))
            for d in installed]
    _table(rows, ("NAME", "IMAGE", "VERSION", "PROVIDER", "PARAMETERS", "INSTALLED (UTC)"))
    return EXIT_OK


def _remove_arguments(parser):
    parser.add_argument("name", metavar="NAME", help="the installed driver's name")
    _store_argument(parser)


def _driver_remove(args):
    from .store import DriverStore, StoreError
    store = DriverStore(args.store)
    try:
        store.remove(args.name)
    except KeyError:
        return _driver_failure(args, "remove", _not_installed(store, args.name), EXIT_INVALID)
    except StoreError as exc:
        return _driver_failure(args, "remove", str(exc), EXIT_FAILED)
    if args.json:
        _print_json({"ok": True, "store": args.store, "removed": args.name})
    else:
        print(f"removed {args.name} from {args.store}")
    return EXIT_OK


def _not_installed(store, name):
    try:
        installed = ", ".join(store.names()) or "none"
    except Exception:       # noqa: BLE001 - the listing is only a hint here
        installed = "unreadable"
    return f"no driver {name!r} in {store.directory} (installed: {installed})"


def _info_arguments(parser):
    parser.add_argument("driver", metavar="FILE.sys|NAME",
                        help="a driver image (a path with a / or ending in .sys), or the name "
                             "of an installed or bundled driver")
    parser.add_argument("--no-driver-entry", action="store_true",
                        help="only read the file; do not run DriverEntry")
    _store_argument(parser)


def _driver_info(args):
    import trio

    from . import driverinfo, drivers, peimage
    from .errors import ImageError
    from .store import DriverStore, StoreError

    stored = None
    value = args.driver
    if "/" in value or value.lower().endswith(".sys"):
        path = pathlib.Path(value)
    else:
        store = DriverStore(args.store)
        try:
            stored = store.get(value)
            path = stored.image
        except KeyError:
            try:
                path = drivers.path(value)
            except FileNotFoundError:
                return _driver_failure(args, "info", _not_installed(store, value)
                                       + f" and no bundled driver {value!r}", EXIT_INVALID)
        except StoreError as exc:
            return _driver_failure(args, "info", str(exc), EXIT_FAILED)
    try:
        with open(path, "rb") as f:
            data = f.read(peimage.MAX_IMAGE + 1)
    except OSError as exc:
        return _driver_failure(args, "info", f"{path}: {exc.strerror or exc}", EXIT_INVALID)
    if len(data) > peimage.MAX_IMAGE:
        return _driver_failure(args, "info", f"{path.name}: larger than "
                               f"{peimage.MAX_IMAGE >> 20} MiB: not a driver image", EXIT_FAILED)
    helpers = {}
    try:
        for module, helper in peimage.helpers_beside(path, peimage.read(data, path.name)).items():
            helpers[module] = helper.read_bytes()
    except (ImageError, OSError):
        pass                    # the report says what is wrong with the image
    report = trio.run(functools.partial(driverinfo.describe, data, path.name, helpers=helpers,
                                        run_driver_entry=not args.no_driver_entry))
    report["file"] = str(path)
    report["driver"] = stored.name if stored is not None else None
    if stored is not None:
        report["store"] = {key: stored.manifest.get(key)
                           for key in ("provider", "driver_version", "inf", "installed")}
        report["store"]["parameters"] = stored.parameters
    if args.json:
        _print_json(report)
    else:
        _print_driver_info(report)
        for problem in report["problems"]:
            print(problem, file=sys.stderr)
    return EXIT_OK if report["ok"] else EXIT_FAILED


def _print_driver_info(report):
    name = report["name"]
    if "machine" not in report:         # the headers could not be read
        print(f"{name}: {report['file']} ({report['size']} bytes)")
        return
    entry = report["entry_point"]
    print(f"{name}: {report['machine']} {report['format']}, {report['subsystem']} subsystem "
          f"({report['subsystem_code']}), entry point RVA {entry['rva']}"
          + (f" in {entry['section']}" if entry["section"] else ""))
    print(f"file       {report['file']} ({report['size']} bytes, "
          f"sha256 {report['sha256'][:16]}...)")
    if report.get("store"):
        store = report["store"]
        print(f"stored as  {report['driver']} from {store['inf']} ({store['provider'] or '-'}, "
              f"{store['driver_version'] or '-'}), {len(store['parameters'])} parameter "
              f"defaults")
    print(f"image      base {report['image_base']}, {report['size_of_image']} bytes mapped, "
          f"section alignment 0x{report['section_alignment']:x}, file alignment "
          f"0x{report['file_alignment']:x}")
    print("sections")
    _table([("  " + s["name"], s["rva"], s["virtual_size"], s["raw_size"], s["protection"],
             ",".join(s["kinds"]) or "-") for s in report["sections"]],
           ("  NAME", "RVA", "SIZE", "IN FILE", "PROT", "HOLDS"))
    total = sum(len(m["functions"]) for m in report["imports"])
    missing = report["unresolved"]
    state = f"{len(missing)} unresolved" if missing else "all resolved"
    print(f"imports    {total} from {len(report['imports'])} module"
          f"{'s' if len(report['imports']) != 1 else ''}, {state}")
    if report["imports"]:
        _table([("  " + m["module"], len(m["functions"]), m["resolved"],
                 ", ".join(f["name"] + ("" if f["status"] == "no-export" else f" ({f['status']})")
                           for f in m["functions"] if f["status"] != "resolved") or "-")
                for m in report["imports"]],
               ("  MODULE", "IMPORTS", "RESOLVED", "UNRESOLVED"))
    probe = report["driver_entry"]
    if probe is None:
        why = "--no-driver-entry" if not report["problems"] else "the image cannot load"
        print(f"DriverEntry not run ({why})")
        return
    version = probe.get("ndis_version")
    deepest = (probe.get("stack") or {}).get("lifetime")
    facts = ["in a sandboxed driver host"]
    if deepest is not None:
        facts.append(f"{deepest / 1024:.1f} KiB of stack")
    if probe["kind"] == "HostError":
        print(f"DriverEntry not run: {probe['error']}")
        return
    if probe["ok"]:
        print(f"DriverEntry registered an NDIS {version[0]}.{version[1]} miniport "
              f"({', '.join(facts)})")
    else:
        print(f"DriverEntry failed ({', '.join(facts)}): {probe['error']}")
    handlers = [(f"  {slot}", where) for slot, where in probe.get("handlers", {}).items()
                if where]
    if handlers:
        _table(handlers, ("  HANDLER", "ADDRESS"))
    for line in probe.get("log") or []:
        print(f"  DbgPrint: {line}")


def _action(help, description, examples, arguments, run):
    return Command(help=help, description=description, examples=examples,
                   arguments=arguments, run=run)


DRIVER_ACTIONS = {
    "install": _action(
        "install a driver package from its INF into the store",
        "Read the INF (Class=Net; the NTamd64 models of [Manufacturer]; their install\n"
        "sections' CopyFiles and AddReg), copy the files it names from beside it into\n"
        "the store, and record the driver with its registry parameter defaults: the\n"
        "values NdisReadConfiguration returns, unless [adapter.parameters] overrides\n"
        "them. The config's driver = \"NAME\" then runs it. A malformed INF is one line\n"
        "naming FILE:LINE (exit status 2).",
        "examples:\n  ndisproxy driver install /media/cdrom/amd64/e1g6032e.inf\n"
        "  ndisproxy driver install mocknic           # the bundled mock driver's INF\n"
        "  ndisproxy driver install --name nic2 vendor.inf --store /srv/drivers\n"
        "  ndisproxy driver install --model 'PCI\\VEN_8086&DEV_10D3' e1g6032e.inf",
        _install_arguments, _driver_install),
    "list": _action(
        "list the installed drivers",
        "The drivers in the store: name, image, DriverVer, provider, how many\n"
        "parameter defaults, when installed.",
        "examples:\n  ndisproxy driver list\n  ndisproxy driver list --json | jq '.drivers[].name'",
        _store_argument, _driver_list),
    "remove": _action(
        "remove an installed driver",
        "Remove the driver NAME and its files from the store. A running daemon's\n"
        "adapters keep the image they loaded; a host of theirs that restarts fails (and\n"
        "is retried) until the driver is installed again or the config changes.",
        "examples:\n  ndisproxy driver remove e1g6032e", _remove_arguments, _driver_remove),
    "info": _action(
        "describe a driver image and what its DriverEntry registers",
        "Machine, subsystem, sections and their protections, entry point, imports per\n"
        "module with which of them ndisproxy provides (every missing one is listed),\n"
        "then - unless the image cannot load - DriverEntry run in a throwaway sandboxed\n"
        "driver host: the NDIS version and the handlers it registers. Exit status: 0\n"
        "the image can run here, 1 it cannot (each problem one line on stderr), 2 no\n"
        "such file or driver.",
        "examples:\n  ndisproxy driver info mocknic\n  ndisproxy driver info ./vendor.sys\n"
        "  ndisproxy driver info --json e1g6032e | jq .unresolved",
        _info_arguments, _driver_info),
}


# -- the commands -------------------------------------------------------------


COMMANDS = {
    "check-config": Command(
        help="validate a configuration file",
        description=(
            "Validate an ndisproxy configuration file before anything touches the system:\n"
            "every key, type and range, driver files, names that must be unique. Then,\n"
            "unless --no-system, compare it read-only with the running system: adapter and\n"
            "wire interface names must be free or already ndisproxy's, existing TAPs must be\n"
            "TAPs, network namespaces must exist.\n"
            "\n"
            "Prints 'FILE: ok (...)' with one summary per adapter, or one line naming the\n"
            "file, the key and the problem on stderr. Exit status: 0 valid, 2 invalid,\n"
            "1 the system could not be inspected. The keys are described in docs/config.md."),
        examples=(
            "examples:\n"
            "  ndisproxy check-config /etc/ndisproxy/ndisproxy.toml\n"
            "  ndisproxy check-config --no-system ndisproxy.toml   # the file only, any user\n"
            "  ndisproxy check-config --json ndisproxy.toml | jq .adapters\n"
            "\n"
            "an error looks like:\n"
            "  ndisproxy.toml: adapter[1].wire.vni: expected an integer in 0..16777215, "
            "got \"42x\""),
        arguments=_check_config_arguments,
        run=_check_config,
    ),
    "run": Command(
        help="run the proxy daemon",
        description=(
            "Run the ndisproxy daemon for the adapters of a configuration file: create (or\n"
            "re-attach to) each adapter's TAP and wire, start its driver in an unprivileged\n"
            "host process (or in the daemon with isolation = \"inprocess\"), restart hosts\n"
            "whose driver faults, and on SIGTERM or SIGINT halt the drivers and remove what\n"
            "it created. A second signal exits at once. Needs root (CAP_NET_ADMIN).\n"
            "\n"
            "The configuration is validated first: an invalid one exits 2 with one line,\n"
            "before anything is touched."),
        examples=(
            "examples:\n"
            "  ndisproxy run --config /etc/ndisproxy/ndisproxy.toml\n"
            "  ndisproxy run -c ndisproxy.toml --log-level debug"),
        arguments=_run_arguments,
        run=_run,
    ),
    "demo": Command(
        help="try it end to end: the mock driver, ping and TCP through it, a report",
        description=(
            "The main job on an embedded default, in one command: create a peer network\n"
            "namespace, run the proxy daemon with the bundled mocknic.sys in a sandboxed\n"
            "host process and its cable in that namespace, address both ends from the\n"
            "documentation ranges (198.51.100.0/24, 2001:db8:d0::/64), ping the peer through\n"
            "the driver (IPv4 and IPv6), send data over TCP each way (checked by SHA-256),\n"
            "and report the frames, round trips, throughput, the driver's stack high-water\n"
            "per entry point against kernel stack sizes, and the verifier's findings.\n"
            "Everything it creates is removed afterwards, after a failure or Ctrl-C too.\n"
            "\n"
            "Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), ip and ping. Exit status: 0 success,\n"
            "1 a step failed (one line says which). docs/demo.md explains the report."),
        examples=(
            "examples:\n"
            "  ndisproxy demo\n"
            "  ndisproxy demo --megabytes 100\n"
            "  ndisproxy demo --json | jq .stack.entry_points"),
        arguments=demo.arguments,
        run=demo.run,
    ),
}
COMMANDS.update(VERBS)
COMMANDS["driver"] = Command(
    help="install, list, remove and describe drivers (the driver store)",
    description=(
        "The driver store: driver packages installed from their INF files, which the\n"
        "config's driver = \"NAME\" runs with the INF's parameter defaults; and what a\n"
        "driver image is and needs (driver info). These act on files, not on a running\n"
        "daemon. docs/driver-store.md describes them.\n"
        "\n"
        "actions:\n" + "\n".join(f"  {name:<9}{action.help}"
                                  for name, action in DRIVER_ACTIONS.items())),
    examples=(
        "examples:\n"
        "  ndisproxy driver install vendor/e1g6032e.inf\n"
        "  ndisproxy driver list\n"
        "  ndisproxy driver info e1g6032e\n"
        "  ndisproxy driver remove e1g6032e\n"
        "  ndisproxy driver ACTION --help"),
    arguments=_driver_arguments,
    run=_driver,
)


# -- plumbing -----------------------------------------------------------------


def build_parser():
    """The argparse parser with one subparser per entry of COMMANDS."""
    width = max(map(len, COMMANDS)) + 2
    listing = "\n".join(f"  {name:<{width}}{command.help}" for name, command in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="ndisproxy",
        usage="%(prog)s [-h] [--version] COMMAND ...",
        description=(
            "ndisproxy runs Windows NDIS miniport drivers in user space: each driver in an\n"
            "unprivileged host process, every entry point on a guarded private stack, while\n"
            "the proxy daemon owns the Linux side (TAP interfaces, netlink, control socket)\n"
            "and restarts a host whose driver faults."),
        # The command list is written here rather than by argparse, which
        # wraps it badly once the subparsers have a metavar.
        epilog=(
            f"commands:\n{listing}\n"
            "\n"
            "examples:\n"
            "  ndisproxy check-config /etc/ndisproxy/ndisproxy.toml\n"
            "  ndisproxy COMMAND --help\n"
            "\n"
            "documentation: docs/config.md (configuration), docs/host.md (the driver host)"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ndisproxy {__version__}")
    subparsers = parser.add_subparsers(prog="ndisproxy", metavar="COMMAND", dest="command",
                                       help=argparse.SUPPRESS)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, description=command.description,
                                    epilog=command.examples,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--json", action="store_true",
                         help="print one JSON object on stdout instead of text")
        command.arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]); the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # --help and --version (0) or a usage error (2), already printed.
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INVALID
    return args.run(args)


def _print_json(value):
    print(json.dumps(value, ensure_ascii=False))


def _arrow(stream):
    """"→" where the stream can show it, "->" elsewhere (an ASCII-only locale)."""
    try:
        "→".encode(stream.encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return "->"
    return "→"
