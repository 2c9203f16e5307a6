#!/usr/bin/env bash
# Swarm benchmark of redundancy repair (docs/redundancy.md): one device and 19 `fossa keeper`
# storage peers on 127.0.0.x. Level 3 on a directory of random files; 30% of the 20 nodes (6
# keepers) are SIGKILLed at once with their data directories; every file must read back
# identical, and the time until every block is again on >= 3 live nodes and the bytes copied
# are reported. Then 6 fresh keepers are added, the level raised to 4, and 50% (10 keepers) are
# killed at once: same checks. Every wait is bounded.
#
#   bench/swarm.sh [--fossa-bin PATH] [--files N] [--file-kib K] [--keep]
set -euo pipefail
export FOSSA_DISCOVERY=127.255.255.255 # LAN discovery stays on loopback
cd "$(dirname "$0")/.."

FILES=40
FILE_KIB=256
KEEP=0
FOSSA=${FOSSA_BIN:-}
TIMEOUT=180
while (($#)); do
    case $1 in
        --fossa-bin) FOSSA=$2; shift 2 ;;
        --files) FILES=$2; shift 2 ;;
        --file-kib) FILE_KIB=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        *) echo "usage: $0 [--fossa-bin PATH] [--files N] [--file-kib K] [--keep]" >&2; exit 2 ;;
    esac
done
if [[ -z $FOSSA ]]; then
    for f in "${CARGO_TARGET_DIR:-target}/release/fossa" "${CARGO_TARGET_DIR:-target}/debug/fossa" target/release/fossa target/debug/fossa; do
        [[ -x $f ]] && FOSSA=$f && break
    done
fi
[[ -n $FOSSA && -x $FOSSA ]] || { echo "swarm.sh: no fossa binary (--fossa-bin)" >&2; exit 1; }
FOSSA=$(realpath "$FOSSA")

export FOSSA_REPAIR_PERIOD_MS=1000 FOSSA_REPAIR_GRACE_MS=3000 FOSSA_AUDIT_INTERVAL_MS=600000
PORT=25300
W=$(mktemp -d /tmp/fossa-swarm.XXXXXX)
declare -A KPID
cleanup() {
    for p in "${KPID[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    timeout 40 "$FOSSA" "${A[@]}" umount "$W/a/mnt" >/dev/null 2>&1 || true
    fusermount3 -uz "$W/a/mnt" 2>/dev/null || true
    ((KEEP)) || rm -rf "$W"
}
trap cleanup EXIT

A=(--home "$W/a/home" --key-file "$W/a/key")
mkdir -p "$W/a/home" "$W/a/mnt"
"$FOSSA" "${A[@]}" init --name dev-a >/dev/null
"$FOSSA" "${A[@]}" mount "$W/a/mnt" --daemon --listen "127.0.0.1:$PORT"
MNT=$W/a/mnt
mkdir "$MNT/data"
for i in $(seq 1 "$FILES"); do
    head -c $((FILE_KIB * 1024)) /dev/urandom >"$MNT/data/f$i"
done
sync
(cd "$MNT/data" && sha256sum f*) >"$W/sums"

