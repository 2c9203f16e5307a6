#!/usr/bin/env bash
# Whole-mount benchmark: fossa against gocryptfs, cryfs, bindfs and a plain directory.
# See bench/README.md. Run as root (drop_caches, apt-get, FUSE).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HELPER="$HERE/mount_report.py"
PY=${PYTHON:-python3}
CMDLINE=$0
for a in "$@"; do
	if [[ $a =~ ^[A-Za-z0-9_./=,:+-]+$ ]]; then CMDLINE+=" $a"; else CMDLINE+=" $(printf '%q' "$a")"; fi
done
exec 4>&2 # progress messages go to the original stderr even from captured subshells

usage() {
	cat <<'EOF'
usage: bench/mount.sh [--quick] [--json] [--pin] [--runs N]
                      [--targets fossa,gocryptfs,cryfs,bindfs,plain] [--fossa-bin PATH]
                      [--fossa-base-bin PATH] [--fossa-daemon] [--outdir DIR] [--keep]
                      [--mount-timeout SECONDS]

  --quick          tiny sizes (64 MiB writes, 500 files, small tree, 16 MiB dedup), runs=1
  --json           also print the results as a fenced JSON block after the table
  --pin            run the workloads and the daemons under `taskset -c 0`
  --runs N         interleaved repetitions, medians are reported (default 3, quick 1)
  --targets LIST   comma separated subset of fossa,gocryptfs,cryfs,bindfs,plain
  --fossa-bin P    the fossa binary (default: `fossa` on PATH, else target/release/fossa)
  --fossa-base-bin P  a second fossa build (e.g. main before a change), measured as the
                   target `fossa-base` in the same interleaved run; the report adds
                   fossa ÷ fossa-base ratios
  --fossa-daemon   mount fossa with `--daemon` (PID found via /proc) instead of a
                   foreground process started in the background
  --outdir DIR     where report.md, report.json, raw.jsonl and logs go
                   (default /var/tmp/fossa-bench-results/DATE)
  --keep           keep the scratch directory (backing stores) after the run
  --mount-timeout  seconds to wait for a mount to appear (default 240; cryfs's key
                   derivation alone takes ~50 s on a loaded 2-vCPU VM)
EOF
}

QUICK=0 JSON=0 PIN=0 RUNS="" TARGETS_ARG="fossa,gocryptfs,cryfs,bindfs,plain"
FOSSA_BIN="" FOSSA_BASE_BIN="" FOSSA_DAEMON=0 OUTDIR="" KEEP=0 MOUNT_TIMEOUT=240
while (($#)); do
	case "$1" in
	--quick) QUICK=1 ;;
	--json) JSON=1 ;;
	--pin) PIN=1 ;;
	--runs) RUNS=${2:?--runs needs a value}; shift ;;
	--runs=*) RUNS=${1#*=} ;;
	--targets) TARGETS_ARG=${2:?--targets needs a value}; shift ;;
	--targets=*) TARGETS_ARG=${1#*=} ;;
	--fossa-bin) FOSSA_BIN=${2:?--fossa-bin needs a value}; shift ;;
	--fossa-bin=*) FOSSA_BIN=${1#*=} ;;
	--fossa-base-bin) FOSSA_BASE_BIN=${2:?--fossa-base-bin needs a value}; shift ;;
	--fossa-base-bin=*) FOSSA_BASE_BIN=${1#*=} ;;
	--fossa-daemon) FOSSA_DAEMON=1 ;;
	--outdir) OUTDIR=${2:?--outdir needs a value}; shift ;;
	--outdir=*) OUTDIR=${1#*=} ;;
	--keep) KEEP=1 ;;
	--mount-timeout) MOUNT_TIMEOUT=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "mount.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

if ((QUICK)); then
	SEQ_MB=64 RAND_MB=32 RAND_RT=3 NFILES=500 TREE_MB=12 TREE_FILES=1200 DEDUP_MB=16
	TAR=/var/tmp/fossa-bench-tree-quick.tar
	: "${RUNS:=1}"
else
	SEQ_MB=1024 RAND_MB=256 RAND_RT=20 NFILES=10000 TREE_MB=130 TREE_FILES=11000 DEDUP_MB=256
	TAR=/var/tmp/fossa-bench-tree.tar
	: "${RUNS:=3}"
