#!/usr/bin/env bash
# Runs Mesa's test programs (mesa/tests: vk_submit on honeykrisp, gl_robust on Gallium asahi)
# on the simulated GPU of a device server, through the LD_PRELOAD render node, under fault
# scenarios, and writes one JSON object per run: what the program printed (its summary), how it
# ended (exit code, signal, Mesa's own message), the injections, the evil neighbour's summary
# and the GPU's counters. mesa/table.sh turns that into a table; mesa/before.sh is the one
# command behind the "before" table in mesa/README.md.
#
#   mesa/scenarios.sh [--prefix DIR] [--label NAME] [--device OPTIONS] [--out FILE]
#                     [--programs "vk gl"] [--cases "baseline ..."]
#
#   --prefix   the Mesa install prefix to run (default: mesa/build.sh --prefix, the unmodified
#              pinned Mesa); its lib/ goes first on LD_LIBRARY_PATH, its asahi ICD is the Vulkan
#              driver. Anything built like mesa/build.sh builds (a patched Mesa too) works.
#   --label    a name for that Mesa in the results (default: upstream)
#   --device   the simulated GPU's options besides streams=opaque,clock=host, which every run
#              has (default: policy=kill-inflight,upstream: the asahi kernel today)
#   --out      the JSON lines (default: build/mesa-scenarios/<label>.jsonl)
#
# Cases (each on a fresh server, for each program):
#   baseline        no fault: how many SUBMIT ioctls the program makes (N) comes from here
#   evil-faults     the evil neighbour (agx-fault-suite evil, another process on the same GPU)
#                   faults every 5 ms (unmapped and read-only writes) while the program runs
#   evil-hangs      the evil neighbour's jobs hang (the 50 ms watchdog ends each one)
#   own-fault-mid   the program's own command faults: AGX_RENDER_NODE_FAULTS=guilty@(N/2)
#   own-hang-mid    the program's own command hangs: hang@(N/2)
#   own-fault-last  the program's last command faults: guilty@N
#   stale-depth     (vk_submit only) the program's own bug: from its 151st submission on, its
#                   render passes use a depth buffer whose memory it freed (--stale-depth 151):
#                   the GPU faults on the stale address, found by the page tables
#
# Every program run is bounded (PROGRAM_TIMEOUT, default 120 s: a run still going then is
# reported as a hang). Exit: 0 when every run was made (whatever Mesa did), 1 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

PREFIX="" LABEL=upstream DEVICE_OPTS="policy=kill-inflight,upstream" OUT=""
PROGRAMS="vk gl"
CASES="baseline evil-faults evil-hangs own-fault-mid own-hang-mid own-fault-last stale-depth"
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --label) LABEL="$2"; shift 2 ;;
        --device) DEVICE_OPTS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --programs) PROGRAMS="$2"; shift 2 ;;
        --cases) CASES="$2"; shift 2 ;;
        *) echo "scenarios: unknown argument $1" >&2; exit 1 ;;
    esac
done
[ -n "$PREFIX" ] || PREFIX="$(mesa/build.sh --prefix)"
OUT="${OUT:-build/mesa-scenarios/$LABEL.jsonl}"
PROGRAM_TIMEOUT="${PROGRAM_TIMEOUT:-120}"
ICD="$PREFIX/share/vulkan/icd.d/asahi_icd.x86_64.json"
[ -f "$ICD" ] && [ -f "$PREFIX/lib/libEGL.so.1" ] || {
    echo "scenarios: $PREFIX is not a Mesa prefix with honeykrisp and EGL" >&2
    exit 1
}

# The render node, the device server and the evil neighbour (debug builds: what the test
# command has built already).
cargo build -q -p agx-render-node -p agx-sim-server -p agx-fault-suite
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
TESTS="$ROOT/build/mesa-tests"
mesa/tests/build.sh "$TESTS" >/dev/null

WORK="$(mktemp -d /tmp/agx-mesa-scenarios.XXXXXX)"
SERVER_PID="" EVIL_PID=""
cleanup() {
    [ -n "$EVIL_PID" ] && kill "$EVIL_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    wait 2>/dev/null
    # KEEP=1 keeps each run's logs (server, evil, the program's stdout and stderr).
    if [ "${KEEP:-0}" = 1 ]; then echo "scenarios: logs in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$(dirname "$OUT")"
: >"$OUT"

program_cmd() {
    case "$1" in
        vk) echo "$TESTS/vk_submit --submissions 300 --size 2880" ;;
        gl) echo "$TESTS/gl_robust --frames 300 --size 2880" ;;
        *) echo "scenarios: unknown program $1" >&2; exit 1 ;;
    esac
}

