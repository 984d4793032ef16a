"""The ``ygg`` command line.

Two spellings are accepted.  Subcommands (``ygg genconf --json``, ``ygg address
--useconffile F``, ``ygg run --config F``…), and yggdrasil 0.4.7's own single-dash flags
(``ygg -genconf``, ``ygg -useconffile F -address``, ``ygg -autoconf``…) so that scripts
written for yggdrasil keep working.  Outputs are the text yggdrasil prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ygg import BUILD_NAME, __version__
from ygg import address as addr
from ygg import config as node_config
from ygg.errors import ConfigError

Command = Callable[[list[str]], int]
#: The subcommands: name -> (help, run, also a yggdrasil-style flag).  ``ygg ctl`` and the
#: features' commands are added when ``main`` runs.
COMMANDS: dict[str, tuple[str, Command, bool]] = {}


def command(name: str, help: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = (help, fn, False)
        return fn

    return register


def _fail(message: str) -> int:
    print(f"ygg: {message}", file=sys.stderr)
    return 1


def read_config(path: str | None, stdin: bool) -> node_config.NodeConfig:
    """The config from a file or standard input; ConfigError names the source and key."""
    return node_config.load_config(path, stdin=stdin)


def _format_config(cfg: node_config.NodeConfig, as_json: bool, sections: str) -> str:
    from ygg import features

    return features.format_config(cfg, json=as_json, sections_=sections)


def _public_key(cfg: node_config.NodeConfig) -> bytes:
    # The last 32 bytes of PrivateKey, as yggdrasil takes them: no check of the seed here.
    return bytes.fromhex(cfg.private_key)[32:]


def show_derived(what: str, cfg: node_config.NodeConfig, out: TextIO) -> None:
    key = _public_key(cfg)
    if what == "address":
        print(addr.format_address(addr.address_for_key(key)), file=out)
    elif what == "subnet":
        print(addr.format_subnet(addr.subnet_for_key(key)), file=out)
    else:
        print(key.hex(), file=out)


def print_version() -> None:
    print(f"Build name: {BUILD_NAME}")
    print(f"Build version: {__version__}")


# --------------------------------------------------------------------------- subcommands


def _config_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--useconffile", "--config", "-c", metavar="FILE", help="config file")
    parser.add_argument("--useconf", action="store_true", help="read the config from stdin")


@command("genconf", "print a new config (HJSON, or JSON with --json)")
def cmd_genconf(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ygg genconf")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cfg = node_config.generate()
    # JSON as yggdrasil's -genconf -json: its own keys only; HJSON with every section.
    print(_format_config(cfg, args.json, "present" if args.json else "all"))
    return 0


@command("normaliseconf", "print a config file normalised, with defaults filled in")
def cmd_normaliseconf(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ygg normaliseconf")
    _config_source(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        cfg = read_config(args.useconffile, args.useconf)
        print(_format_config(cfg, args.json, "present"))
    except ConfigError as e:
        return _fail(str(e))
    return 0


def _derived_command(what: str) -> Command:
    def run(argv: list[str]) -> int:
        parser = argparse.ArgumentParser(prog=f"ygg {what}")
        _config_source(parser)
        args = parser.parse_args(argv)
        try:
            cfg = read_config(args.useconffile, args.useconf)
        except ConfigError as e:
            return _fail(str(e))
        show_derived(what, cfg, sys.stdout)
        return 0

    return run


command("address", "print the node's 200::/7 address")(_derived_command("address"))
command("subnet", "print the node's 300::/64 subnet")(_derived_command("subnet"))
command("publickey", "print the node's public key")(_derived_command("publickey"))


@command("version", "print the build name and version")
def cmd_version(argv: list[str]) -> int:
    print_version()
    return 0


@command("doctor", "check this host and a config for what would stop a node; fixes")
def cmd_doctor(argv: list[str]) -> int:
    from ygg.doctor.command import main as doctor

    return doctor(argv)


@command("run", "run the node (same options as twistd ygg)")
def cmd_run(argv: list[str]) -> int:
    from ygg import runner

    return runner.run(argv)


# --------------------------------------------------------------------------- yggdrasil flags

_GO_BOOL = {
    "genconf",
    "useconf",
    "normaliseconf",
    "json",
    "autoconf",
    "version",
    "address",
    "subnet",
    "publickey",
}
_GO_VALUE = {"useconffile", "logto", "loglevel"}


def _feature_flags() -> tuple[set[str], set[str]]:
    from ygg import features

    options = features.options_of(features.discover().features)
    return (
        {o.name for o in options if not o.takes_value},
        {o.name for o in options if o.takes_value},
    )


def parse_go_flags(
    argv: Sequence[str], bools: set[str], values: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """Go's ``flag`` package: ``-x`` or ``--x``, ``-x=v`` or ``-x v``, booleans ``-x`` or
    ``-x=false``; parsing stops at the first argument that is not a flag, or after ``--``.

    Returns the flags given and the arguments left.  ValueError with Go's text for a bad
    flag; LookupError for ``-h``/``-help`` (the caller prints its usage).
    """
    parsed: dict[str, Any] = {}
    args = list(argv)
    while args:
        arg = args[0]
        if len(arg) < 2 or not arg.startswith("-"):
            break
        args.pop(0)
        if arg == "--":
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name.startswith("-") or name.startswith("="):
            raise ValueError(f"bad flag syntax: {arg}")
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in ("h", "help"):
            raise LookupError("help")
        if name in bools:
            if value is None or value.lower() in ("1", "t", "true"):
                parsed[name] = True
            elif value.lower() in ("0", "f", "false"):
                parsed[name] = False
            else:
                raise ValueError(f'invalid boolean value "{value}" for -{name}: parse error')
        elif name in values:
            if value is None:
                if not args:
                    raise ValueError(f"flag needs an argument: -{name}")
                value = args.pop(0)
            parsed[name] = value
        else:
            raise ValueError(f"flag provided but not defined: -{name}")
    return parsed, args


GO_USAGE = """\
  -address
        print the IPv6 address derived from the config and exit
  -autoconf
        run with a generated config (new keys, defaults)
  -genconf
        print a new config to stdout
  -json
        with -genconf or -normaliseconf: print JSON instead of HJSON
  -loglevel string
        log level (error, warn, info, debug) (default "info")
  -logto string
        "stdout", "syslog" or a file path to log to (default "stdout")
  -normaliseconf
        with -useconf or -useconffile: print the config normalised
  -publickey
        print the public key derived from the config and exit
  -subnet
        print the IPv6 subnet derived from the config and exit
  -useconf
        read an HJSON/JSON config from stdin
  -useconffile string
        read an HJSON/JSON config from this file
  -version
        print the build name and version"""


def go_main(argv: list[str]) -> int:
    """yggdrasil's flag interface, with its precedence: -version, -autoconf, config, -genconf."""
    feature_bools, feature_values = _feature_flags()
    go_commands = {name for name, (_, _, go) in COMMANDS.items() if go}
    try:
        flags, _ = parse_go_flags(
            argv, _GO_BOOL | feature_bools | go_commands, _GO_VALUE | feature_values
        )
    except LookupError:
        print("Usage:")
        print(GO_USAGE, file=sys.stderr)
        return 0
    except ValueError as e:
        print(e, file=sys.stderr)
        print("Usage of ygg:", file=sys.stderr)
        print(GO_USAGE, file=sys.stderr)
        return 2
    has_config = bool(flags.get("useconffile")) or flags.get("useconf", False)
    derived = next((w for w in ("address", "subnet", "publickey") if flags.get(w)), None)
    if flags.get("version"):
        print_version()
        return 0
    for name in sorted(go_commands):
        if flags.get(name):  # a feature's command in yggdrasil's spelling gets it all
            return COMMANDS[name][1](list(argv))
    if flags.get("autoconf") or has_config:
        if has_config and (flags.get("normaliseconf") or derived):
            try:
                cfg = read_config(flags.get("useconffile"), flags.get("useconf", False))
            except ConfigError as e:
                return _fail(str(e))
            if flags.get("normaliseconf"):
                try:
                    print(_format_config(cfg, bool(flags.get("json")), "present"))
                except ConfigError as e:
                    return _fail(str(e))
            else:
                show_derived(derived, cfg, sys.stdout)  # type: ignore[arg-type]
            return 0
        if derived:  # with -autoconf: a fresh key's
            show_derived(derived, node_config.generate(), sys.stdout)
            return 0
        run_argv = ["--autoconf"] if flags.get("autoconf") else []
        if flags.get("useconffile"):
            run_argv = ["--config", flags["useconffile"]]
        elif flags.get("useconf") and not flags.get("autoconf"):
            run_argv = ["--config", "/dev/stdin"]
        for name in sorted(feature_bools | feature_values):
            if name in flags and flags[name] is not False:
                run_argv += [f"--{name}"] if flags[name] is True else [f"--{name}", flags[name]]
        if flags.get("loglevel"):
            run_argv += ["--loglevel", flags["loglevel"]]
        if flags.get("logto"):
            run_argv += ["--logto", flags["logto"]]
        return cmd_run(run_argv)
    if flags.get("genconf"):
        return cmd_genconf(["--json"] if flags.get("json") else [])
    print("Usage:")
    print(GO_USAGE, file=sys.stderr)
    if derived:
        print("\nError: You need to specify some config data using -useconf or -useconffile.")
    return 0