fi
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "mount.sh: --runs must be a positive integer" >&2; exit 2; }
RANDSRC=/var/tmp/fossa-bench-rand-${DEDUP_MB}M.bin
SIZES="seq ${SEQ_MB} MiB, random I/O on ${RAND_MB} MiB for ${RAND_RT} s, ${NFILES} files, tree $(basename "$TAR"), dedup ${DEDUP_MB} MiB"

log() { printf '[mount.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&4; }
die() { printf 'mount.sh: error: %s\n' "$*" >&2; exit 1; }

IFS=, read -ra TARGETS <<<"$TARGETS_ARG"
for t in "${TARGETS[@]}"; do
	case "$t" in fossa | fossa-base | gocryptfs | cryfs | bindfs | plain) ;; *) die "unknown target '$t'" ;; esac
done
if [[ -n $FOSSA_BASE_BIN ]]; then
	[[ -x $FOSSA_BASE_BIN ]] || die "no executable at --fossa-base-bin $FOSSA_BASE_BIN"
	FOSSA_BASE_BIN=$(cd "$(dirname "$FOSSA_BASE_BIN")" && pwd)/$(basename "$FOSSA_BASE_BIN")
	[[ " ${TARGETS[*]} " == *" fossa-base "* ]] || TARGETS=("${TARGETS[@]:0:1}" fossa-base "${TARGETS[@]:1}")
