#!/usr/bin/env bash
# Fuzzing every boundary that takes bytes from outside (fuzz/harness: targets ioctl, cmdbuf,
# spirv, plan, c_abi, server_msg) with libFuzzer, on the stable toolchain.
#
# usage: tools/fuzz.sh [--time SECONDS] [--no-asan] [--jobs N] [--keep-corpus] [TARGET...]
#
#   --time S       fuzz each target for S seconds (default 20); 0: only run the corpus
#   --no-asan      build without AddressSanitizer (faster; the default build has it)
#   --jobs N       libFuzzer processes per target (default 1)
#   --keep-corpus  afterwards, merge what the run found into fuzz/corpus/<target>/ (libFuzzer
#                  -merge=1: the smallest set of inputs with the same coverage), to commit
#
# Coverage: the targets are built with sanitizer-coverage (the -C flags cargo-fuzz passes, all
# stable); AddressSanitizer needs -Zsanitizer=address, which stable rustc accepts with
# RUSTC_BOOTSTRAP=1 (only for this build). Before fuzzing, every input of fuzz/corpus/<target>
# and fuzz/regressions/<target> runs once (-runs=0) under the same build: the corpus under
# ASan. Any crash, leak, timeout or out-of-memory fails the script; its input is left in
# $OUT/artifacts (default target/fuzz-out) for a regression file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TIME=20
ASAN=1
JOBS=1
KEEP=0
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --time) TIME="$2"; shift 2 ;;
    --no-asan) ASAN=0; shift ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --keep-corpus) KEEP=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(ioctl cmdbuf spirv plan c_abi server_msg)

HOST=$(rustc -vV | sed -n 's/^host: //p')
FLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
FLAGS+=" -Cdebug-assertions -Coverflow-checks -Cforce-frame-pointers=yes"
KIND=plain
if [ "$ASAN" = 1 ]; then
    FLAGS+=" -Zsanitizer=address"
    export RUSTC_BOOTSTRAP=1
    KIND=asan
fi
# Built outside the checkout, so CI's clean clones reuse the compiled dependencies (cargo's
# fingerprints decide what to rebuild).
TARGET_DIR="${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agx-winsys/fuzz-target}/$KIND"
OUT="${FUZZ_OUT:-$ROOT/target/fuzz-out}"
mkdir -p "$OUT/artifacts"

T0=$(date +%s)
# --target: the flags reach the targets, not build scripts and proc macros.
RUSTFLAGS="$FLAGS" cargo build --release --locked -q --manifest-path fuzz/libfuzzer/Cargo.toml \
    --target "$HOST" --target-dir "$TARGET_DIR"
echo "fuzz: built ($KIND) in $(( $(date +%s) - T0 )) s"
BIN="$TARGET_DIR/$HOST/release"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

status=0
for t in "${TARGETS[@]}"; do
    corpus="$ROOT/fuzz/corpus/$t"
    regress="$ROOT/fuzz/regressions/$t"
    mkdir -p "$corpus" "$regress"
    # Leaks are checked at exit (LSan), not after every input: the simulator keeps process-wide
    # tables (sync_file registry) that libFuzzer's per-input check takes for leaks, and the
    # per-input check costs a factor of ten in speed.
    opts=(-rss_limit_mb=2048 -timeout=10 -detect_leaks=0 -artifact_prefix="$OUT/artifacts/$t-" -print_final_stats=1)
    # The committed corpus and every past finding, once each.
    if ! "$BIN/$t" "${opts[@]}" -runs=0 "$corpus" "$regress" >"$OUT/$t-corpus.log" 2>&1; then
        echo "fuzz: $t: an input of $corpus or $regress fails (log: $OUT/$t-corpus.log)"
        tail -30 "$OUT/$t-corpus.log"
        status=1
        continue
    fi
    [ "$TIME" -gt 0 ] || { echo "fuzz: $t: corpus ok"; continue; }
    scratch="$OUT/corpus-$t"
    rm -rf "$scratch"
    mkdir -p "$scratch"
    dirs=("$scratch" "$corpus")
    par=()
    # -jobs runs workers that log to ./fuzz-N.log: in $OUT.
    [ "$JOBS" -le 1 ] || par=(-jobs="$JOBS" -workers="$JOBS")
    if ! (cd "$OUT" && "$BIN/$t" "${opts[@]}" -max_total_time="$TIME" "${par[@]+"${par[@]}"}" \
        "${dirs[@]}" >"$OUT/$t.log" 2>&1); then
        echo "fuzz: $t: FINDING (log: $OUT/$t.log, input: $OUT/artifacts/$t-*)"
        grep -E "ERROR|panicked|SUMMARY|Test unit written" "$OUT/$t.log" | head -20
        status=1
        continue
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$t.log" | tail -1)
    cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$OUT/$t.log" | tail -1)
    echo "fuzz: $t: ${TIME}s, ${execs:-?} executions, $cov, $(ls "$scratch" | wc -l) new inputs, no finding"
    if [ "$KEEP" = 1 ]; then
        merged="$OUT/merged-$t"
        rm -rf "$merged"
        mkdir -p "$merged"
        (cd "$OUT" && "$BIN/$t" "${opts[@]}" -merge=1 "$merged" "$corpus" "$scratch" >"$OUT/$t-merge.log" 2>&1)
        rm -f "$corpus"/*
        cp "$merged"/* "$corpus"/
        echo "fuzz: $t: corpus merged: $(ls "$corpus" | wc -l) inputs"
    fi
done
echo "fuzz: total $(( $(date +%s) - T0 )) s"
exit $status
