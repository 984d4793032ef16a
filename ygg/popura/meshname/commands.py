"""The commands of the meshname feature: ``ygg meshname encode|decode`` and
``ygg meshnameconf`` (also ``ygg -useconffile F -meshnameconf``, Popura's spelling)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys

from ygg import address as addr
from ygg.interfaces import ConfigError, format_config, load_config
from ygg.popura.meshname import MeshnameConfig
from ygg.popura.meshname.names import (
    MeshnameError,
    address_of_name,
    domain_from_ip,
    format_section,
    ip_from_text,
    section_for,
)


def _fail(message: str) -> int:
    print(f"ygg: {message}", file=sys.stderr)
    return 1


def cmd_meshname(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ygg meshname", description="Convert between mesh addresses and meshname labels."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    encode = sub.add_parser("encode", help="print the label of an IPv6 address")
    encode.add_argument("address")
    decode = sub.add_parser("decode", help="print the address of a label or meshname domain")
    decode.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.action == "encode":
            print(domain_from_ip(args.address))
        else:
            print(address_of_name(args.name))
    except MeshnameError as e:
        return _fail(str(e))
    return 0


def cmd_meshnameconf(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ygg meshnameconf",
        description=(
            "Print a Meshname section, enabled, serving the AAAA record of ADDRESS (or of "
            "the node whose config is given) under its own label."
        ),
    )
    parser.add_argument("address", nargs="?", help="an IPv6 address (default: the node's)")
    # yggdrasil's spellings too: `ygg -useconffile F -meshnameconf [-json]` comes here whole.
    parser.add_argument(
        "--useconffile", "--config", "-c", "-useconffile", metavar="FILE", help="config file"
    )
    parser.add_argument(
        "--useconf", "-useconf", action="store_true", help="read the config from stdin"
    )
    parser.add_argument("--json", "-json", action="store_true", help="print JSON, not HJSON")
    parser.add_argument(
        "--full",
        action="store_true",
        help="print the whole config, normalised, with that section (as Popura's -meshnameconf)",
    )
    parser.add_argument("-meshnameconf", dest="go", action="store_true", help=argparse.SUPPRESS)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not args.go:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    # Popura 0.4's `-useconffile F -meshnameconf` printed the whole config; 0.3's
    # `-meshnameconf ADDRESS` only the records.  yggdrasil's other flags are ignored.
    args.full = args.full or (args.go and bool(args.useconffile or args.useconf))
    cfg = None
    if args.useconffile or args.useconf:
        try:
            cfg = load_config(args.useconffile, stdin=args.useconf)
        except ConfigError as e:
            return _fail(str(e))
    elif args.address is None or args.full:
        return _fail("give an ADDRESS, or a config with --useconffile FILE or --useconf (stdin)")
    if args.address is not None:
        try:
            address = ip_from_text(args.address)
        except MeshnameError as e:
            return _fail(str(e))
    else:
        assert cfg is not None
        # As `ygg address`: the last 32 bytes of PrivateKey are the public key.
        key = bytes.fromhex(cfg.private_key)[32:]
        address = ipaddress.IPv6Address(addr.address_for_key(key))
    if cfg is None:
        section = section_for(address)
    else:
        try:
            own = cfg.section("Meshname", MeshnameConfig)
        except ConfigError as e:
            return _fail(str(e))
        section = section_for(address, own.listen, own.config)
    if args.full:
        assert cfg is not None
        print(format_config(cfg.with_section("Meshname", section), json=args.json))
    elif args.json:
        print(json.dumps({"Meshname": section}, indent=2))
    else:
        print(format_section(section))
    return 0
