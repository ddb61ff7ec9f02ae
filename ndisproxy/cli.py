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
    import logging
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


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
              "(ndisproxy run needs root: CAP_NET_ADMIN)", file=sys.stderr)
        return EXIT_FAILED
    _setup_logging(args.log_level or config.daemon.log_level)
    try:
        return trio.run(daemon.run_until_signalled, config)
    except daemon.DaemonError as exc:
        print(f"ndisproxy: {exc}", file=sys.stderr)
        return EXIT_FAILED


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
            "  sudo ndisproxy demo\n"
            "  sudo ndisproxy demo --megabytes 100\n"
            "  sudo ndisproxy demo --json | jq .stack.entry_points"),
        arguments=demo.arguments,
        run=demo.run,
    ),
}


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
