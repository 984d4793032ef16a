#!/usr/bin/env bash
# The v0.5 reference node for the interop tests: Debian trixie's `yggdrasil` package
# (0.5.12, the protocol of today's public network), unpacked into a directory of its own on
# a bookworm machine. Nothing is installed system-wide: bookworm's 0.4.7 in /usr/sbin stays
# the v0.4 reference. The Go binaries are static and run on bookworm as they are.
#
#   scripts/install-yggdrasil-v05.sh            # as root, into /opt/yggdrasil-0.5
#   YGG05_DIR=DIR scripts/install-yggdrasil-v05.sh
#
# apt runs with a configuration of its own (its own lists and cache, trixie main only) to
# download the .deb; dpkg-deb unpacks it. Idempotent; non-interactive.
set -euo pipefail

dest=${YGG05_DIR:-/opt/yggdrasil-0.5}
binary=$dest/usr/sbin/yggdrasil
ctl=$dest/usr/sbin/yggdrasilctl
log() { echo "install-yggdrasil-v05: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ ! -x "$binary" ] || [ ! -x "$ctl" ]; then
    command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian"
    # The mirror this machine already uses, from deb822 or one-line sources.
    mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$mirror" ]; then
        mirror=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    fi
    [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$work/sources.list"
    cat > "$work/apt.conf" <<CONF
Dir::State::Lists "$work/lists";
Dir::Cache "$work/cache";
Dir::Etc::SourceList "$work/sources.list";
Dir::Etc::SourceParts "/nonexistent";
APT::Sandbox::User "root";
CONF
    log "downloading Debian trixie's yggdrasil"
    APT_CONFIG=$work/apt.conf apt-get -q -o DPkg::Lock::Timeout=300 update >&2 || die "apt-get update (trixie) failed"
    (cd "$work" && APT_CONFIG=$work/apt.conf apt-get -q download yggdrasil >&2) || die "apt-get download failed"
    deb=$(ls "$work"/yggdrasil_*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || die "no yggdrasil .deb was downloaded"
    mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest" || die "cannot unpack $deb"
    log "unpacked $(basename "$deb") into $dest"
fi
"$binary" -version 2>/dev/null | grep -q 'Build version: 0\.5\.' || die "$binary is not a 0.5 build"
