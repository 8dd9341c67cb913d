#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Real-kernel differential test of the DRM sync paths: runs one scripted sequence of sync
# object operations (tests/kernel-diff/transcript, the `agx-kdiff` binary) through the
# winsys's ioctl functions on
#   - a real Linux kernel (QEMU/TCG guest with the agx_synctest driver, via run.sh), and
#   - the embedded simulated device (agx-sim) on the host,
# and compares the two transcripts line by line, modulo expected-differences.txt.
#
# usage: tests/kernel-diff/diff.sh [--out DIR] [--no-build] [run.sh options...]
#
#   --out DIR     artifacts directory (default: tests/kernel-diff/out, or $KDIFF_OUT):
#                 kernel-transcript.txt, sim-transcript.txt, compare.txt, plus run.sh's
#                 outputs (serial.log, dmesg.txt, timings.txt, ...)
#   --no-build    use the existing release binary (cargo build is skipped)
#   other options are passed to run.sh (e.g. --no-install, --kver VER, --timeout SEC)
#
# Exit status: 0 when the transcripts are equal modulo the documented differences; 1 on the
# first unexplained difference (both sides are printed) or when the guest run fails; 2 on a
# harness or build error; 3 when run.sh timed out.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${KDIFF_OUT:-$HERE/out}"
BUILD=1
RUN_OPTS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT="$2"; shift 2 ;;
	--no-build) BUILD=0; shift ;;
	-h|--help) sed -n '4,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	--timeout|--kver|--env|--file) RUN_OPTS+=("$1" "$2"); shift 2 ;;
	*) RUN_OPTS+=("$1"); shift ;;
	esac
done

log() { echo "kernel-diff/diff: $*" >&2; }
T0=$(date +%s.%N)
since() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

cd "$ROOT"
if [ "$BUILD" = 1 ]; then
	cargo build --release -q -p agx-kdiff || { log "cargo build failed"; exit 2; }
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/agx-kdiff"
[ -x "$BIN" ] || { log "$BIN not found"; exit 2; }
T_BUILD=$(since)

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT/kernel-transcript.txt" "$OUT/sim-transcript.txt" "$OUT/compare.txt"

# The simulator, on the host.
if ! "$BIN" sim >"$OUT/sim-transcript.txt"; then
	log "the simulator run failed (partial transcript: $OUT/sim-transcript.txt)"
	exit 1
fi
T_SIM=$(since)

# The real kernel, in QEMU.
rc=0
"$HERE/run.sh" --out "$OUT" "${RUN_OPTS[@]+"${RUN_OPTS[@]}"}" -- "$BIN" node /dev/dri/renderD128 >/dev/null || rc=$?
# `check:` lines are the guest's own checks (agx_ws_device_open_fd on the test driver's node),
# not part of the sequence compared with the simulator: they must all say ok.
grep '^check: ' "$OUT/transcript.txt" >"$OUT/checks.txt" 2>/dev/null || true
grep -v '^check: ' "$OUT/transcript.txt" >"$OUT/kernel-transcript.txt" 2>/dev/null || true
T_KERNEL=$(since)
if [ "$rc" != 0 ]; then
	log "the kernel run failed (run.sh status $rc; see $OUT/serial.log)"
	exit "$rc"
fi

cat "$OUT/checks.txt"
if ! grep -q '^check: open-fd: ok' "$OUT/checks.txt" || grep -qv '^check: [a-z-]*: ok' "$OUT/checks.txt"; then
	log "a guest check failed (see $OUT/checks.txt)"
	exit 1
fi

crc=0
"$BIN" compare "$OUT/kernel-transcript.txt" "$OUT/sim-transcript.txt" \
	"$HERE/expected-differences.txt" >"$OUT/compare.txt" || crc=$?
cat "$OUT/compare.txt"
log "build ${T_BUILD}s, sim done at ${T_SIM}s, kernel done at ${T_KERNEL}s, total $(since)s; artifacts in $OUT"
if [ "$crc" = 0 ]; then log "PASS"; else log "FAIL"; fi
exit "$crc"
