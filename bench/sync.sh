#!/usr/bin/env bash
# Sync benchmark: two fossa devices on loopback against rsync to an rsync daemon on 127.0.0.1,
# same data, same run. Prints a Markdown table (and JSON with --json). See bench/README.md.
#
#   bench/sync.sh [--size-mib N] [--json] [--fossa-bin PATH] [--floor-bin PATH] [--keep]
#
# Steps: (a) initial sync of N MiB (default 1024) of random data A→B: from the end of A's fsync
# until B holds every block (`fossa status --json`: sync.blocks_missing = 0, confirmed by
# `fossa status --json FILE`: local), vs `rsync -a`, and
# vs the raw QUIC floor (`net/examples/quic_floor.rs`: the same N MiB over fossa's QUIC and TLS
# setup, no hashing, no storage); each best of 2 (fossa's second sample is a second file of
# other random data), because the first large write of a run pays for fresh memory on this VM;
# (b) 100 bytes inserted near the start of that file (whole file rewritten on A): from A's
# fsync until B reads the new bytes, and bytes on the wire once B holds every block, vs
# `rsync -a --no-whole-file --stats`; (c) rename of the file: bytes on the wire, vs
# `rsync -a --fuzzy --delete-after --stats`.
set -euo pipefail
cd "$(dirname "$0")/.."
# LAN discovery stays on loopback: the benchmark sends to no other address.
export FOSSA_DISCOVERY=127.255.255.255

SIZE_MIB=1024
JSON=0
KEEP=0
FOSSA=${FOSSA_BIN:-}
FLOOR=${FLOOR_BIN:-}
USAGE="usage: $0 [--size-mib N] [--json] [--fossa-bin PATH] [--floor-bin PATH] [--keep]"
while (($#)); do
    case $1 in
        --size-mib) SIZE_MIB=$2; shift 2 ;;
        --json) JSON=1; shift ;;
        --fossa-bin) FOSSA=$2; shift 2 ;;
        --floor-bin) FLOOR=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        *) echo "$USAGE" >&2; exit 2 ;;
    esac
done
if [[ -z $FOSSA ]]; then
    for f in target/release/fossa "${CARGO_TARGET_DIR:-target}/release/fossa"; do
        [[ -x $f ]] && FOSSA=$f && break
    done
fi
[[ -n $FOSSA && -x $FOSSA ]] || { echo "sync.sh: no fossa binary (build with cargo build --release -p fossa-mountd, or --fossa-bin)" >&2; exit 1; }
FOSSA=$(realpath "$FOSSA")
# The floor program: given, next to the fossa binary, or built.
if [[ -z $FLOOR ]]; then
    FLOOR=$(dirname "$FOSSA")/examples/quic_floor
    if [[ ! -x $FLOOR ]]; then
        echo "sync.sh: building the QUIC floor (cargo build --release --example quic_floor -p fossa-net)" >&2
        cargo build --release --example quic_floor -p fossa-net >&2
        FLOOR=${CARGO_TARGET_DIR:-target}/release/examples/quic_floor
    fi
fi
[[ -x $FLOOR ]] || { echo "sync.sh: no QUIC floor binary at $FLOOR (--floor-bin)" >&2; exit 1; }
FLOOR=$(realpath "$FLOOR")
if ! command -v rsync >/dev/null || ! command -v jq >/dev/null; then
    echo "sync.sh: installing rsync and jq" >&2
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y rsync jq >/dev/null
fi

PA=127.0.0.1:24101
PB=127.0.0.2:24102
RSYNC_PORT=24873
W=$(mktemp -d /var/tmp/fossa-sync-bench.XXXXXX)
log() { echo "sync.sh: $*" >&2; }
cleanup() {
    for d in A B; do
        mountpoint -q "$W/$d/mnt" && { "$FOSSA" --home "$W/$d/home" umount "$W/$d/mnt" >/dev/null 2>&1 || fusermount3 -uz "$W/$d/mnt"; }
    done
    [[ -f $W/rsyncd.pid ]] && kill "$(cat "$W/rsyncd.pid")" 2>/dev/null
    ((KEEP)) || rm -rf "$W"
}
trap cleanup EXIT