start_keeper() { # N
    local n=$1 code
    code=$("$FOSSA" "${A[@]}" invite --keeper --expires 10m)
    mkdir -p "$W/k$n"
    "$FOSSA" --home "$W/k$n" keeper "$code" --quota 1G --listen "127.0.0.$((10 + n)):$PORT" \
        >"$W/k$n.log" 2>&1 &
    KPID[$n]=$!
}
status() { "$FOSSA" "${A[@]}" status --json; }
at_level() { # LEVEL
    status | jq -e --argjson l "$1" '.redundancy.dirs[] | select(.path=="data")
        | (.copies_min // 0) >= $l and .blocks_under_level == 0' >/dev/null
}
wait_level() { # LEVEL -> prints seconds
    local t0 now
    t0=$(date +%s.%N)
    until at_level "$1"; do
        now=$(date +%s.%N)
        if (($(echo "$now - $t0 > $TIMEOUT" | bc))); then
            echo "swarm.sh: level $1 not reached in ${TIMEOUT}s" >&2
            status | jq .redundancy >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "$(date +%s.%N) - $t0" | bc
}
copied() { status | jq .redundancy.bytes_copied; }
kill_random() { # COUNT: kills, then waits until the device has seen every victim go
    local victims ids=()
    victims=$(printf '%s\n' "${!KPID[@]}" | shuf -n "$1")
    for v in $victims; do ids+=("$(jq -r .device_id "$W/k$v/data/keeper-status.json")"); done
    for v in $victims; do
        kill -9 "${KPID[$v]}"; wait "${KPID[$v]}" 2>/dev/null || true
        unset "KPID[$v]"
        rm -rf "$W/k$v"
    done
    local t0=$SECONDS
    while status | jq -e --args '.sync.connected as $c | any($ARGS.positional[]; . as $v | $c | index($v))' "${ids[@]}" >/dev/null; do
        ((SECONDS - t0 < TIMEOUT)) || { echo "swarm.sh: victims still connected" >&2; exit 1; }
        sleep 0.2
    done
    DETECT=$((SECONDS - t0))
}
# Waits (bounded) until 19 keepers are connected to the device.
wait_connected() {
    local t0=$SECONDS
    until (($(status | jq '.sync.connected | length') >= 19)); do
        ((SECONDS - t0 < TIMEOUT)) || { echo "swarm.sh: keepers did not connect" >&2; exit 1; }
        sleep 0.2
    done
}

check_read() {
    (cd "$MNT/data" && sha256sum -c --quiet "$W/sums") || { echo "swarm.sh: unreadable or wrong files" >&2; exit 1; }
}

for n in $(seq 1 19); do start_keeper "$n"; done
# Level 3 only once every keeper is connected, so the first copies spread over all of them.
wait_connected
"$FOSSA" "${A[@]}" redundancy "$MNT/data" 3 >/dev/null
t_place=$(wait_level 3)
blocks=$(status | jq '.redundancy.dirs[] | select(.path=="data") | .blocks')
b0=$(copied)
k0=$(date +%s.%N)
kill_random 6
check_read
wait_level 3 >/dev/null
t1=$(echo "$(date +%s.%N) - $k0" | bc)
b1=$(copied)
d1=$DETECT
echo "| step | nodes | killed | level | blocks | loss seen after s | level restored after s | MiB copied |"
echo "|---|---|---|---|---|---|---|---|"
printf '| initial placement | 20 | 0 | 3 | %s | - | %.1f | %.2f |\n' "$blocks" "$t_place" "$(echo "$b0/1048576" | bc -l)"
printf '| 30%% killed | 20 | 6 | 3 | %s | %s | %.1f | %.2f |\n' "$blocks" "$d1" "$t1" "$(echo "($b1-$b0)/1048576" | bc -l)"

for n in $(seq 20 25); do start_keeper "$n"; done
wait_connected
"$FOSSA" "${A[@]}" redundancy "$MNT/data" 4 >/dev/null
t_raise=$(wait_level 4)
b2=$(copied)
printf '| raise to 4 | 20 | 0 | 4 | %s | - | %.1f | %.2f |\n' "$blocks" "$t_raise" "$(echo "($b2-$b1)/1048576" | bc -l)"
k0=$(date +%s.%N)
kill_random 10
check_read
wait_level 4 >/dev/null
t2=$(echo "$(date +%s.%N) - $k0" | bc)
b3=$(copied)
printf '| 50%% killed | 20 | 10 | 4 | %s | %s | %.1f | %.2f |\n' "$blocks" "$DETECT" "$t2" "$(echo "($b3-$b2)/1048576" | bc -l)"
echo "(loss seen: until the device's sessions with the victims closed (QUIC idle timeout, 10 s: net/src/tls.rs IDLE_TIMEOUT); level restored: from the kill until every block is on >= level live nodes; period ${FOSSA_REPAIR_PERIOD_MS} ms, grace ${FOSSA_REPAIR_GRACE_MS} ms)"
