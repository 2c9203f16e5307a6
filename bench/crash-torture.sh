#!/usr/bin/env bash
# Crash torture: N iterations of SIGKILL at a random moment during a workload of writes,
# renames, deletes, fsyncs, sync(1) and `fossa sync`; after each, remount, check every
# fsync'ed or sync'ed byte against a journal kept outside the mount, and `fossa fsck`.
# See bench/README.md ("Crash torture"). Run as root (FUSE; --full-disk mounts a tmpfs).
#
#   bench/crash-torture.sh [--fossa-bin PATH] [--iterations N] [--seed S] [--full-disk]
#                          [--tmpfs-size SIZE] [--max-kill-ms MS] [--workdir DIR]
#
# Prints one summary line; exit 0 only with 0 losses, fsck clean every time, and no daemon
# that died on its own.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BIN=""
ARGS=()
while (($#)); do
	case $1 in
	--fossa-bin) BIN=$2; shift 2 ;;
	*) ARGS+=("$1"); shift ;;
	esac
done
if [[ -z $BIN ]]; then
	(cd "$REPO" && cargo build -q -p fossa-mountd)
	BIN="$REPO/target/debug/fossa"
fi
export FOSSA_DISCOVERY=off
exec python3 "$HERE/crash_torture.py" --fossa "$BIN" "${ARGS[@]}"
