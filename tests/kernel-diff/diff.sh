#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Real-kernel differential test of the DRM sync paths: runs one scripted sequence of sync
# object operations (tests/kernel-diff/transcript, the `agx-kdiff` binary) through the
# winsys's ioctl functions on
#   - a real Linux kernel (QEMU/TCG guest with the agx_synctest driver, via run.sh), and
#   - the embedded simulated device (agx-sim) on the host,
# and compares the two transcripts line by line, modulo the documented differences of that
# kernel series (expected-differences-<major.minor>.txt, e.g. -6.1 and -6.12).
#
# usage: tests/kernel-diff/diff.sh [--series X.Y] [--out DIR] [--no-build] [run.sh options...]
#
#   --series X.Y  boot the newest installed kernel of that series (e.g. 6.1, 6.12: a
#                 /lib/modules/X.Y.* tree with a build directory); without it, run.sh's choice
#                 (--kver, or the newest installed kernel)
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
SERIES=""
KVER="${KDIFF_KVER:-}"
while [ $# -gt 0 ]; do
	case "$1" in
	--series) SERIES="$2"; shift 2 ;;
	--kver) KVER="$2"; shift 2 ;;
	--out) OUT="$2"; shift 2 ;;
	--no-build) BUILD=0; shift ;;
	-h|--help) sed -n '4,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	--timeout|--env|--file) RUN_OPTS+=("$1" "$2"); shift 2 ;;
	*) RUN_OPTS+=("$1"); shift ;;
	esac
done

log() { echo "kernel-diff/diff: $*" >&2; }
T0=$(date +%s.%N)
since() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The kernel: a series names its newest installed version; otherwise run.sh's default (the
# newest /boot/vmlinuz-* with modules), resolved here so the right expectations are used.
if [ -n "$SERIES" ]; then
	KVER=$(ls /lib/modules 2>/dev/null | grep -E "^${SERIES//./\\.}\\.[0-9]" | sort -rV |
		while read -r k; do [ -e "/lib/modules/$k/build/Makefile" ] && { echo "$k"; break; }; done || true)
	[ -n "$KVER" ] || { log "no kernel of series $SERIES installed (apt-get install linux-image-$SERIES-amd64 linux-headers-$SERIES-amd64)"; exit 2; }
elif [ -z "$KVER" ]; then
	for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's,^/boot/vmlinuz-,,' | sort -rV); do
		if [ -d "/lib/modules/$k/kernel" ]; then KVER=$k; break; fi
	done
	[ -n "$KVER" ] || { log "no installed kernel found"; exit 2; }
fi
RUN_OPTS+=(--kver "$KVER")
KSERIES=$(echo "$KVER" | cut -d. -f1,2)
EXPECTED="$HERE/expected-differences-$KSERIES.txt"
[ -e "$EXPECTED" ] || { log "no $EXPECTED: the differences on $KSERIES are not documented yet"; exit 2; }

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
	"$EXPECTED" >"$OUT/compare.txt" || crc=$?
cat "$OUT/compare.txt"
log "Linux $KVER vs $(basename "$EXPECTED"): build ${T_BUILD}s, sim done at ${T_SIM}s, kernel done at ${T_KERNEL}s, total $(since)s; artifacts in $OUT"
if [ "$crc" = 0 ]; then log "PASS"; else log "FAIL"; fi
exit "$crc"