fa() { "$FOSSA" --home "$W/A/home" --key-file "$W/A/key" "$@"; }
fb() { "$FOSSA" --home "$W/B/home" --key-file "$W/B/key" "$@"; }
now() { date +%s.%N; }
# stat DEVICE KEY: a number from the sync object of `fossa status --json`.
# Read with a bash regex, no child process: the poll runs every 50 ms on the same 2 cores as
# the daemons it measures, and a jq per poll cost ~20 ms of CPU (40% of a core at 20 Hz).
# The keys read here occur once in the status.
stat() {
    local json re="\"$2\": *([0-9]+)"
    json=$("f${1,,}" status --json) || return 1
    [[ $json =~ $re ]] || { log "no $2 in fossa status"; return 1; }
    echo "${BASH_REMATCH[1]}"
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 50 ms.
wait_for() {
    local limit=$1 what=$2; shift 2
    local end=$(( $(date +%s) + limit ))
    until "$@"; do
        (( $(date +%s) < end )) || { log "timed out waiting for $what"; exit 1; }
        sleep 0.05
    done
}
# b_complete NAME: B holds every block of NAME. `blocks_missing` is 0 for a moment after a new
# file appears on B, before B's pull has walked it, so a 0 is confirmed by the file's own
# status (a walk of its tree, done only then).
b_complete() {
    [[ $(stat B blocks_missing) == 0 ]] && fb status --json "$W/B/mnt/$1" | grep -q '"local": true'
}

# big2.bin (other random data: the same would dedup to nothing) is fossa's second sample of
# (a); it stays out of src/, which rsync copies, and (b) and (c) touch big.bin only.
mkdir -p "$W"/{A,B}/{home,mnt} "$W/src" "$W/src2" "$W/dst"
log "work dir $W; generating 2 × ${SIZE_MIB} MiB of random data"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/src/big.bin"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/src2/big2.bin"

log "setting up devices A ($PA) and B ($PB)"
fa init --name bench-a >/dev/null
fa mount "$W/A/mnt" --daemon --listen "$PA" --peer "$PB"
code=$(fa invite)
fb join "$code" "$W/B/mnt" --name bench-b --listen "$PB" >/dev/null
b_connected() { fb status --json | python3 -c "import json,sys; sys.exit(0 if json.load(sys.stdin)['sync']['connected'] else 1)"; }
wait_for 30 "B to connect" b_connected

cat > "$W/rsyncd.conf" <<CONF
pid file = $W/rsyncd.pid
use chroot = no
[dst]
    path = $W/dst
    read only = no
    uid = root
    gid = root
CONF
rsync --daemon --config="$W/rsyncd.conf" --address=127.0.0.1 --port=$RSYNC_PORT
RS=rsync://127.0.0.1:$RSYNC_PORT/dst/
wait_for 10 "the rsync daemon" bash -c "rsync $RS >/dev/null 2>&1"

# Every timed step starts with no dirty data on the disk: the step before it (1 GiB written by
# fossa's store or by rsync) is otherwise still being written back, and every fsync (fossa's
# index commits) waits for that.
quiesce() { sync; }

# rsync_run OUTVAR ARGS...: runs rsync with --stats, sets OUTVAR_s (seconds) and OUTVAR_b (bytes).
rsync_run() {
    local var=$1; shift
    local t0 t1 out
    quiesce
    t0=$(now)
    out=$(rsync --stats "$@")
    t1=$(now)
    printf -v "${var}_s" '%s' "$(python3 -c "print($t1-$t0)")"
    printf -v "${var}_b" '%s' "$(awk -F: '/Total bytes (sent|received)/ {gsub(/[ ,]/,"",$2); s+=$2} END {print s}' <<<"$out")"
}
# Bytes on the wire in both directions, seen from A (its only peer is B), like rsync's
# client-side "Total bytes sent" + "Total bytes received".
wire() { echo $(( $(stat A bytes_sent) + $(stat A bytes_received) )); }

# fossa_initial OUTVAR FILE: writes FILE (new) into A, sets OUTVAR_s (from the end of A's fsync
# until B holds every block) and OUTVAR_b (bytes on the wire meanwhile).
fossa_initial() {
    local var=$1 src=$2 name w0 t0
    name=$(basename "$src")
    w0=$(wire)
    quiesce
    dd if="$src" of="$W/A/mnt/$name" bs=1M conv=fsync status=none
    t0=$(now)
    wait_for 1800 "B to hold every block" bash -c "[[ -e '$W/B/mnt/$name' ]]"
    wait_for 1800 "B to hold every block" b_complete "$name"
    printf -v "${var}_s" '%s' "$(python3 -c "print($(now)-$t0)")"
    printf -v "${var}_b" '%s' "$(( $(wire) - w0 ))"
    cmp -s "$src" "$W/B/mnt/$name" || { log "B's copy of $name differs"; exit 1; }
}
# floor_run OUTVAR: the raw QUIC transfer of the same size; sets OUTVAR_s and OUTVAR_b (UDP
# payload sent + received by its client).
floor_run() {
    local var=$1 out
    quiesce
    out=$("$FLOOR" --size-mib "$SIZE_MIB" --json)
    printf -v "${var}_s" '%s' "$(jq -r .seconds <<<"$out")"
    printf -v "${var}_b" '%s' "$(jq -r .wire_bytes <<<"$out")"
}

# (a) initial sync, twice for each
log "(a) initial sync of ${SIZE_MIB} MiB, twice each: fossa, rsync, raw QUIC"
fossa_initial a1 "$W/src/big.bin"
fossa_initial a2 "$W/src2/big2.bin"
rsync_run ra1 -a "$W/src/" "$RS"
rm -f "$W/dst/big.bin"
rsync_run ra2 -a "$W/src/" "$RS"
floor_run fl1
floor_run fl2

# (b) 100 bytes inserted near the start
log "(b) 100 bytes inserted at offset 4096"
python3 - "$W/src/big.bin" "$W/insert.bin" <<'PY'
import os, sys
src, ins = sys.argv[1], sys.argv[2]
new = os.urandom(100)
open(ins, "wb").write(new)
with open(src, "rb") as f:
    head = f.read(4096); rest = f.read()
with open(src + ".new", "wb") as f:
    f.write(head + new + rest)
os.replace(src + ".new", src)
PY
w0=$(wire)
# One poller process, started before the write so that its start-up is not timed (a python
# starts in 50-100 ms on a busy 2-core machine); it prints the time it saw the new bytes.
python3 - "$W/B/mnt/big.bin" "$W/insert.bin" "$((SIZE_MIB << 20))" > "$W/seen" <<'PY' &
import os, sys, time
p, ins, size = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
end = time.monotonic() + 600
while time.monotonic() < end:
    try:
        if os.stat(p).st_size == size + 100:
            with open(p, "rb") as f:
                f.seek(4096)
                if f.read(100) == ins:
                    print(time.time())
                    sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
sys.exit(1)
PY
poller=$!
quiesce
dd if="$W/src/big.bin" of="$W/A/mnt/big.bin" bs=1M conv=fsync status=none
t0=$(now)
wait $poller || { log "timed out waiting for B to read the inserted bytes"; exit 1; }
b_s=$(python3 -c "print(max(0.0, $(cat "$W/seen") - $t0))")
wait_for 600 "B to hold every block" b_complete big.bin
b_b=$(( $(wire) - w0 ))
cmp -s "$W/src/big.bin" "$W/B/mnt/big.bin" || { log "B's copy differs after the insert"; exit 1; }
rsync_run rb -a --no-whole-file "$W/src/" "$RS"

# (c) rename
log "(c) rename"
quiesce
w0=$(wire)
t0=$(now)
mv "$W/A/mnt/big.bin" "$W/A/mnt/renamed.bin"
wait_for 120 "the rename to reach B" bash -c "[[ -e '$W/B/mnt/renamed.bin' && ! -e '$W/B/mnt/big.bin' ]]"
c_s=$(python3 -c "print($(now)-$t0)")
wait_for 120 "B to hold every block" b_complete renamed.bin
c_b=$(( $(wire) - w0 ))
mv "$W/src/big.bin" "$W/src/renamed.bin"
rsync_run rc -a --fuzzy --delete-after "$W/src/" "$RS"

python3 - "$JSON" "$SIZE_MIB" "$a1_s" "$a1_b" "$a2_s" "$a2_b" "$ra1_s" "$ra1_b" "$ra2_s" "$ra2_b" \
    "$fl1_s" "$fl1_b" "$fl2_s" "$fl2_b" "$b_s" "$b_b" "$rb_s" "$rb_b" "$c_s" "$c_b" "$rc_s" "$rc_b" <<'PY'
import json, sys
j, size = sys.argv[1] == "1", int(sys.argv[2])
v = [float(x) for x in sys.argv[3:]]
# (seconds, bytes) of each sample of (a), in run order.
fossa_a, rsync_a, floor_a = [[(v[i], v[i + 1]), (v[i + 2], v[i + 3])] for i in (0, 4, 8)]
rows = [
    (f"(a) initial sync, {size} MiB (best of 2)", *min(fossa_a), *min(rsync_a)),
    (f"raw QUIC transfer, no storage (floor), {size} MiB (best of 2)", *min(floor_a), *min(rsync_a)),
    ("(b) 100 B inserted near the start", *v[12:16]),
    ("(c) rename", *v[16:20]),
]
def ratio(a, b): return f"{a / b:.2f}" if b else "n/a"
def mib(b): return f"{b / 2**20:,.2f}"
def secs(samples): return " / ".join(f"{s:.2f}" for s, _ in samples)
print("| step | fossa s | fossa MiB on the wire | rsync s | rsync MiB (sent+received) | time fossa/rsync | bytes fossa/rsync |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, fs, fb, rs, rb in rows:
    print(f"| {name} | {fs:.2f} | {mib(fb)} | {rs:.2f} | {mib(rb)} | {ratio(fs, rs)} | {ratio(fb, rb)} |")
print(f"\n(a) samples, first / second, s: fossa {secs(fossa_a)}; rsync {secs(rsync_a)}; raw QUIC {secs(floor_a)}.\n"
      "fossa's second sample is a second file of other random data (big2.bin); rsync's is the same\n"
      "copy again after deleting the destination's file; the floor row's fossa columns are the raw\n"
      "QUIC transfer (one connection, fossa's TLS and transport config, 4 streams, no hashing, no storage).")
print("\nfossa bytes: UDP payload sent + received by A, whose only peer is B (`fossa status --json`); fossa time of (a) and (b):\n"
      "from the end of A's fsync until B holds every block / reads the new bytes; rsync: wall time of\n"
      "`rsync -a` (b: `--no-whole-file`, c: `--fuzzy --delete-after`) to an rsync daemon on 127.0.0.1.")
if j:
    out = [dict(step=n, fossa_s=fs, fossa_bytes=int(fb), rsync_s=rs, rsync_bytes=int(rb)) for n, fs, fb, rs, rb in rows]
    def samples(xs): return [dict(s=s, bytes=int(b)) for s, b in xs]
    out[0].update(fossa_samples=samples(fossa_a), rsync_samples=samples(rsync_a))
    n, fs, fb, rs, rb = rows[1]
    out[1] = dict(step=n, floor_s=fs, floor_bytes=int(fb), rsync_s=rs, rsync_bytes=int(rb),
                  floor_samples=samples(floor_a), rsync_samples=samples(rsync_a))
    print("\n```json\n" + json.dumps({"size_mib": size, "rows": out}, indent=2) + "\n```")
PY
