#!/usr/bin/env bash
# Two MPI ranks in two network namespaces joined by veth pairs (through a bridge), so expert parallelism runs over
# TCP (not shared memory), optionally through a rate-limited link (tbf on both ends) or an emulated
# link with a one-way delay.
#   scripts/ep-netns.sh [--rate unlimited|10gbit|1gbit|...] [--delay 0|Nus|Nms] [--check] -- CMD ARGS...
# runs `mpirun -np 1 ip netns exec A CMD ARGS : -np 1 ip netns exec B CMD ARGS` with the TCP BTL
# bound to the veth pair, then tears everything down (trap), whatever happened.
#   --delay  rank-to-rank traffic goes instead over a tun device in each namespace (10.77.1.1 and
#            .2/30), joined by scripts/linkemu.c (built here with `cc -O2`): each packet arrives after
#            its serialisation at --rate, behind those queued, plus the delay; the queue drops beyond
#            1000 packets or 4 MiB. The rate is then the emulator's (no tbf). Needs no netem qdisc,
#            which many kernels (e.g. Firecracker guests) lack. Its statistics (packets, drops, how
#            late it wrote them) are printed on stderr at the end.
#   --check  set up and tear down only: exit 0 when this machine can do it.
# Exit 77 with "ep-netns: skipped: REASON" on stderr when it cannot: not root, no `ip`/`tc`/`mpirun`,
# network namespaces, veth or the tbf qdisc unavailable; with --delay, no /dev/net/tun or `cc`, or the
# emulator cannot attach. Otherwise mpirun's exit code.
set -uo pipefail
RATE=unlimited
DELAY=
CHECK=0
usage="usage: scripts/ep-netns.sh [--rate R] [--delay D] [--check] -- CMD ..."
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE="${2:-}"; shift 2 || shift ;;
    --delay) DELAY="${2:-}"; shift 2 || shift ;;
    --check) CHECK=1; shift ;;
    --) shift; break ;;
    *) echo "ep-netns: unknown option $1 ($usage)" >&2; exit 2 ;;
  esac
done
[ "$CHECK" = 1 ] || [ $# -gt 0 ] || { echo "ep-netns: no command given" >&2; exit 2; }
# tbf's bucket: about 1 ms at the rate (a bigger one lets whole calibration messages through at
# memory speed after an idle gap), but at least 256 KiB so a GSO segment (64 KiB on veth) fits.
BURST=256kb
case "$RATE" in
  unlimited) ;;
  *gbit) n=${RATE%gbit}; [[ "$n" =~ ^[0-9]+$ ]] || { echo "ep-netns: --rate: Ngbit, Nmbit or unlimited, got $RATE" >&2; exit 2; }
    [ $((n * 125)) -gt 256 ] && BURST=$((n * 125))kb ;;
  *mbit) [[ "${RATE%mbit}" =~ ^[0-9]+$ ]] || { echo "ep-netns: --rate: Ngbit, Nmbit or unlimited, got $RATE" >&2; exit 2; } ;;
  *) echo "ep-netns: --rate: Ngbit, Nmbit or unlimited, got $RATE" >&2; exit 2 ;;
esac
# The emulator takes nanoseconds and bits per second.
case "$DELAY" in
  "") ;;
  0) DELAY_NS=0 ;;
  *us) DELAY_NS=$((${DELAY%us} * 1000)) ;;
  *ms) DELAY_NS=$((${DELAY%ms} * 1000000)) ;;
  *) DELAY_NS=x ;;
esac 2>/dev/null
if [ -n "$DELAY" ]; then
  [[ "${DELAY_NS:-x}" =~ ^[0-9]+$ ]] || { echo "ep-netns: --delay: 0, Nus or Nms, got $DELAY" >&2; exit 2; }
  case "$RATE" in
    unlimited) RATE_BPS=0 ;;
    *gbit) RATE_BPS=$((${RATE%gbit} * 1000000000)) ;;
    *mbit) RATE_BPS=$((${RATE%mbit} * 1000000)) ;;
  esac
