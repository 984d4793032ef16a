#!/usr/bin/env bash
# Prepare this checkout on Debian bookworm (as root): the Debian packages ygg needs, a
# virtual environment in .venv with ygg installed into it.
#
#   scripts/setup.sh          what running a node needs
#   scripts/setup.sh --test   also what the tests need: the reference Go nodes (Debian's
#                             yggdrasil 0.4.7, and trixie's 0.5.12 in /opt/yggdrasil-0.5),
#                             iperf3, dig, rdisc6, a SOCKS5 server, the ssh client,
#                             headless Chromium (the crawl map's page) and Prometheus (a
#                             real server scrapes /metrics; its service is not started)
#
# Idempotent: a second run installs nothing. Non-interactive. Never starts a service.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "setup: $*" >&2; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

PKGS=(iproute2)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || PKGS+=(python3-venv)
if [ "$want_test" = 1 ]; then
    # yggdrasil: the reference node (/usr/sbin/yggdrasil, yggdrasilctl) tests compare against;
    # the rest are the tools tests drive ygg with, as a user would (chromium opens the page
    # `ygg crawl --map` writes; prometheus scrapes the node's /metrics, run by the test).
    PKGS+=(yggdrasil iputils-ping iperf3 bind9-dnsutils ndisc6 microsocks openssh-client
           procps chromium prometheus)
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root"
    command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian bookworm"
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q -o DPkg::Lock::Timeout=300 update >&2
    # Packages must not start services here (policy-rc.d 101 = "not allowed").
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 0755 "$policy"
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections 2>/dev/null || true
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >&2
fi

if [ "$want_test" = 1 ]; then
    [ "$(id -u)" -eq 0 ] || [ -x "${YGG05_DIR:-/opt/yggdrasil-0.5}/usr/sbin/yggdrasil" ] \
        || die "installing the v0.5 reference node needs root"
    bash scripts/install-yggdrasil-v05.sh
fi

if [ ! -x .venv/bin/python ]; then
    log "creating the virtual environment .venv"
    python3 -m venv .venv
fi
# A normal install (what a user gets), redone whenever the sources changed since the last.
stamp=.venv/.ygg-installed
if [ ! -f "$stamp" ] || [ -n "$(find setup.cfg pyproject.toml ygg twisted -newer "$stamp" \
        -not -name '*.pyc' -not -name dropin.cache -print -quit)" ]; then
    log "installing ygg and its Python packages into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -U pip setuptools wheel >&2
    # pip builds in the source tree: a build/ left by an older version would bring its
    # removed modules back into the install.
    rm -rf build ./*.egg-info
    .venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps . >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check '.[test]' >&2
    touch "$stamp"
fi
# Scan twistd's plugins once now, so its cache (twisted/plugins/dropin.cache) is written while
# we may write it, before a node runs as another user.
(venv_python="$PWD/.venv/bin/python"; cd / && "$venv_python" -c \
    'from twisted.plugin import IPlugin, getPlugins; import twisted.plugins; list(getPlugins(IPlugin, twisted.plugins))')