# --------------------------------------------------------------------------- entry point


def _load_extensions() -> None:
    """Add the subcommands of ``ygg ctl`` and of the installed features."""
    from ygg import features
    from ygg.admin import ctl  # noqa: F401  (registers ``ygg ctl``)

    for feature, cmd in features.commands_of(features.discover().features):
        if cmd.name in COMMANDS and COMMANDS[cmd.name][1] is not cmd.run:
            print(
                f"ygg: feature {feature.name}'s command {cmd.name!r} is taken; ignored",
                file=sys.stderr,
            )
            continue
        COMMANDS[cmd.name] = (f"{cmd.help} [{feature.name}]", cmd.run, cmd.go_flag)


def usage(out: TextIO) -> None:
    from ygg import features

    print(
        "usage: ygg COMMAND [options]   (or yggdrasil's flags: ygg -useconffile F -address)",
        file=out,
    )
    print("\ncommands:", file=out)
    for name, (help, _, _) in sorted(COMMANDS.items()):
        print(f"  {name:<15} {help}", file=out)
    found = features.discover()
    if found.features or found.failures:
        print("\nfeatures (plugins):", file=out)
        for feature in found.features:
            print(f"  {feature.name:<15} config section {feature.section}", file=out)
        for failure in found.failures:
            print(f"  {failure.name:<15} failed to load: {failure.reason}", file=out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _load_extensions()
    if not argv or argv[0] in ("-h", "--help", "help"):
        usage(sys.stdout)
        return 0
    if argv[0].startswith("-"):
        return go_main(argv)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        usage(sys.stderr)
        return _fail(f"unknown command {name!r}")
    return COMMANDS[name][1](rest)


if __name__ == "__main__":
    # Run as ``python -m ygg.cli``: use the imported module, where extensions register.
    from ygg import cli

    sys.exit(cli.main())
