#!/usr/bin/env bash
# A/B of fossa builds on one mount workload at a time, interleaved (A, B, A, B, ...): for
# checking that a change helps before a full bench/mount.sh run. Prints one line per run.
#
#   bench/ab.sh [--runs N] [--size S] [--workload seqwrite|seqread|randwrite|syncwrite] BIN_A BIN_B [BIN_C ...]
#
# seqwrite: fio 1 GiB (--size, in fio's units: 8G for a large file), bs=1M, end_fsync, fresh
# random data per write (as bench/mount.sh);
# seqread: the same file read after unmount + drop_caches + remount; randwrite: fio 4 KiB
# random writes, QD1, 5 s, into a 256 MiB file; syncwrite: the same with an fsync after every
# write (a database's pattern), into a file of --size. Reports MiB/s or IOPS, the daemon's CPU
# seconds and the whole machine's busy CPU seconds (/proc/stat) for the timed step.
set -euo pipefail
RUNS=3
SIZE=1024M
WORKLOAD=seqwrite
while (($#)); do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --workload) WORKLOAD=$2; shift 2 ;;
        -*) echo "usage: $0 [--runs N] [--size S] [--workload seqwrite|seqread|randwrite|syncwrite] BIN_A BIN_B ..." >&2; exit 2 ;;
        *) break ;;
    esac
done
(($# >= 2)) || { echo "usage: $0 [--runs N] [--workload W] BIN_A BIN_B ..." >&2; exit 2; }
command -v fio >/dev/null && command -v jq >/dev/null || { echo "ab.sh: needs fio and jq" >&2; exit 1; }

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
W=""
cleanup() {
    if [[ -n $W ]]; then
        fusermount3 -uz "$W/mnt" 2>/dev/null || true
        rm -rf "$W"
    fi
}
trap cleanup EXIT
mount_fossa() { # BIN
    "$1" --home "$W/home" mount "$W/mnt" --key-file "$W/key" --daemon >/dev/null
    pgrep -f -- "$W/mnt" | head -1
}
fio_json() { fio --ioengine=psync --output-format=json "$@"; }

for r in $(seq 1 "$RUNS"); do
    for bin in "$@"; do
        W=$(mktemp -d /var/tmp/fossa-ab.XXXXXX)
        mkdir -p "$W/mnt"
        "$bin" --home "$W/home" init --key-file "$W/key" >/dev/null 2>&1
        pid=$(mount_fossa "$bin")
        f="$W/mnt/f.bin"
        case $WORKLOAD in
            seqread)
                fio_json --name=prep --filename="$f" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 >/dev/null
                "$bin" --home "$W/home" umount "$W/mnt" >/dev/null
                sync; echo 3 > /proc/sys/vm/drop_caches
                pid=$(mount_fossa "$bin") ;;
            randwrite)
                fio_json --name=prep --filename="$f" --rw=write --bs=1M --size=256M >/dev/null ;;
            syncwrite)
                fio_json --name=prep --filename="$f" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 \
                    --refill_buffers >/dev/null ;;
            seqwrite) sync ;;
            *) echo "ab.sh: unknown workload $WORKLOAD" >&2; exit 2 ;;
        esac
        c0=$(ticks "$pid"); s0=$(busy)
        case $WORKLOAD in
            seqwrite) v=$(fio_json --name=w --filename="$f" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 \
                --refill_buffers | jq '.jobs[0].write.bw_bytes/1048576|floor') unit=MiB/s ;;
            seqread) v=$(fio_json --name=r --filename="$f" --rw=read --bs=1M --size="$SIZE" \
                | jq '.jobs[0].read.bw_bytes/1048576|floor') unit=MiB/s ;;
            randwrite) v=$(fio_json --name=w --filename="$f" --rw=randwrite --bs=4k --size=256M --runtime=5 \
                --time_based | jq '.jobs[0].write.iops|floor') unit=IOPS ;;
            syncwrite) v=$(fio_json --name=w --filename="$f" --rw=randwrite --bs=4k --size="$SIZE" --fsync=1 \
                --runtime=5 --time_based --refill_buffers | jq '.jobs[0].write.iops|floor') unit=IOPS ;;
        esac
        c1=$(ticks "$pid"); s1=$(busy)
        printf '%-28s run %d %s: %7d %s  daemon %5.2f CPU-s  machine %5.2f CPU-s\n' "$(basename "$bin")" "$r" \
            "$WORKLOAD" "$v" "$unit" "$(bc -l <<<"($c1-$c0)/100")" "$(bc -l <<<"($s1-$s0)/100")"
        "$bin" --home "$W/home" umount "$W/mnt" >/dev/null 2>&1 || fusermount3 -uz "$W/mnt"
        rm -rf "$W"; W=""
    done
done