fi
((${#TARGETS[@]})) || die "no targets"
has_target() { local x; for x in "${TARGETS[@]}"; do [[ $x == "$1" ]] && return 0; done; return 1; }

PIN_CMD=()
((PIN)) && PIN_CMD=(taskset -c 0)
IS_ROOT=0
[[ $(id -u) == 0 ]] && IS_ROOT=1

# ------------------------------------------------------------------ dependencies
need_install=0
for c in fio fusermount3 taskset tar du dd awk "$PY"; do command -v "$c" >/dev/null || need_install=1; done
[[ -x /usr/bin/time ]] || need_install=1
for t in gocryptfs cryfs bindfs; do
	if has_target "$t"; then command -v "$t" >/dev/null || need_install=1; fi
done
if ((need_install)); then
	((IS_ROOT)) || die "missing tools and not root: apt-get install gocryptfs cryfs bindfs fio fuse3 time"
	log "installing missing packages from Debian"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q gocryptfs cryfs bindfs fio fuse3 time >&2
fi
[[ -e /dev/fuse ]] || die "/dev/fuse is missing"

NOTES_PRE=()
if has_target fossa; then
	if [[ -z $FOSSA_BIN ]]; then
		FOSSA_BIN=$(command -v fossa || true)
		[[ -n $FOSSA_BIN ]] || FOSSA_BIN=$REPO/target/release/fossa
	fi
	if [[ ! -x $FOSSA_BIN ]]; then
		log "fossa binary not found at '$FOSSA_BIN': skipping the fossa target (use --fossa-bin)"
		NOTES_PRE+=("fossa: skipped, no executable at $FOSSA_BIN (pass --fossa-bin)")
		NEW=()
		for t in "${TARGETS[@]}"; do [[ $t == fossa ]] || NEW+=("$t"); done
		TARGETS=("${NEW[@]}")
	else
		FOSSA_BIN=$(cd "$(dirname "$FOSSA_BIN")" && pwd)/$(basename "$FOSSA_BIN")
	fi
fi
((${#TARGETS[@]})) || die "no usable targets"
((IS_ROOT)) || NOTES_PRE+=("not root: page cache NOT dropped before cold steps")

# ------------------------------------------------------------------ scratch + results
[[ -n $OUTDIR ]] || OUTDIR=/var/tmp/fossa-bench-results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUTDIR/logs"
OUTDIR=$(cd "$OUTDIR" && pwd)
RAW=$OUTDIR/raw.jsonl
NOTES=$OUTDIR/notes.txt
: >"$RAW"
: >"$NOTES"
for n in "${NOTES_PRE[@]}"; do echo "$n" >>"$NOTES"; done
WORK=$(mktemp -d /var/tmp/fossa-bench.XXXXXX)
LOGS=$OUTDIR/logs
log "scratch $WORK, results $OUTDIR"

note() { log "NOTE: $*"; echo "$*" >>"$NOTES"; }

# ------------------------------------------------------------------ process helpers
is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }

alive() { # alive PID: exists and is not a zombie
	local s
	[[ -n ${1:-} ]] || return 1
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s:0:1} != Z ]]
}

cpu_ticks() { # utime+stime of PID, or "null" without a daemon
	local s f
	if [[ -z ${1:-} ]]; then echo null; return; fi
	s=$(cat "/proc/$1/stat") || return 1
	s=${s##*) }
	read -ra f <<<"$s"
	echo $((f[11] + f[12]))
}

tdir() { echo "$WORK/r$1/$2"; } # run, target
getpid() { cat "$1/pid" 2>/dev/null || true; }

find_pid_by_mnt() { # the live process (not fusermount) with the mount point as an argument
	local d c p=""
	for d in /proc/[0-9]*; do
		c=$(tr '\0' '\n' <"$d/cmdline" 2>/dev/null) || continue
		grep -qxF -- "$1" <<<"$c" || continue
		[[ $(cat "$d/comm" 2>/dev/null) == fusermount* ]] && continue
		alive "${d#/proc/}" && p=${d#/proc/}
	done
	echo "$p"
}

wait_mounted() { # dir mnt timeout
	local dir=$1 mnt=$2 deadline=$((SECONDS + $3)) pid
	while ! is_mounted "$mnt"; do
		pid=$(getpid "$dir")
		if [[ -n $pid ]] && ! alive "$pid"; then
			echo "daemon exited before the mount appeared"
			return 1
		fi
		((SECONDS < deadline)) || { echo "no mount after $3 s"; return 1; }
		sleep 0.1
	done
}

drop_caches() {
	sync
	((IS_ROOT)) && echo 3 >/proc/sys/vm/drop_caches
	return 0
}

# mount_target TARGET DIR FIRST(1=create the store) ; writes DIR/pid, DIR/back
mount_target() {
	local t=$1 dir=$2 first=$3 mnt=$2/mnt lg=$LOGS/$(basename "$(dirname "$2")")-$t.log why pid
	mkdir -p "$mnt"
	: >"$dir/pid"
	case $t in
	plain)
		echo "$mnt" >"$dir/back"
		return 0
		;;
	bindfs)
		mkdir -p "$dir/src"
		echo "$dir/src" >"$dir/back"
		"${PIN_CMD[@]}" bindfs -f "$dir/src" "$mnt" >>"$lg" 2>&1 4>&- &
		echo $! >"$dir/pid"
		;;
	gocryptfs)
		echo "$dir/cipher" >"$dir/back"
		if ((first)); then
			mkdir -p "$dir/cipher"
			gocryptfs -init -q -extpass 'echo pw' "$dir/cipher" >>"$lg" 2>&1 ||
				{ tail -n 3 "$lg" >&2; echo "gocryptfs -init failed (log: $lg)" >&2; return 1; }
		fi
		"${PIN_CMD[@]}" gocryptfs -fg -nosyslog -q -extpass 'echo pw' "$dir/cipher" "$mnt" >>"$lg" 2>&1 4>&- &
		echo $! >"$dir/pid"
		;;
	cryfs)
		mkdir -p "$dir/base" "$WORK/cryfs-state"
		echo "$dir/base" >"$dir/back"
		CRYFS_FRONTEND=noninteractive CRYFS_NO_UPDATE_CHECK=true XDG_DATA_HOME=$WORK/cryfs-state \
			"${PIN_CMD[@]}" cryfs -f --allow-replaced-filesystem --cipher aes-256-gcm \
			"$dir/base" "$mnt" >>"$lg" 2>&1 4>&- <<<"pw" &
		echo $! >"$dir/pid"
		;;
	fossa | fossa-base)
		local bin
		bin=$(fossa_bin "$t")
		echo "$dir/home/data" >"$dir/back"
		if ((first)); then
			"$bin" --home "$dir/home" init --key-file "$dir/key" >>"$lg" 2>&1 ||
				{ tail -n 3 "$lg" >&2; echo "fossa init failed (log: $lg)" >&2; return 1; }
		fi
		if ((FOSSA_DAEMON)); then
			"${PIN_CMD[@]}" "$bin" --home "$dir/home" mount "$mnt" --key-file "$dir/key" --daemon >>"$lg" 2>&1 4>&- ||
				{ tail -n 3 "$lg" >&2; echo "fossa mount --daemon failed (log: $lg)" >&2; return 1; }
			pid=$(find_pid_by_mnt "$mnt")
			[[ -n $pid ]] || { echo "fossa --daemon returned but no daemon process found" >&2; return 1; }
			echo "$pid" >"$dir/pid"
		else
			"${PIN_CMD[@]}" "$bin" --home "$dir/home" mount "$mnt" --key-file "$dir/key" >>"$lg" 2>&1 4>&- &
			echo $! >"$dir/pid"
		fi
		;;
	esac
	if ! why=$(wait_mounted "$dir" "$mnt" "$MOUNT_TIMEOUT"); then
		tail -n 5 "$lg" >&2 || true
		echo "$t: mount failed: $why (log: $lg)" >&2
		kill_target "$dir"
		return 1
	fi
	pid=$(getpid "$dir")
	log "  $t mounted at $mnt, daemon pid $pid$( ((PIN)) && printf ', affinity %s' "$(taskset -pc "$pid" | sed 's/.*: //')")"
}

