#!/usr/bin/env bash
# fsync latency of a small file while another file is written without pause: fio writes
# 3 GiB (bs=1M, fresh random data) into a fossa mount; one second in, five times 300 ms
# apart, a small file is created, written (4 KiB) and fsynced. Interleaved over builds
# (A, B, A, B, ...), one line per run: the five fsync latencies, and the stream's own rate
# (what the fsyncs cost it). An fsync must wait at most for the flush that is running, not
# for the stream to end (a stream of 3 GiB takes ~5 s here).
#
#   bench/fsync-stream.sh [--runs N] BIN_A [BIN_B ...]
set -euo pipefail
RUNS=3
if [[ ${1:-} == --runs ]]; then
	RUNS=$2
	shift 2
fi
(($# >= 1)) || { sed -n '2,8p' "$0" >&2; exit 2; }
command -v fio >/dev/null || apt-get install -y fio >/dev/null
WORK=$(mktemp -d /tmp/fossa-fsync-stream.XXXXXX)
MNT=
cleanup() {
	[[ -n $MNT ]] && mountpoint -q "$MNT" && fusermount3 -uz "$MNT"
	rm -rf "$WORK"
}
trap cleanup EXIT

one() { # BIN: prints the five fsync latencies in ms and the stream's MiB/s
	local bin=$1 d
	d=$(mktemp -d "$WORK/run.XXXX")
	MNT=$d/mnt
	mkdir -p "$MNT"
	"$bin" --home "$d/home" init --key-file "$d/key" >/dev/null 2>&1
	"$bin" --home "$d/home" mount "$MNT" --key-file "$d/key" --daemon >/dev/null 2>&1
	local deadline=$((SECONDS + 30))
	until mountpoint -q "$MNT"; do
		((SECONDS < deadline)) || { echo "no mount after 30 s" >&2; return 1; }
		sleep 0.1
	done
	fio --name=stream --filename="$MNT/big" --rw=write --bs=1M --size=3G --end_fsync=1 \
		--refill_buffers --output-format=json --output="$d/fio.json" &
	local fio=$!
	# fio lays the file out at full size before writing, so its size says nothing: the
	# stream is under way one second in.
	sleep 1
	python3 - "$MNT" <<'PY'
import os, sys, time
m, lat = sys.argv[1], []
for i in range(5):
    fd = os.open(f"{m}/small{i}", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"x" * 4096)
    t = time.monotonic()
    os.fsync(fd)
    lat.append((time.monotonic() - t) * 1000)
    os.close(fd)
    time.sleep(0.3)
print(" ".join(f"{x:6.0f}" for x in lat), f"  (max {max(lat):.0f})", end="")
PY
	wait "$fio"
	python3 -c 'import json, sys; print("   stream %d MiB/s" % (json.load(open(sys.argv[1]))["jobs"][0]["write"]["bw"] // 1024))' "$d/fio.json"
	"$bin" --home "$d/home" umount "$MNT" >/dev/null 2>&1 || fusermount3 -uz "$MNT"
	MNT=
	rm -rf "$d"
}

for ((r = 1; r <= RUNS; r++)); do
	for bin in "$@"; do
		printf '%-28s run %d fsync ms: %s\n' "$(basename "$bin")" "$r" "$(one "$bin")"
	done
done
