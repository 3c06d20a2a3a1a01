#!/usr/bin/env bash
# Two MPI ranks in two network namespaces joined by veth pairs (through a bridge), so expert parallelism runs over
# TCP (not shared memory), optionally through a rate-limited link (tbf on both ends).
#   scripts/ep-netns.sh [--rate unlimited|10gbit|1gbit|...] [--check] -- CMD ARGS...
# runs `mpirun -np 1 ip netns exec A CMD ARGS : -np 1 ip netns exec B CMD ARGS` with the TCP BTL
# bound to the veth pair, then tears everything down (trap), whatever happened.
#   --check  set up and tear down only: exit 0 when this machine can do it.
# Exit 77 with "ep-netns: skipped: REASON" on stderr when it cannot: not root, no `ip`/`tc`/`mpirun`,
# network namespaces, veth or the tbf qdisc unavailable. Otherwise mpirun's exit code.
# Only a rate limit: added latency needs the netem qdisc, which many kernels (e.g. Firecracker
# guests) lack, and this script does not fake it.
set -uo pipefail
RATE=unlimited
CHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE="${2:-}"; shift 2 || shift ;;
    --check) CHECK=1; shift ;;
    --) shift; break ;;
    *) echo "ep-netns: unknown option $1 (usage: scripts/ep-netns.sh [--rate R] [--check] -- CMD ...)" >&2; exit 2 ;;
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
# Bad usage is refused (exit 2) before asking whether this machine can run it (exit 77).
skip() { echo "ep-netns: skipped: $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces and veth)"
for c in ip tc mpirun; do command -v "$c" >/dev/null || skip "'$c' not found"; done

# Names unique per run (interface names are at most 15 characters). Layout: a bridge in this
# namespace with one veth pair to each rank's namespace. The ranks talk to each other through it,
# and reach mpirun's PMIx server (TCP, in this namespace) through it too.
A="moecap-epA-$$"
B="moecap-epB-$$"
BR="mcepbr$$"
NET=10.213.$(($$ % 250))
cleanup() {
  ip netns del "$A" 2>/dev/null # deleting a namespace deletes its veth pair
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
  if [ "$RATE" != unlimited ]; then
    ip netns exec "$ns" tc qdisc add dev "mcepv$i-$$" root tbf rate "$RATE" burst "$BURST" latency 20ms 2>/dev/null ||
      skip "the tbf qdisc is unavailable (tc qdisc add ... tbf rate $RATE burst $BURST)"
  fi
done
[ "$CHECK" = 1 ] && { echo "ep-netns: ok (namespaces, veth, tbf)"; exit 0; }

# mpirun's PMIx server listens on the bridge (by default only on loopback, which the namespaces
# cannot reach); rank to rank goes over the TCP BTL on the veths only (no shared memory).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export PMIX_MCA_ptl_tcp_if_include="$BR" PMIX_MCA_ptl_tcp_remote_connections=1
echo "ep-netns: rank 0 in $A ($NET.1), rank 1 in $B ($NET.2), link rate $RATE" >&2
mpirun --oversubscribe --mca btl tcp,self --mca btl_tcp_if_include "$NET.0/24" --mca oob_tcp_if_include "$BR" \
  -np 1 ip netns exec "$A" "$@" : -np 1 ip netns exec "$B" "$@"
