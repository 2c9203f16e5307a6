#!/usr/bin/env bash
# Cost of what `close` does (docs/ARCHITECTURE.md, "What `close`, `sync` and `fsync`
# guarantee"): small-file creation and an untar (+ sync), interleaved over fossa builds
# (A, B, A, B, ...). Prints one line per run: build, workload, seconds.
#
#   bench/close-cost.sh [--runs N] [--files N] [--tar FILE.tar] BIN_A BIN_B [BIN_C ...]
#
# create: N files of 4 KiB (default 3000) written and closed by one python process;
# untar: `tar -xf FILE.tar` into the mount, then `sync` (default tarball: the registry
# sources of the crates fuser and redb, made once under /var/tmp).
set -euo pipefail
RUNS=3
FILES=3000
TAR=""
while (($#)); do
	case $1 in
	--runs) RUNS=$2; shift 2 ;;
	--files) FILES=$2; shift 2 ;;
	--tar) TAR=$2; shift 2 ;;
	-*) echo "usage: $0 [--runs N] [--files N] [--tar FILE.tar] BIN_A BIN_B ..." >&2; exit 2 ;;
	*) break ;;
	esac
done
(($# >= 2)) || { echo "usage: $0 [--runs N] [--files N] [--tar FILE.tar] BIN_A BIN_B ..." >&2; exit 2; }
if [[ -z $TAR ]]; then
	TAR=/var/tmp/fossa-close-cost.tar
	if [[ ! -f $TAR ]]; then
		src=$(ls -d "$HOME"/.cargo/registry/src/*/ | head -1)
		tar -C "$src" -cf "$TAR" $(cd "$src" && ls -d fuser-* redb-* | head -4)
	fi
fi
export FOSSA_DISCOVERY=off
W=""
cleanup() {
	if [[ -n $W ]]; then
		fusermount3 -uz "$W/mnt" 2>/dev/null || true
		rm -rf "$W"
	fi
}
trap cleanup EXIT
now() { date +%s.%N; }
for ((r = 1; r <= RUNS; r++)); do
	for bin in "$@"; do
		for wl in create untar; do
			W=$(mktemp -d /var/tmp/fossa-close-cost.XXXXXX)
			mkdir "$W/home" "$W/mnt"
			"$bin" --home "$W/home" init --key-file "$W/key" >/dev/null 2>&1
			"$bin" --home "$W/home" mount "$W/mnt" --key-file "$W/key" --listen 127.0.0.1:0 --daemon >/dev/null
			t0=$(now)
			if [[ $wl == create ]]; then
				python3 -c "
import os, sys
d = sys.argv[1]
b = os.urandom(4096)
for i in range(int(sys.argv[2])):
    with open(os.path.join(d, f'f{i}'), 'wb') as f:
        f.write(b)
" "$W/mnt" "$FILES"
			else
				tar -C "$W/mnt" -xf "$TAR"
				sync
			fi
			t1=$(now)
			echo "$bin $wl $(echo "$t1 - $t0" | bc)"
			"$bin" --home "$W/home" umount "$W/mnt" >/dev/null
			rm -rf "$W"
			W=""
		done
	done
done
