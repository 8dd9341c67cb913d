# Helpers for running the built Mesa on the simulated GPU, sourced by mesa/check-patched.sh,
# mesa/experiment.sh and mesa/bench-submit.sh: a device server, the render node preload, the
# evil neighbour, and the two test programs, upstream or patched.
#
# Environment:
#   AGXWS_TOOLS  directory holding agx-sim-server, libagx_render_node.so and agx-fault-suite
#                (default: build them, cargo build --release, into the checkout's target/release)
#   MESA_TESTS   where mesa/tests/build.sh puts the programs (default: build/mesa-tests)
# shellcheck shell=bash

SIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MESA_TESTS="${MESA_TESTS:-$SIM_ROOT/build/mesa-tests}"
SIM_RUN="$(mktemp -d "${TMPDIR:-/tmp}/agxws-sim.XXXXXX")"
SIM_PIDS=()

sim_cleanup() {
    local p
    for p in "${SIM_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${SIM_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$SIM_RUN"
}
trap sim_cleanup EXIT

# sim_setup: the tools, both Mesa builds, the programs. Sets TOOLS, PREFIX_upstream,
# PREFIX_patched, and a private XDG_RUNTIME_DIR (the Vulkan loader wants one).
sim_setup() {
    if [ -n "${AGXWS_TOOLS:-}" ]; then
        TOOLS="$AGXWS_TOOLS"
    else
        (cd "$SIM_ROOT" && cargo build --release -q -p agx-sim-server -p agx-render-node \
            -p agx-fault-suite)
        TOOLS="$SIM_ROOT/target/release"
    fi
    for t in agx-sim-server libagx_render_node.so agx-fault-suite; do
        [ -e "$TOOLS/$t" ] || { echo "sim: $TOOLS/$t missing" >&2; exit 1; }
    done
    "$SIM_ROOT/mesa/build.sh" >/dev/null
    PREFIX_upstream="$("$SIM_ROOT/mesa/build.sh" --prefix upstream 2>/dev/null)"
    PREFIX_patched="$("$SIM_ROOT/mesa/build.sh" --prefix patched 2>/dev/null)"
    "$SIM_ROOT/mesa/tests/build.sh" "$MESA_TESTS"
    export XDG_RUNTIME_DIR="$SIM_RUN/xdg"
    mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
}

# sim_server NAME OPTIONS: starts a device server whose shared device has OPTIONS (a sim: spec's
# options); its socket is $SIM_RUN/NAME.sock.
sim_server() {
    local sock="$SIM_RUN/$1.sock"
    # Above normal priority when allowed (root): its GPU clock thread follows the host clock.
    local nice=()
    nice -n -5 true 2>/dev/null && nice=(nice -n -5)
    "${nice[@]}" "$TOOLS/agx-sim-server" --socket "$sock" --device "$2" 2>"$SIM_RUN/$1.log" &
    SIM_PIDS+=($!)
    for _ in $(seq 100); do
        [ -S "$sock" ] && return 0
        sleep 0.05
    done
    echo "sim: the server $1 did not start: $(cat "$SIM_RUN/$1.log")" >&2
    exit 1
}

# sim_stats NAME: the shared device's counters (one JSON line).
sim_stats() {
    "$TOOLS/agx-fault-suite" stats --device "unix:$SIM_RUN/$1.sock"
}

# sim_evil NAME EVERY_MS SECONDS: the evil neighbour on server NAME, in the background; its
# summary goes to $SIM_RUN/NAME.evil.json. Sets EVIL_PID. Its faults are unmapped and read-only
# writes, not hangs: a hang runs until the watchdog (50 ms), so the neighbour's next faults would
# kill or replay its own hanging job, and the server's kill and replay counts would no longer be
# the other programs' alone.
sim_evil() {
    nice -n 10 "$TOOLS/agx-fault-suite" evil --device "unix:$SIM_RUN/$1.sock" --every "$2" \
        --kinds unmapped,read-only --duration "$3" >"$SIM_RUN/$1.evil.json" 2>/dev/null &
    EVIL_PID=$!
    SIM_PIDS+=("$EVIL_PID")
}

# sim_run PROGRAM ARGS...: runs a test program (an `env ... program args` command line: the
# render node is preloaded into the program only), prints its summary line, or
# {"crashed": true, "exit": N} when it printed none (an abort, a timeout). Programs run at a
# lower priority than the server: its GPU clock thread follows the host clock, and starving it
# would make the GPU's time jump (see mesa/check-patched.sh).
sim_run() {
    local f="$SIM_RUN/out.$BASHPID" rc=0 line
    timeout 120 nice -n 10 "$@" >"$f" 2>>"$SIM_RUN/programs.log" || rc=$?
    line="$(tail -n1 "$f")"
    rm -f "$f"
    if [ -n "$line" ] && jq -e .program >/dev/null 2>&1 <<<"$line"; then
        echo "$line"
    else
        echo "{\"crashed\": true, \"exit\": $rc}"
    fi
}

# sim_gl VARIANT NAME [gl_robust options]: gl_robust on VARIANT's Mesa through the render node
# on server NAME; prints its summary (whatever its exit status: a reset is an answer, which the
# caller checks). AGX_RENDER_NODE_* in the environment pass through.
sim_gl() {
    local prefix="PREFIX_$1" name="$2"
    shift 2
    sim_run env AGX_RENDER_NODE_DEVICE="unix:$SIM_RUN/$name.sock" \
        LD_PRELOAD="$TOOLS/libagx_render_node.so" LD_LIBRARY_PATH="${!prefix}/lib" \
        "$MESA_TESTS/gl_robust" "$@"
}

# sim_vk VARIANT NAME [vk_submit options]: vk_submit likewise (honeykrisp).
sim_vk() {
    local prefix="PREFIX_$1" name="$2"
    shift 2
    sim_run env AGX_RENDER_NODE_DEVICE="unix:$SIM_RUN/$name.sock" \
        LD_PRELOAD="$TOOLS/libagx_render_node.so" \
        VK_ICD_FILENAMES="${!prefix}/share/vulkan/icd.d/asahi_icd.x86_64.json" \
        "$MESA_TESTS/vk_submit" "$@"
}

# sim_node_stats PATH: the render node's counts of every process that ran with
# AGX_RENDER_NODE_STATS=PATH, summed (one JSON object).
sim_node_stats() {
    cat "$1".* 2>/dev/null | jq -sc '{processes: length, submits: (map(.submits) | add // 0),
        accepted: (map(.accepted) | add // 0), commands: (map(.commands) | add // 0),
        restartable: (map(.restartable) | add // 0)}'
}
