#!/usr/bin/env bash
# tests/tools/capture_v05.sh -- regenerate tests/data/v05/ from the real yggdrasil 0.5.12.
#
# Usage (root; needs tcpdump, socat, jq, iproute2 and the lab scripts):
#   LAB=/path/to/shared/lab bash tests/tools/capture_v05.sh [OUTDIR]
# Defaults: LAB=../shared/lab (next to the checkout), OUTDIR=tests/data/v05,
# YGGDRASIL/YGGDRASILCTL = /opt/yggdrasil-0.5/usr/sbin/{yggdrasil,yggdrasilctl} (the v0.5
# judge), YGGDRASIL04=/usr/sbin/yggdrasil (the v0.4.7 judge, for the cross-version attempts).
#
# What it runs (all on loopback, or inside two network namespaces it creates and deletes):
#   A  listens on tcp://127.0.0.1:P1 (no password) and tcp://127.0.0.1:P2?password=sesame
#   B  dials P2?password=sesame                 (the link with a password)
#   C  dials P1?priority=3                      (the link without one)
#   tcpdump on lo records every connection to P1, P2 and P3 (links.pcap).
#   Keys are fixed: seeds "A"*32, "B"*32, "C"*32 (B < C < A, so B is the root, A its child,
#   C A's child); D ("D"*32) and the 0.4.7 node E ("E"*32) only make failing attempts:
#   D dials P2 with a wrong password, then P2 without one; E (0.4.7) dials P1; D dials
#   E's 0.4.7 listener P3.  Traffic: getNodeInfo and debug_remote* between the nodes, then
#   C is stopped and B sends to C again (the path breaks at A: a path-broken frame).
#   T  alone in a netns with a TUN (getTUN enabled).
#   M1/M2  in two netns joined by a veth, multicast on lab0 with Password "sesame":
#   tcpdump records their UDP beacons (beacons.pcap).
# Everything it starts is stopped by PID; the temp dir and namespaces are removed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=${LAB:-$ROOT/../shared/lab}
OUT=${1:-$ROOT/tests/data/v05}
export YGGDRASIL=${YGGDRASIL:-/opt/yggdrasil-0.5/usr/sbin/yggdrasil}
export YGGDRASILCTL=${YGGDRASILCTL:-/opt/yggdrasil-0.5/usr/sbin/yggdrasilctl}
YGGDRASIL04=${YGGDRASIL04:-/usr/sbin/yggdrasil}
PY=${PYTHON:-$ROOT/.venv/bin/python}
REFNODE="$LAB/refnode.sh"
ME=capture_v05
die() { echo "$ME: ERROR: $*" >&2; exit 1; }
log() { echo "$ME: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (tcpdump, network namespaces, TUN)"
for t in tcpdump socat jq ip; do command -v $t >/dev/null 2>&1 || die "$t missing"; done
[ -f "$REFNODE" ] || die "no $REFNODE (set LAB=/path/to/shared/lab)"
[ -x "$YGGDRASIL" ] || die "no $YGGDRASIL (run shared/lab/install-reference-v05.sh)"
"$YGGDRASIL" -version | grep -q '0\.5\.12' || log "warning: $YGGDRASIL is not 0.5.12"

KEY_A=4141414141414141414141414141414141414141414141414141414141414141db995fe25169d141cab9bbba92baa01f9f2e1ece7df4cb2ac05190f37fcc1f9d
KEY_B=42424242424242424242424242424242424242424242424242424242424242422152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12
KEY_C=434343434343434343434343434343434343434343434343434343434343434322fc297792f0b6ffc0bfcfdb7edb0c0aa14e025a365ec0e342e86e3829cb74b6
KEY_D=4444444444444444444444444444444444444444444444444444444444444444d759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48
KEY_E=45454545454545454545454545454545454545454545454545454545454545456355691c178a8ff91007a7478afb955ef7352c63e7b25703984cf78b26e21a56
KEY_T=54545454545454545454545454545454545454545454545454545454545454549f49439e9db095bc4111ed25d35795d831bc55a047f4b1d7f6aee3777bb41220
PASSWORD=sesame

WORK=$(mktemp -d /tmp/v05cap.XXXX)
NSP="v05c$$"
PIDS=()        # tcpdump and directly started yggdrasil processes (ours, by PID)
NODES=()       # refnode.sh directories
NETNS_UP=0
cleanup() {
    local rc=$? p d
    set +e
    for d in "${NODES[@]+"${NODES[@]}"}"; do bash "$REFNODE" stop "$d" >/dev/null 2>&1; done
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        if kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; wait "$p" 2>/dev/null; fi
    done
    [ "$NETNS_UP" = 1 ] && bash "$LAB/netns.sh" down "$NSP" >/dev/null 2>&1
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() {  # start NAME refnode-options...
    local name=$1; shift
    NODES+=("$WORK/$name")
    bash "$REFNODE" start "$WORK/$name" "$@" > "$WORK/$name.env"
}
raw() { bash "$REFNODE" raw "$WORK/$1" "$2"; }
ctl() { bash "$REFNODE" ctl "$WORK/$1" "${@:2}"; }
keyof() { (. "$WORK/$1/node.env"; echo "$YGG_KEY"); }
tcpdump_start() {  # tcpdump_start ERRFILE ARGS... ; appends the PID to PIDS
    local err=$1; shift
    tcpdump -n -U -s 0 "$@" 2> "$err" &
    PIDS+=($!)
    for _ in $(seq 1 50); do grep -q 'listening on' "$err" 2>/dev/null && return 0; sleep 0.1; done
    die "tcpdump did not start: $(cat "$err")"
}
tcpdump_stop() {  # the last tcpdump started
    local p=${PIDS[-1]}
    sleep 0.5; kill -INT "$p"; wait "$p" 2>/dev/null || true
}

mkdir -p "$OUT/admin"
rm -f "$OUT"/admin/*.json "$OUT"/admin/*.txt
P1=$(free_port); P2=$(free_port); P3=$(free_port)
log "ports: P1=$P1 (plain) P2=$P2 (password) P3=$P3 (0.4.7 listener)"

# ------------------------------------------------------------------ links A-B, A-C
tcpdump_start "$WORK/tcpdump.err" -i lo -w "$WORK/links.pcap" \
    "tcp port $P1 or tcp port $P2 or tcp port $P3"
start A --privkey "$KEY_A" --listen "tcp://127.0.0.1:$P1" \
    --listen "tcp://127.0.0.1:$P2?password=$PASSWORD" --nodeinfo '{"name":"v05-a"}' --loglevel debug
start B --privkey "$KEY_B" --peer "tcp://127.0.0.1:$P2?password=$PASSWORD" \
    --nodeinfo '{"name":"v05-b"}' --loglevel debug --wait-peers 1
start C --privkey "$KEY_C" --peer "tcp://127.0.0.1:$P1?priority=3" \
    --nodeinfo '{"name":"v05-c"}' --loglevel debug --wait-peers 1
KA=$(keyof A); KB=$(keyof B); KC=$(keyof C)
log "A=$KA B=$KB C=$KC; idle 8 s (tree, blooms, keepalives)"
sleep 8

log "traffic: nodeinfo and remote debug C->B (through A), B->C, A->B"
raw C "{\"request\":\"getNodeInfo\",\"arguments\":{\"key\":\"$KB\"}}" > "$WORK/ni-cb.json"
raw B "{\"request\":\"getNodeInfo\",\"arguments\":{\"key\":\"$KC\"}}" > "$WORK/ni-bc.json"
raw A "{\"request\":\"getNodeInfo\",\"arguments\":{\"key\":\"$KB\"}}" > "$WORK/ni-ab.json"
sleep 1

# ------------------------------------------------------------------ admin replies
INDEX="$WORK/index.tsv"; : > "$INDEX"
capture() {  # capture NODE NAME REQUEST_JSON [CTL_ARGS...]
    local node=$1 name=$2 req=$3; shift 3
    raw "$node" "$req" > "$OUT/admin/$node.$name.reply.json"
    printf '%s\t%s\t%s\t%s\n' "$node" "$name" "$req" "$*" >> "$INDEX"
    if [ $# -gt 0 ]; then ctl "$node" "$@" > "$OUT/admin/$node.$name.ctl.txt" 2>&1 || true; fi
}
for n in A B C; do
    for r in getSelf getPeers getTree getPaths getSessions getMulticastInterfaces getTUN list; do
        capture "$n" "$r" "{\"request\":\"$r\",\"keepalive\":false}" "$r"
    done
done
capture C getNodeInfo "{\"request\":\"getNodeInfo\",\"arguments\":{\"key\":\"$KB\"}}" getNodeInfo "key=$KB"
capture C debug_remoteGetSelf "{\"request\":\"debug_remoteGetSelf\",\"arguments\":{\"key\":\"$KB\"}}" debug_remoteGetSelf "key=$KB"
capture C debug_remoteGetPeers "{\"request\":\"debug_remoteGetPeers\",\"arguments\":{\"key\":\"$KA\"}}" debug_remoteGetPeers "key=$KA"
capture C debug_remoteGetTree "{\"request\":\"debug_remoteGetTree\",\"arguments\":{\"key\":\"$KB\"}}" debug_remoteGetTree "key=$KB"
capture A getSelf-yggdrasilctl-style '{"request":"getSelf","arguments":{}}'
capture A getPeers-json '{"request":"getPeers","arguments":{}}' -json getPeers
capture A error-unknown '{"request":"noSuchThing"}' noSuchThing
capture A error-not-json 'hello'
capture A error-getNodeInfo-nokey '{"request":"getNodeInfo"}'
capture A error-remoteGetSelf-shortkey '{"request":"debug_remoteGetSelf","arguments":{"key":"00"}}'
capture A keepalive-two-requests '{"request":"getTUN","keepalive":true}{"request":"getSelf"}'

# ------------------------------------------------------------------ failing handshakes
log "failing handshakes: wrong password, missing password, 0.4.7 <-> 0.5.12"
start D --privkey "$KEY_D" --peer "tcp://127.0.0.1:$P2?password=wrong" --loglevel debug
sleep 2
bash "$REFNODE" stop "$WORK/D" 2>/dev/null
cp "$WORK/D/node.log" "$WORK/D-wrongpassword.log"
start D --privkey "$KEY_D" --peer "tcp://127.0.0.1:$P2" --loglevel debug
sleep 2
bash "$REFNODE" stop "$WORK/D" 2>/dev/null
cp "$WORK/D/node.log" "$WORK/D-nopassword.log"
YGGDRASIL=$YGGDRASIL04 YGGDRASILCTL=/usr/sbin/yggdrasilctl \
    start E --privkey "$KEY_E" --listen "tcp://127.0.0.1:$P3" --peer "tcp://127.0.0.1:$P1" --loglevel debug
sleep 2
start D --privkey "$KEY_D" --peer "tcp://127.0.0.1:$P3" --loglevel debug
sleep 2
bash "$REFNODE" stop "$WORK/D" 2>/dev/null
bash "$REFNODE" stop "$WORK/E" 2>/dev/null

# ------------------------------------------------------------------ a broken path
log "path broken: stop C, B sends to C again"
bash "$REFNODE" stop "$WORK/C" 2>/dev/null
sleep 1
raw B "{\"request\":\"getNodeInfo\",\"arguments\":{\"key\":\"$KC\"}}" > "$WORK/ni-bc2.json" || true
sleep 1
capture A getPeers-after-C-left '{"request":"getPeers"}' getPeers
capture B getPaths-after-broken '{"request":"getPaths"}' getPaths
tcpdump_stop
for n in A B C E; do cp "$WORK/$n/node.log" "$WORK/$n.log" 2>/dev/null || true; done

# ------------------------------------------------------------------ TUN node
log "TUN node in a netns"
start T --privkey "$KEY_T" --netns "${NSP}t" --tun ygg0
capture T getTUN '{"request":"getTUN"}' getTUN
capture T getSelf '{"request":"getSelf"}' getSelf
bash "$REFNODE" stop "$WORK/T" 2>/dev/null

# ------------------------------------------------------------------ multicast beacons
log "multicast beacons with a password, in two namespaces"
eval "$(bash "$LAB/netns.sh" up "$NSP")"; NETNS_UP=1
mcast_node() {  # mcast_node NAME NETNS PRIVKEY
    local name=$1 ns=$2 key=$3 d="$WORK/$1"
    bash "$REFNODE" genconf "$d" --privkey "$key" --multicast lab0 >/dev/null
    jq --arg pw "$PASSWORD" '.MulticastInterfaces[0].Password=$pw | .MulticastInterfaces[0].Port=9100' \
        "$d/config.json" > "$d/config.tmp" && mv "$d/config.tmp" "$d/config.json"
    ip netns exec "$ns" "$YGGDRASIL" -useconffile "$d/config.json" -logto "$d/node.log" -loglevel debug \
        </dev/null >"$d/stdout.log" 2>&1 &
    PIDS+=($!)
}
ip netns exec "$LAB_NS_A" tcpdump -n -U -s 0 -i lab0 -w "$WORK/beacons.pcap" 'udp port 9001' \
    2> "$WORK/tcpdump-mc.err" &
MC_TCPDUMP=$!
for _ in $(seq 1 50); do grep -q 'listening on' "$WORK/tcpdump-mc.err" 2>/dev/null && break; sleep 0.1; done
mcast_node M1 "$LAB_NS_A" "$KEY_A"
mcast_node M2 "$LAB_NS_B" "$KEY_B"
sleep 8
socat -t 10 - "UNIX-CONNECT:$WORK/M1/admin.sock" <<<'{"request":"getMulticastInterfaces"}' \
    > "$OUT/admin/M1.getMulticastInterfaces.reply.json"
socat -t 10 - "UNIX-CONNECT:$WORK/M1/admin.sock" <<<'{"request":"getPeers"}' \
    > "$OUT/admin/M1.getPeers.reply.json"
"$YGGDRASILCTL" -endpoint "unix://$WORK/M1/admin.sock" getMulticastInterfaces \
    > "$OUT/admin/M1.getMulticastInterfaces.ctl.txt" 2>&1 || true
printf '%s\t%s\t%s\t%s\n' M1 getMulticastInterfaces '{"request":"getMulticastInterfaces"}' getMulticastInterfaces >> "$INDEX"
printf '%s\t%s\t%s\t%s\n' M1 getPeers '{"request":"getPeers"}' "" >> "$INDEX"
sleep 0.5; kill -INT "$MC_TCPDUMP"; wait "$MC_TCPDUMP" 2>/dev/null || true
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
cp "$WORK/M1/node.log" "$WORK/M1.log"; cp "$WORK/M2/node.log" "$WORK/M2.log"
bash "$LAB/netns.sh" down "$NSP" >/dev/null 2>&1 && NETNS_UP=0

# ------------------------------------------------------------------ outputs
mkdir -p "$OUT/logs"
for n in A B C E M1 M2; do
    grep -v 'admin socket\|Admin socket' "$WORK/$n.log" > "$OUT/logs/$n.log" 2>/dev/null || true
done
cp "$WORK/D-wrongpassword.log" "$OUT/logs/D-wrongpassword.log"
cp "$WORK/D-nopassword.log" "$OUT/logs/D-nopassword.log"
cp "$WORK/D/node.log" "$OUT/logs/D-to-0.4.7.log"
jq -Rn --arg ka "$KA" --arg kb "$KB" --arg kc "$KC" \
    --arg pa "$KEY_A" --arg pb "$KEY_B" --arg pc "$KEY_C" --arg pd "$KEY_D" --arg pe "$KEY_E" \
    --arg pt "$KEY_T" --arg p1 "$P1" --arg p2 "$P2" --arg p3 "$P3" --arg pw "$PASSWORD" \
    --arg ver "$("$YGGDRASIL" -version | tr '\n' ' ')" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
  {generator: ($ver + "captured " + $date),
   password: $pw,
   ports: {plain: ($p1|tonumber), password: ($p2|tonumber), v04_listener: ($p3|tonumber)},
   private_keys: {A: $pa, B: $pb, C: $pc, D: $pd, E: $pe, T: $pt},
   public_keys: {A: $ka, B: $kb, C: $kc},
   replies: [inputs | split("\t") | {node: .[0], name: .[1], request_text: (.[2] + "\n"),
             reply_file: (.[0] + "." + .[1] + ".reply.json"),
             ctl_args: (if .[3] != "" then .[3] else null end),
             ctl_file: (if .[3] != "" then .[0] + "." + .[1] + ".ctl.txt" else null end)}]}' \
    < "$INDEX" > "$OUT/index.json"
log "decoding"
cp "$WORK/links.pcap" "$OUT/links.pcap"
cp "$WORK/beacons.pcap" "$OUT/beacons.pcap"
"$PY" "$ROOT/tests/tools/linkdump05.py" "$OUT/links.pcap" --json \
    --password "$P2=$PASSWORD" --keys "$OUT/index.json" > "$OUT/links.json"
"$PY" "$ROOT/tests/tools/linkdump05.py" "$OUT/links.pcap" --password "$P2=$PASSWORD" \
    --keys "$OUT/index.json" --frames 40 > "$OUT/links.txt"
"$PY" "$ROOT/tests/tools/linkdump05.py" --beacons "$OUT/beacons.pcap" --password "$PASSWORD" --json > "$OUT/beacons.json"
log "done: $OUT"