fossa_bin() { # TARGET: the binary of target fossa or fossa-base
	if [[ $1 == fossa-base ]]; then echo "$FOSSA_BASE_BIN"; else echo "$FOSSA_BIN"; fi
}

kill_target() { # last resort: lazy unmount and kill the daemon
	local dir=$1 pid i
	is_mounted "$dir/mnt" && fusermount3 -uz "$dir/mnt" 2>/dev/null
	pid=$(getpid "$dir")
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	: >"$dir/pid"
	return 0
}

umount_target() { # TARGET DIR: clean unmount, bounded wait for the daemon to exit
	local t=$1 dir=$2 mnt=$2/mnt pid i
	[[ $t == plain ]] && return 0
	pid=$(getpid "$dir")
	if is_mounted "$mnt"; then
		if [[ $t == fossa* ]]; then
			"$(fossa_bin "$t")" --home "$dir/home" umount "$mnt" >>"$LOGS/umount.log" 2>&1 || true
		fi
		for i in $(seq 50); do
			is_mounted "$mnt" || break
			fusermount3 -u "$mnt" 2>>"$LOGS/umount.log" && break
			sleep 0.2
		done
	fi
	for i in $(seq 600); do alive "$pid" || break; sleep 0.1; done
	if is_mounted "$mnt" || alive "$pid"; then
		echo "$t: did not unmount/exit cleanly within 60 s, forcing" >&2
		kill_target "$dir"
		return 1
	fi
	: >"$dir/pid"
}

cold() { # TARGET DIR: sync, unmount, drop caches, remount (drops kernel + daemon caches)
	umount_target "$1" "$2"
	drop_caches
	mount_target "$1" "$2" 0
}

