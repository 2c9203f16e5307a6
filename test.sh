#!/usr/bin/env bash
# The test command (README.md): installs the tools the tests drive when they are missing, then
# builds the workspace (the end-to-end tests run target/debug/fossa) and runs every test.
# Needs root (FUSE mounts, tmpfs, chown in the tests), /dev/fuse and a Rust toolchain.
# Arguments go to `cargo test` (e.g. `./test.sh -p fossa-tests --test sync`).
set -euo pipefail
cd "$(dirname "$0")"

# Every tool a test or script drives, as COMMAND:DEBIAN-PACKAGE. Add new ones here only.
TOOLS=(fusermount3:fuse3 setfattr:attr getfattr:attr rsync:rsync git:git fio:fio jq:jq bc:bc
	python3:python3)

need=()
for t in "${TOOLS[@]}"; do
	command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if ((${#need[@]})); then
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	[[ $(id -u) -eq 0 ]] || { echo "test.sh: missing ${need[*]}; run as root to install them" >&2; exit 1; }
	echo "test.sh: installing ${need[*]}"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

[[ -c /dev/fuse ]] || { echo "test.sh: /dev/fuse is missing; the end-to-end tests need FUSE" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "test.sh: run as root (FUSE mounts, tmpfs, chown in the tests)" >&2; exit 1; }

cargo build --workspace
cargo test --workspace "$@"
