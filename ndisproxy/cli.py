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
import json
import sys
from typing import Callable

from . import __version__
from . import config as configuration
from . import demo

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
        shown = f"tap{arrow}{where}"
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
                    "host pid, driver, MAC, restarts, uptime, private stack size.",
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