cleanup() {
	local rc=$? d
	trap - EXIT INT TERM
	set +e
	for d in "$WORK"/r*/*; do
		[[ -d $d ]] || continue
		is_mounted "$d/mnt" && fusermount3 -uz "$d/mnt" 2>/dev/null
		kill_target "$d"
	done
	if ((!REPORTED)) && [[ -s $RAW ]]; then
		echo "INTERRUPTED (exit status $rc): partial results" >>"$NOTES"
		"$PY" "$HELPER" report "$RAW" "$OUTDIR/meta.json" --notes "$NOTES" \
			--json-out "$OUTDIR/report.json" >"$OUTDIR/report.md" 2>/dev/null &&
			cat "$OUTDIR/report.md"
	fi
	if grep -qF " $WORK/" /proc/self/mountinfo; then
		echo "mount.sh: something is still mounted under $WORK; not deleting it" >&2
	elif ((KEEP)); then
		log "kept scratch directory $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
REPORTED=0
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ measurement
# measure TARGETDIR CMD...: runs CMD (pinned with --pin); sets WALL (s), CPU (ticks|null) and
# RSS (the daemon's peak resident set since it was mounted, VmHWM, KiB|null)
measure() {
	local dir=$1 pid c0 c1 s e
	shift
	pid=$(getpid "$dir")
	c0=$(cpu_ticks "$pid")
	s=$EPOCHREALTIME
	"${PIN_CMD[@]}" "$@"
	e=$EPOCHREALTIME
	c1=$(cpu_ticks "$pid")
	WALL=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.6f", e - s }')
	if [[ $c0 == null ]]; then CPU=null; else CPU=$((c1 - c0)); fi
	RSS=$(peak_rss "$pid")
}

peak_rss() { # PID: VmHWM in KiB, or null
	local v=""
	[[ -n $1 ]] && v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
	echo "${v:-null}"
}

record() { # run target workload metric (uses WALL, CPU)
	printf '{"run": %d, "target": "%s", "workload": "%s", "metric": %s, "wall": %s, "cpu_ticks": %s, "rss_kib": %s}\n' \
		"$1" "$2" "$3" "$4" "$WALL" "$CPU" "${RSS:-null}" >>"$RAW"
	log "  run $1 $2 $3: $4 (wall ${WALL}s, cpu ticks $CPU)"
}

fio_metric() { # json-file field(1=MiB/s, 2=IOPS)
	"$PY" "$HELPER" fio "$1" | awk -v f="$2" '{ print $f }'
}

check_mounted() {
	[[ $1 == plain ]] && return 0
	is_mounted "$2/mnt" || { echo "$1: not mounted any more" >&2; return 1; }
	alive "$(getpid "$2")" || { echo "$1: daemon died" >&2; return 1; }
}

FIO_COMMON=(--ioengine=psync --output-format=json)

wl_seqwrite() { # run target dir
	local r=$1 t=$2 dir=$3 out=$LOGS/r$1-$2-seqwrite.json
	check_mounted "$t" "$dir"
	measure "$dir" fio --name=seqwrite --filename="$dir/mnt/seq.bin" --rw=write --bs=1M \
		--size="${SEQ_MB}M" --end_fsync=1 --refill_buffers "${FIO_COMMON[@]}" --output="$out"
	record "$r" "$t" seqwrite "$(fio_metric "$out" 1)"
}

wl_seqread() {
	local r=$1 t=$2 dir=$3 out=$LOGS/r$1-$2-seqread.json
	cold "$t" "$dir"
	check_mounted "$t" "$dir"
	measure "$dir" fio --name=seqread --filename="$dir/mnt/seq.bin" --rw=read --bs=1M \
		--size="${SEQ_MB}M" "${FIO_COMMON[@]}" --output="$out"
	record "$r" "$t" seqread "$(fio_metric "$out" 1)"
	rm -f "$dir/mnt/seq.bin"
}

wl_randwrite() {
	local r=$1 t=$2 dir=$3 out=$LOGS/r$1-$2-randwrite.json
	check_mounted "$t" "$dir"
	# lay the file out first (not measured)
	"${PIN_CMD[@]}" fio --name=prep --filename="$dir/mnt/rand.bin" --rw=write --bs=1M --size="${RAND_MB}M" \
		--end_fsync=1 --refill_buffers "${FIO_COMMON[@]}" --output=/dev/null
	measure "$dir" fio --name=randwrite --filename="$dir/mnt/rand.bin" --rw=randwrite --bs=4k --iodepth=1 \
		--size="${RAND_MB}M" --runtime="$RAND_RT" --time_based --refill_buffers "${FIO_COMMON[@]}" --output="$out"
	record "$r" "$t" randwrite "$(fio_metric "$out" 2)"
}

wl_randread() {
	local r=$1 t=$2 dir=$3 out=$LOGS/r$1-$2-randread.json
	cold "$t" "$dir"
	check_mounted "$t" "$dir"
	measure "$dir" fio --name=randread --filename="$dir/mnt/rand.bin" --rw=randread --bs=4k --iodepth=1 \
		--size="${RAND_MB}M" --runtime="$RAND_RT" --time_based "${FIO_COMMON[@]}" --output="$out"
	record "$r" "$t" randread "$(fio_metric "$out" 2)"
	rm -f "$dir/mnt/rand.bin"
}

wl_files() {
	local r=$1 t=$2 dir=$3 d=$3/mnt/files op el
	check_mounted "$t" "$dir"
	mkdir "$d"
	for op in create stat delete; do
		[[ $op == stat ]] && drop_caches
		el=$(measure "$dir" "$PY" "$HELPER" files "$op" "$d" "$NFILES"; echo "$WALL $CPU $RSS" >"$dir/m")
		read -r WALL CPU RSS <"$dir/m"
		record "$r" "$t" "$op" "$(awk -v n="$NFILES" -v s="$el" 'BEGIN { printf "%.1f", n / s }')"
	done
	rmdir "$d"
}

wl_tree() {
	local r=$1 t=$2 dir=$3 d=$3/mnt/tree
	check_mounted "$t" "$dir"
	mkdir "$d"
	measure "$dir" bash -c 'tar -xf "$1" -C "$2" && sync' _ "$TAR" "$d"
	record "$r" "$t" untar "$WALL"
	drop_caches
	measure "$dir" du -s "$d" >/dev/null
	record "$r" "$t" du "$WALL"
	measure "$dir" rm -rf "$d"
	record "$r" "$t" rmrf "$WALL"
}

stable_du() { # du -sB1 DIR once it stops changing (cryfs writes blocks back lazily), max ~10 s
	local a b i
	sync
	a=$(du -sB1 "$1" | cut -f1)
	for i in $(seq 20); do
		sleep 0.5
		sync
		b=$(du -sB1 "$1" | cut -f1)
		[[ $a == "$b" ]] && break
		a=$b
	done
	echo "$a"
}

wl_dedup() {
	local r=$1 t=$2 dir=$3 back b0 b1
	check_mounted "$t" "$dir"
	back=$(cat "$dir/back")
	dd if="$RANDSRC" of="$dir/mnt/dedup-a" bs=1M conv=fsync status=none
	b0=$(stable_du "$back")
	measure "$dir" dd if="$RANDSRC" of="$dir/mnt/dedup-b" bs=1M conv=fsync status=none
	b1=$(stable_du "$back")
	record "$r" "$t" dedup "$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f", (b - a) / 1048576 }')"
	rm -f "$dir/mnt/dedup-a" "$dir/mnt/dedup-b"
}

# try FN ARGS...: runs FN in a subshell with errexit really active; sets TRY_RC, TRY_OUT
try() {
	set +e
	TRY_OUT=$( (set -e; "$@") 2>&1 >&3 3>&-)
	TRY_RC=$?
	set -e
	if ((TRY_RC)); then
		[[ -n $TRY_OUT ]] || TRY_OUT="$1 exited with status $TRY_RC"
		printf '%s\n' "$TRY_OUT" | tail -n 5 >&2
	fi
	return 0
} 3>&2
# (stdout of FN goes to stderr via fd 3; its stderr is captured for the failure note)

why_failed() { # the most telling line of TRY_OUT
	local l
	l=$(grep -Ei 'error|fail|not mounted|died|no mount|not connected' <<<"$TRY_OUT" | tail -n1 || true)
	[[ -n $l ]] || l=$(tail -n1 <<<"$TRY_OUT")
	echo "$l"
}

# ------------------------------------------------------------------ machine + meta
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)
VERSIONS=()
has_target gocryptfs && VERSIONS+=("$(gocryptfs -version 2>&1 | sed -n 1p)")
has_target cryfs && VERSIONS+=("$(CRYFS_NO_UPDATE_CHECK=true cryfs --version 2>&1 | sed -n 1p)")
has_target bindfs && VERSIONS+=("$(bindfs --version 2>&1 | sed -n 1p)")
has_target fossa && VERSIONS+=("fossa: $FOSSA_BIN ($(timeout 10 "$FOSSA_BIN" --version 2>/dev/null | sed -n 1p || true))")
has_target fossa-base && VERSIONS+=("fossa-base: $FOSSA_BASE_BIN ($(timeout 10 "$FOSSA_BASE_BIN" --version 2>/dev/null | sed -n 1p || true))")
VERSIONS+=("$(fio --version)" "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)")
export CMDLINE CPU_MODEL MEM QUICK PIN RUNS SIZES
export M_NPROC=$(nproc) M_KERNEL=$(uname -r) M_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export M_GIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
export M_TCK=$(getconf CLK_TCK) M_TARGETS=$(IFS=,; echo "${TARGETS[*]}")
export M_VERSIONS=$(printf '%s\n' "${VERSIONS[@]}")
"$PY" - "$OUTDIR/meta.json" <<'EOF'
import json, os, sys
e = os.environ
json.dump({
    "cmdline": e["CMDLINE"], "nproc": int(e["M_NPROC"]), "kernel": e["M_KERNEL"],
    "cpu_model": e["CPU_MODEL"], "mem": e["MEM"], "date": e["M_DATE"], "git": e["M_GIT"],
    "quick": e["QUICK"] == "1", "pin": e["PIN"] == "1", "runs": int(e["RUNS"]),
    "sizes": e["SIZES"], "clk_tck": int(e["M_TCK"]), "targets": e["M_TARGETS"].split(","),
    "versions": [v for v in e["M_VERSIONS"].split("\n") if v],
}, open(sys.argv[1], "w"), indent=2)
EOF
{
	echo "machine: $M_NPROC CPUs, $CPU_MODEL, kernel $M_KERNEL, $MEM"
	echo "command: $CMDLINE"
} >&2

# ------------------------------------------------------------------ inputs (cached)
if [[ ! -s $TAR ]]; then
	log "building $TAR (~${TREE_MB} MB, ~${TREE_FILES} files)"
	"$PY" "$HELPER" mktree "$TAR" --mb "$TREE_MB" --files "$TREE_FILES"
fi
if [[ ! -s $RANDSRC ]]; then
	head -c "$((DEDUP_MB * 1048576))" /dev/urandom >"$RANDSRC.tmp"
	mv "$RANDSRC.tmp" "$RANDSRC"
fi

# ------------------------------------------------------------------ the runs
# BENCH_WORKLOADS (space separated) runs a subset, e.g. "seqwrite seqread".
read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-seqwrite seqread randwrite randread files tree dedup}"
n=${#TARGETS[@]}
for ((r = 1; r <= RUNS; r++)); do
	# rotate the order each run so no target always goes first
	ORDER=()
	for ((i = 0; i < n; i++)); do ORDER+=("${TARGETS[(i + r - 1) % n]}"); done
	log "run $r/$RUNS: order ${ORDER[*]}"
	LIVE=()
	for t in "${ORDER[@]}"; do
		d=$(tdir "$r" "$t")
		mkdir -p "$d"
		try mount_target "$t" "$d" 1
		if ((TRY_RC)); then
			note "run $r: $t skipped: mount failed: $(why_failed)"
		else
			LIVE+=("$t")
		fi
	done
	for wl in "${WORKLOADS[@]}"; do
		for t in "${LIVE[@]}"; do
			d=$(tdir "$r" "$t")
			[[ -e $d/failed ]] && continue
			log "run $r: $wl on $t"
			try "wl_$wl" "$r" "$t" "$d"
			if ((TRY_RC)); then
				note "run $r: $t: $wl failed ($(why_failed)); $t dropped for the rest of run $r"
				touch "$d/failed"
			fi
		done
	done
	for t in "${LIVE[@]}"; do
		d=$(tdir "$r" "$t")
		try umount_target "$t" "$d"
		((TRY_RC == 0)) || note "run $r: $t: unclean unmount ($(why_failed))"
	done
	if ! grep -qF " $WORK/r$r/" /proc/self/mountinfo && ((!KEEP)); then rm -rf "${WORK:?}/r$r"; fi
done

# ------------------------------------------------------------------ report
REPORT_ARGS=(report "$RAW" "$OUTDIR/meta.json" --notes "$NOTES" --json-out "$OUTDIR/report.json")
"$PY" "$HELPER" "${REPORT_ARGS[@]}" >"$OUTDIR/report.md"
if ((JSON)); then
	"$PY" "$HELPER" "${REPORT_ARGS[@]}" --json
else
	cat "$OUTDIR/report.md"
fi
REPORTED=1
log "results in $OUTDIR"
