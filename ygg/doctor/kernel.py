"""The kernel checks of ``ygg doctor``: IPv6 on, the TUN device and the right to create one,
and RFC 6724's source-address selection between the node's addresses and the host's.

Each is a small function of a host reader (``ygg.doctor.host.Host``, or a test's fake) and
the node's config (None: the defaults of ``ygg run --autoconf``), returning ``Check``
lines; a problem comes with the command or setting that fixes it.  Nothing here changes
the host.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ygg import address as addr
from ygg.config import NodeConfig
from ygg.doctor import labels
from ygg.doctor.check import FAIL, OK, SKIP, WARN, Check
from ygg.doctor.host import capabilities, errno_name, is_char_device

TUN_DEVICE = "/dev/net/tun"
CAP_NET_ADMIN = 12
#: Internet destinations whose source address the kernel is asked for (nothing is sent):
#: one in 2000::/3 and one in NAT64's well-known prefix (192.0.2.1, RFC 5737's).
INTERNET = ("2000::1", "64:ff9b::c000:201")


def _persist(settings: str) -> str:
    return f"sysctl -w {settings} (and the same in a file in /etc/sysctl.d/ to keep it)"


# --------------------------------------------------------------------------- IPv6


def ipv6(host: Any) -> list[Check]:
    if host.stat("/proc/sys/net/ipv6") is None:
        return [
            Check(
                "IPv6",
                FAIL,
                "the kernel runs without IPv6 (no /proc/sys/net/ipv6: booted with "
                "ipv6.disable=1, or built without it)",
                "remove ipv6.disable=1 from the kernel command line (GRUB_CMDLINE_LINUX in "
                "/etc/default/grub, then update-grub) and reboot",
            )
        ]
    off = []
    for scope in ("all", "default", "lo"):
        value = (host.read(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6") or "").strip()
        if value == "1":
            off.append(f"net.ipv6.conf.{scope}.disable_ipv6")
    if off:
        return [
            Check(
                "IPv6",
                FAIL,
                f"disabled by sysctl: {', '.join(f'{key} = 1' for key in off)}",
                _persist(" ".join(f"{key}=0" for key in off)),
            )
        ]
    return [Check("IPv6", OK, "on (disable_ipv6 is 0 for all, default and lo)")]


# --------------------------------------------------------------------------- TUN


def tun(host: Any, cfg: NodeConfig | None) -> list[Check]:
    from ygg.tun.device import wants_tun

    if_name = "auto" if cfg is None else cfg.if_name
    if not wants_tun(if_name):
        return [Check("TUN", SKIP, f"IfName is {if_name}: the node runs without a TUN")]
    return [_tun_device(host), _tun_permission(host), *_tun_name(host, if_name)]


def _tun_device(host: Any) -> Check:
    found = host.stat(TUN_DEVICE)
    load = "load the tun module: modprobe tun (in a container, pass the device in)"
    if found is None:
        return Check("TUN device", FAIL, f"{TUN_DEVICE} does not exist", load)
    if not is_char_device(found):
        return Check(
            "TUN device",
            FAIL,
            f"{TUN_DEVICE} is not a character device",
            f"rm {TUN_DEVICE} && mknod {TUN_DEVICE} c 10 200 && chmod 0666 {TUN_DEVICE}",
        )
    error = host.open_error(TUN_DEVICE)
    if error is None:
        return Check("TUN device", OK, f"{TUN_DEVICE} opens for reading and writing")
    if errno_name(error) in ("EACCES", "EPERM"):
        fix = f"run the node as root, or make the device usable: chmod 0666 {TUN_DEVICE}"
    else:
        fix = load
    return Check("TUN device", FAIL, f"cannot open {TUN_DEVICE}: {error.strerror}", fix)


def _tun_permission(host: Any) -> Check:
    caps = capabilities(host.read("/proc/self/status"))
    uid = host.euid()
    if caps is not None and not caps >> CAP_NET_ADMIN & 1:
        return Check(
            "TUN permission",
            FAIL,
            f"no CAP_NET_ADMIN (uid {uid}, effective capabilities {caps:#x}): the node "
            "cannot create its TUN",
            "run the node as root with CAP_NET_ADMIN (not dropped by systemd's "
            "CapabilityBoundingSet= or a container's capabilities: --cap-add NET_ADMIN), "
            "or set IfName: none to run without a TUN",
        )
    if uid != 0:
        return Check(
            "TUN permission",
            FAIL,
            f"not root (uid {uid}): ygg opens its TUN only as root, and runs without one otherwise",
            "run the node as root, or set IfName: none to run without a TUN",
        )
    return Check("TUN permission", OK, "root, with CAP_NET_ADMIN")


def _tun_name(host: Any, if_name: str) -> list[Check]:
    if if_name == "auto":
        return []
    try:
        names = {i.name for i in host.interfaces()}
    except OSError:
        return []
    if if_name not in names:
        return []
    return [
        Check(
            "TUN name",
            WARN,
            f"an interface named {if_name} exists already: a node running now, or a "
            "device the node cannot open as its own",
            f"fine if that node is this one; else remove {if_name} (ip link del {if_name}) "
            "or choose another IfName (or auto)",
        )
    ]


# --------------------------------------------------------------------------- source address


def _ygg_samples(cfg: NodeConfig | None) -> list[tuple[str, ipaddress.IPv6Address]]:
    if cfg is None:
        return [
            ("200::/8 address", ipaddress.IPv6Address("200::1")),
            ("300::/8 subnet", ipaddress.IPv6Address("300::1")),
        ]
    public = bytes.fromhex(cfg.private_key)[32:]
    address = ipaddress.IPv6Address(addr.address_for_key(public))
    subnet = addr.subnet_for_key(public)
    return [
        (f"address {address}", address),
        (f"subnet {addr.format_subnet(subnet)}", ipaddress.IPv6Address(subnet + bytes(7) + b"\1")),
    ]


def source_address(host: Any, cfg: NodeConfig | None) -> list[Check]:
    """RFC 6724 source selection between the node's addresses and the host's Internet
    ones: the kernel's label table, and the source it picks for two Internet destinations."""
    name = "source address"
    try:
        table = host.address_labels()
    except OSError as e:
        return [Check(name, WARN, f"cannot read the address-label table: {e.strerror or e}")]
    internet = {label for d in INTERNET if (label := labels.label_of(table, _ip(d))) is not None}
    shared = [what for what, ip in _ygg_samples(cfg) if labels.label_of(table, ip) in internet]
    picked = []
    for destination in INTERNET:
        try:
            source = host.source_for(destination)
        except OSError:
            continue  # no route there: nothing to pick a source for
        if _ip(source) in labels.YGGDRASIL:
            picked.append(f"{source} for {destination}")
    fix = " && ".join(labels.fix_commands(table)) + (
        "; it lasts until a reboot: run it at every boot too (e.g. as an ExecStartPre= line "
        "in the node's systemd unit)"
    )
    if picked:
        if not shared:  # labels are not why: there is no other source to pick
            fix = (
                "give the host a global IPv6 address of its own for Internet traffic, or "
                "drop the IPv6 default route it has without one"
            )
        return [
            Check(
                name,
                FAIL,
                f"the kernel picks a Yggdrasil address as the source of Internet traffic: "
                f"{'; '.join(picked)} (yggdrasil issues #1155, #1372)",
                fix,
            )
        ]
    if shared:
        label = labels.label_of(table, _ip(INTERNET[0]))
        return [
            Check(
                name,
                WARN,
                f"the {' and '.join(shared)} share label {label} with Internet destinations: "
                "beside a global address, the kernel may pick them as the source of Internet "
                "(and NAT64) traffic (yggdrasil issues #1155, #1372)",
                fix,
            )
        ]
    ygg_label = labels.label_of(table, _ip("200::1"))
    return [Check(name, OK, f"200::/7 has its own address label ({ygg_label})")]


def _ip(text: str) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(text)
