#!/usr/bin/env bash
# The seed experiment (README, "One GPU, several processes"): real programs under the Vulkan
# layer on lavapipe, their shadow jobs on the shared GPU of a device server (host clock), while
# another process (`agx-fault-suite evil`) faults on that GPU every few milliseconds; under the
# `kill-inflight` and `replay` recovery policies. Prints a markdown table: frames rendered,
# faults the evil process made, faults that hit the program's work (as the layer saw them),
# replays, device losses, and whether the frames were right (the frames' hashes against a run of
# the same program on the same server with no evil process).
#
#   tools/seed-experiment.sh [--frames N] [--every MS] [--apps "vkcube gl"] [--out FILE] [--check]
#
# --check (CI): exit 1 unless, under replay, every program rendered all its frames right with
# no device lost and every fault that hit it replayed (at least one hit), and under
# kill-inflight every program lost its device at a hit.
#
# Programs: vkcube (vulkan-tools; a Vulkan program presenting every frame, its frames hashed by
# the layer, AGX_FAULT_FRAMES), and GL through Mesa's zink on the same Vulkan driver
# (agx-gl-frames, which reads every frame back and prints its hash). Both run on Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."

FRAMES=120
EVERY=5
APPS="vkcube gl"
OUT=""
CHECK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --frames) FRAMES="$2"; shift 2 ;;
        --every) EVERY="$2"; shift 2 ;;
        --apps) APPS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --check) CHECK=1; shift ;;
        *) echo "usage: $0 [--frames N] [--every MS] [--apps \"vkcube gl\"] [--out FILE] [--check]" >&2; exit 2 ;;
    esac
done
for tool in Xvfb vkcube jq; do
    command -v "$tool" >/dev/null || {
        echo "seed-experiment: $tool is missing (apt-get install xvfb vulkan-tools mesa-utils libgl1-mesa-dri jq)" >&2
        exit 2
    }
done

cargo build --release -q -p agx-sim-server -p agx-fault-suite -p agx-vk-layer
T="$PWD/target/release"

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

Xvfb -displayfd 3 -screen 0 640x480x24 -nolisten tcp 3>"$work/display" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/display" ] && break; sleep 0.05; done
DISPLAY=":$(cat "$work/display")"
mkdir -m 700 "$work/xdg"

# run_app APP SOCKET TAG: runs APP under the layer with its shadow jobs on SOCKET's shared
# GPU; leaves $work/TAG.{stats,frames,out,err,code}.
run_app() {
    local app="$1" sock="$2" tag="$3" code=0
    rm -f "$work/$tag".*
    local env=(DISPLAY="$DISPLAY" XDG_RUNTIME_DIR="$work/xdg"
               VK_LAYER_PATH="$T" VK_INSTANCE_LAYERS=VK_LAYER_AGX_fault
               AGX_FAULT_PLAN=neighbor-every@1 AGX_FAULT_DEVICE="unix:$sock"
               AGX_FAULT_STATS="$work/$tag.stats" AGX_FAULT_FRAMES="$work/$tag.frames")
    case "$app" in
        vkcube)
            env "${env[@]}" timeout 300 vkcube --c "$FRAMES" \
                >"$work/$tag.out" 2>"$work/$tag.err" || code=$? ;;
        gl)
            env+=(MESA_LOADER_DRIVER_OVERRIDE=zink LIBGL_ALWAYS_SOFTWARE=1)
            env "${env[@]}" timeout 300 "$T/agx-gl-frames" --frames "$FRAMES" --mode hash \
                >"$work/$tag.out" 2>"$work/$tag.err" || code=$?
            grep '^frame ' "$work/$tag.out" | awk '{print $2, $3}' >"$work/$tag.frames" || true ;;
    esac
    echo "$code" >"$work/$tag.code"
}

frames_of() { # the frames a run rendered (hashed)
    if [ -e "$work/$1.frames" ]; then wc -l <"$work/$1.frames"; else echo 0; fi
}

stat_of() { jq -r ".$2 // \"?\"" "$work/$1.stats" 2>/dev/null || echo "?"; }

rows=()
failed=()
for policy in kill-inflight replay; do
    sock="$work/$policy.sock"
    "$T/agx-sim-server" --socket "$sock" --device "policy=$policy,clock=host" 2>/dev/null &
    server=$!
    pids+=("$server")
    for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
    for app in $APPS; do
        # The reference: the same program on the same GPU, nobody faulting.
        run_app "$app" "$sock" "$app-$policy-ref"
        # The experiment: the evil process faulting every $EVERY ms meanwhile.
        mkfifo "$work/evil.in"
        "$T/agx-fault-suite" evil --device "unix:$sock" --every "$EVERY" --until-eof \
            <"$work/evil.in" >"$work/evil.json" &
        evil=$!
        exec 3>"$work/evil.in"
        run_app "$app" "$sock" "$app-$policy"
        exec 3>&-
        wait "$evil" || true
        rm -f "$work/evil.in"
        tag="$app-$policy"
        frames="$(frames_of "$tag")"
        right="no frames"
        if [ -s "$work/$tag.frames" ] && [ -s "$work/$tag-ref.frames" ]; then
            n="$(wc -l <"$work/$tag.frames")"
            # Frames are compared by their index: the same frame must have the same pixels.
            if cmp -s <(awk '{print $NF}' "$work/$tag.frames") \
                      <(head -n "$n" "$work/$tag-ref.frames" | awk '{print $NF}'); then
                right="yes ($n/$n)"
            else
                bad="$(paste -d' ' <(awk '{print $NF}' "$work/$tag.frames") \
                                  <(head -n "$n" "$work/$tag-ref.frames" | awk '{print $NF}') \
                       | awk '$1 != $2' | wc -l)"
                right="no ($bad of $n differ)"
            fi
        fi
        made="$(jq -r '.faults' "$work/evil.json" 2>/dev/null || echo "?")"
        name="$app"
        [ "$app" = gl ] && name="GL on zink (agx-gl-frames)"
        hits="$(stat_of "$tag" faults_injected)"
        replays="$(stat_of "$tag" replays)"
        lost="$(stat_of "$tag" devices_lost)"
        code="$(cat "$work/$tag.code")"
        rows+=("| $name | $policy | $frames | $made | $hits | $replays | $lost | $right | $code |")
        case "$policy" in
            replay)
                [ "$lost" = 0 ] && [ "$code" = 0 ] && [ "$frames" = "$FRAMES" ] \
                    && [ "$right" = "yes ($FRAMES/$FRAMES)" ] && [ "$hits" != "?" ] \
                    && [ "$hits" -ge 1 ] && [ "$replays" = "$hits" ] \
                    || failed+=("$name under replay: $frames frames, right: $right, $hits hits, $replays replays, $lost lost, exit $code") ;;
            kill-inflight)
                [ "$lost" = 1 ] \
                    || failed+=("$name under kill-inflight: $lost device losses (expected one, at the first hit)") ;;
        esac
    done
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
done

{
    echo "| program | policy | frames rendered | faults made (evil) | faults that hit its work | replays | device losses | frames right | exit |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
    printf '%s\n' "${rows[@]}"
    echo
    echo "(${FRAMES} frames asked; evil process faulting every ${EVERY} ms: unmapped write, read-only write, hang in turn; host clock; lavapipe)"
} | tee ${OUT:+"$OUT"}
if [ "$CHECK" = 1 ] && [ ${#failed[@]} -gt 0 ]; then
    printf 'seed-experiment: FAIL: %s\n' "${failed[@]}" >&2
    exit 1
fi