fi
# Bad usage is refused (exit 2) before asking whether this machine can run it (exit 77).
skip() { echo "ep-netns: skipped: $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces and veth)"
for c in ip tc mpirun; do command -v "$c" >/dev/null || skip "'$c' not found"; done
if [ -n "$DELAY" ]; then
  [ -c /dev/net/tun ] || skip "--delay needs /dev/net/tun (the tun driver)"
  command -v cc >/dev/null || skip "--delay needs a C compiler ('cc' not found) to build scripts/linkemu.c"
fi

# Names unique per run (interface names are at most 15 characters). Layout: a bridge in this
# namespace with one veth pair to each rank's namespace. The ranks talk to each other through it,
# and reach mpirun's PMIx server (TCP, in this namespace) through it too.
A="moecap-epA-$$"
B="moecap-epB-$$"
BR="mcepbr$$"
NET=10.213.$(($$ % 250))
TUN=10.77.1
EMU_DIR=
EMU_PID=
MPI_PID=
cleanup() {
  if [ -n "$MPI_PID" ]; then # interrupted: end the ranks before their namespaces go
    kill -TERM "$MPI_PID" 2>/dev/null
    wait "$MPI_PID" 2>/dev/null
  fi
  if [ -n "$EMU_PID" ]; then # its statistics (packets, drops, lateness) are the run's last lines
    kill -TERM "$EMU_PID" 2>/dev/null
    wait "$EMU_PID" 2>/dev/null
    cat "$EMU_DIR/emu.log" >&2
  fi
  [ -n "$EMU_DIR" ] && rm -rf "$EMU_DIR"
  ip netns del "$A" 2>/dev/null # deleting a namespace deletes its veth pair and tun device
  ip netns del "$B" 2>/dev/null
  ip link del "$BR" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$A" 2>/dev/null && ip netns add "$B" 2>/dev/null || skip "cannot create network namespaces (ip netns add)"
ip link add "$BR" type bridge 2>/dev/null && ip addr add "$NET.254/24" dev "$BR" && ip link set "$BR" up ||
  skip "cannot create a bridge"
i=0
for ns in "$A" "$B"; do
  i=$((i + 1))
  ip link add "mcepv$i-$$" type veth peer name "mcepp$i-$$" 2>/dev/null || skip "cannot create a veth pair"
  ip link set "mcepv$i-$$" netns "$ns" && ip link set "mcepp$i-$$" master "$BR" && ip link set "mcepp$i-$$" up &&
    ip -n "$ns" addr add "$NET.$i/24" dev "mcepv$i-$$" && ip -n "$ns" link set lo up &&
    ip -n "$ns" link set "mcepv$i-$$" up || skip "cannot configure the veth pair of $ns"
  if [ "$RATE" != unlimited ] && [ -z "$DELAY" ]; then
    ip netns exec "$ns" tc qdisc add dev "mcepv$i-$$" root tbf rate "$RATE" burst "$BURST" latency 20ms 2>/dev/null ||
      skip "the tbf qdisc is unavailable (tc qdisc add ... tbf rate $RATE burst $BURST)"
  fi
done

# The emulated link: a tun device in each namespace (a large MTU, as a jumbo-frame link, so fewer
# packets cross user space), then the emulator attached to both; a tun device has carrier once attached.
start_link_emulator() {
  EMU_DIR=$(mktemp -d) || skip "cannot create a temporary directory for the link emulator"
  cc -O2 -o "$EMU_DIR/linkemu" "$(dirname "$0")/linkemu.c" 2>"$EMU_DIR/cc.log" ||
    skip "cannot build scripts/linkemu.c: $(head -c 500 "$EMU_DIR/cc.log")"
  i=0
  for ns in "$A" "$B"; do
    i=$((i + 1))
    ip -n "$ns" tuntap add dev "mcept$i-$$" mode tun 2>/dev/null && ip -n "$ns" link set "mcept$i-$$" mtu 9000 &&
      ip -n "$ns" addr add "$TUN.$i/30" dev "mcept$i-$$" && ip -n "$ns" link set "mcept$i-$$" up ||
      skip "cannot create a tun device in $ns (ip tuntap add mode tun)"
  done
  "$EMU_DIR/linkemu" "/run/netns/$A" "mcept1-$$" "/run/netns/$B" "mcept2-$$" "$DELAY_NS" "$RATE_BPS" \
    1000 4194304 2>"$EMU_DIR/emu.log" &
  EMU_PID=$!
  for _ in $(seq 50); do
    grep -q LOWER_UP <<<"$(ip -n "$A" link show "mcept1-$$")" && grep -q LOWER_UP <<<"$(ip -n "$B" link show "mcept2-$$")" &&
      return 0
    kill -0 "$EMU_PID" 2>/dev/null || { EMU_PID=; skip "the link emulator failed: $(head -c 500 "$EMU_DIR/emu.log")"; }
    sleep 0.1
  done
  skip "the link emulator did not attach to the tun devices within 5 s"
}
LINK="veth pair, link rate $RATE" BTL_NET="$NET.0/24" PARTS="tbf"
if [ -n "$DELAY" ]; then
  start_link_emulator
  LINK="tun devices $TUN.1 and $TUN.2 joined by scripts/linkemu.c, link rate $RATE, one-way delay $DELAY (emulated)"
  BTL_NET="$TUN.0/30" PARTS="tun devices, link emulator"
fi
[ "$CHECK" = 1 ] && { echo "ep-netns: ok (namespaces, veth, $PARTS)"; exit 0; }

# mpirun's PMIx server listens on the bridge (by default only on loopback, which the namespaces
# cannot reach); rank to rank goes over the TCP BTL on the veths (or the emulated link) only, no shared memory.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export PMIX_MCA_ptl_tcp_if_include="$BR" PMIX_MCA_ptl_tcp_remote_connections=1
echo "ep-netns: rank 0 in $A ($NET.1), rank 1 in $B ($NET.2), $LINK" >&2
# In the background, so that INT/TERM run the traps at once rather than when mpirun ends.
mpirun --oversubscribe --mca btl tcp,self --mca btl_tcp_if_include "$BTL_NET" --mca oob_tcp_if_include "$BR" \
  -np 1 ip netns exec "$A" "$@" : -np 1 ip netns exec "$B" "$@" 0<&0 &
MPI_PID=$!
wait "$MPI_PID"
rc=$?
MPI_PID=
exit $rc