# run_case CASE PROG EVIL_ARGS FAULT_PLAN [PROGRAM_ARGS...]: one run on a fresh server; appends
# its JSON line.
run_case() {
    local case="$1" prog="$2" evil="$3" plan="$4"
    shift 4
    local d="$WORK/$case-$prog"
    mkdir -p "$d"
    local sock="$d/gpu.sock" opts="streams=opaque,clock=host,$DEVICE_OPTS"
    "$BIN/agx-sim-server" --socket "$sock" --device "$opts" 2>"$d/server.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    [ -S "$sock" ] || { echo "scenarios: the device server did not start" >&2; exit 1; }

    local w=""
    if [ -n "$evil" ]; then
        # It makes faults until its standard input (a FIFO we hold open) ends.
        mkfifo "$d/evil.in"
        # shellcheck disable=SC2086
        "$BIN/agx-fault-suite" evil --device "unix:$sock" $evil --until-eof \
            <"$d/evil.in" >"$d/evil.json" 2>"$d/evil.log" &
        EVIL_PID=$!
        exec {w}>"$d/evil.in"
        sleep 0.2
    fi

    local start=$SECONDS rc=0
    # (The braces' 2>/dev/null keeps the shell's own "Aborted" notice out of our output.)
    # shellcheck disable=SC2046
    { env AGX_RENDER_NODE_DEVICE="unix:$sock" AGX_RENDER_NODE_FAULTS="$plan" \
        LD_PRELOAD="$BIN/libagx_render_node.so" VK_ICD_FILENAMES="$ICD" \
        LD_LIBRARY_PATH="$PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        timeout "$PROGRAM_TIMEOUT" $(program_cmd "$prog") "$@" >"$d/out" 2>"$d/err" || rc=$?; } 2>/dev/null
    local secs=$((SECONDS - start))

    local evil_json=null
    if [ -n "$evil" ]; then
        exec {w}>&-
        wait "$EVIL_PID" || true
        EVIL_PID=""
        evil_json="$(tail -n1 "$d/evil.json")"
        [ -n "$evil_json" ] || evil_json=null
    fi
    local gpu
    gpu="$("$BIN/agx-fault-suite" stats --device "unix:$sock")"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""

    # The program's summary is its last stdout line, if it got that far.
    local summary
    summary="$(tail -n1 "$d/out")"
    { [ -n "$summary" ] && jq -e 'type == "object"' >/dev/null 2>&1 <<<"$summary"; } || summary=null
    jq -nc --arg case "$case" --arg program "$prog" --arg mesa "$LABEL" \
        --arg prefix "$PREFIX" --arg device "$opts" --arg plan "$plan" --arg evil "$evil" \
        --arg args "$*" \
        --argjson exit "$rc" --argjson seconds "$secs" --argjson timeout "$PROGRAM_TIMEOUT" \
        --argjson summary "$summary" --argjson evil_summary "$evil_json" --argjson gpu "$gpu" \
        --rawfile err "$d/err" '
        {case: $case, program: $program, mesa: $mesa, prefix: $prefix, device: $device,
         fault_plan: $plan, evil_args: $evil, program_args: $args, exit: $exit,
         signal: (if $exit > 128 and $exit != 124 then $exit - 128 else null end),
         timed_out: ($exit == 124), seconds: $seconds, timeout: $timeout,
         summary: $summary,
         # What Mesa (and the node) said: its failed-ioctl and assertion lines, the injections.
         mesa_messages: [$err | split("\n")[] | select(test("Assertion|failed|DEVICE_LOST|lost"))
                         | select(test("^MESA-EGL: warning") | not)
                         | select(test("^agx-render-node") | not)] | .[:4],
         injections: [$err | split("\n")[] | select(test("^agx-render-node: submit"))],
         evil: $evil_summary, gpu: $gpu}' >>"$OUT"
    echo "scenarios: $LABEL $case $prog: exit $rc, $(jq -c '{completed, killed, cancelled, faults, timeouts}' <<<"$gpu")" >&2
}

for prog in $PROGRAMS; do
    submits=""
    for case in $CASES; do
        case "$case" in
            baseline) run_case baseline "$prog" "" "" ;;
            evil-faults) run_case evil-faults "$prog" "--every 5 --kinds unmapped,read-only" "" ;;
            evil-hangs) run_case evil-hangs "$prog" "--every 5 --kinds hang" "" ;;
            own-*)
                if [ -z "$submits" ]; then
                    # N from a baseline run (made now if the case list has none).
                    grep -q "\"case\":\"baseline\",\"program\":\"$prog\"" "$OUT" ||
                        run_case baseline "$prog" "" ""
                    submits="$(jq -s --arg p "$prog" \
                        'map(select(.case == "baseline" and .program == $p))[0].gpu.submits' "$OUT")"
                fi
                case "$case" in
                    own-fault-mid) run_case "$case" "$prog" "" "guilty@$((submits / 2))" ;;
                    own-hang-mid) run_case "$case" "$prog" "" "hang@$((submits / 2))" ;;
                    own-fault-last) run_case "$case" "$prog" "" "guilty@$submits" ;;
                    *) echo "scenarios: unknown case $case" >&2; exit 1 ;;
                esac
                ;;
            stale-depth)
                if [ "$prog" = vk ]; then run_case stale-depth vk "" "" --stale-depth 151; fi ;;
            *) echo "scenarios: unknown case $case" >&2; exit 1 ;;
        esac
    done
done
echo "$OUT"
