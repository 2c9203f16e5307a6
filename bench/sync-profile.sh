#!/usr/bin/env bash
# Initial-sync profile: device A writes N MiB (default 512), B pulls it; prints the time from
# the end of A's fsync until B holds every block, and each daemon's CPU ticks (1/100 s).
#   N=512 [FOSSA=path/to/fossa] [PERF=1] [BLOG=fossa=debug] bench/sync-profile.sh
# PERF=1 records both daemons with perf into /tmp/prof/{a,b}.data; BLOG sets B's RUST_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."
FOSSA=${FOSSA:-target/release/fossa}
export FOSSA_DISCOVERY=127.255.255.255
N=${N:-512}
W=$(mktemp -d /var/tmp/fprof.XXXX)
PA=127.0.0.1:24201; PB=127.0.0.2:24202
fa() { "$FOSSA" --home "$W/A/home" --key-file "$W/A/key" "$@"; }
fb() { "$FOSSA" --home "$W/B/home" --key-file "$W/B/key" "$@"; }
cleanup() { for d in A B; do mountpoint -q "$W/$d/mnt" && { fusermount3 -uz "$W/$d/mnt" || true; }; done; pkill -f "fprof" || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W"/{A,B}/{home,mnt} "${PROF_DIR:-/tmp/prof}"
head -c $((N<<20)) /dev/urandom > "$W/src.bin"
fa init --name a >/dev/null
fa mount "$W/A/mnt" --daemon --listen $PA --peer $PB
code=$(fa invite)
RUST_LOG=${BLOG:-info} fb join "$code" "$W/B/mnt" --name b --listen $PB >/dev/null
# No child process per poll (a python or jq costs ~20 ms of CPU, taken from the daemons).
st() { local j re="\"$2\": *([^,}]+)"; j=$("f${1,,}" status --json); [[ $j =~ $re ]] && echo "${BASH_REMATCH[1]}"; }
until [[ $(st B connected) != "[]" ]]; do sleep 0.05; done
dd if="$W/src.bin" of="$W/A/mnt/big.bin" bs=1M conv=fsync status=none
pa=$(pgrep -f "home $W/A/home.*mount" | head -1); pb=$(pgrep -f "home $W/B/home.*mount" | head -1)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
ca=$(cpu $pa); cb=$(cpu $pb)
t0=$(date +%s.%N)
if [[ ${PERF:-0} == 1 ]]; then perf record -F 999 -g -o "${PROF_DIR:-/tmp/prof}/b.data" -p $pb 2>/dev/null & PP=$!; perf record -F 999 -g -o "${PROF_DIR:-/tmp/prof}/a.data" -p $pa 2>/dev/null & PQ=$!; fi
until [[ -e "$W/B/mnt/big.bin" && $(st B blocks_missing) == 0 ]]; do sleep 0.05; done
t1=$(date +%s.%N)
if [[ ${PERF:-0} == 1 ]]; then kill -INT $PP $PQ; wait $PP $PQ 2>/dev/null || true; fi
echo "sync ${N} MiB: $(python3 -c "print(round($t1-$t0,2))") s; cpu A $(( $(cpu $pa)-ca )) ticks, B $(( $(cpu $pb)-cb )) ticks"
cp "$W/B/home/data/fossa.log" "${PROF_DIR:-/tmp/prof}/b.log" 2>/dev/null || cp $(find "$W/B/home" -name fossa.log | head -1) "${PROF_DIR:-/tmp/prof}/b.log"; cmp "$W/src.bin" "$W/B/mnt/big.bin" && echo identical
