#!/usr/bin/env bash
# CPU cost of the driver's submit path, patched Mesa against upstream Mesa, in one run: on a
# device server (virtual clock, opaque AGX streams, the fault-report extension, replay), through
# the render node, a submit-bound loop of tiny frames (32x32 clear-and-draw, nothing waits on
# the GPU for long):
#   honeykrisp  vk_submit --render-only --no-readback: the thread CPU time inside vkQueueSubmit
#   Gallium     gl_robust --finish-every 0: the thread CPU time inside glFlush (each flush
#               submits the frame's batch and cleans up finished ones)
# Runs alternate upstream, patched, upstream, ... ROUNDS times (the machine is shared: side by
# side in one run; each round's patched run is compared with that round's upstream run, and the
# table gives the median of those ratios). Both include the render node's client side of each
# ioctl (the same for both builds), not the server's work.
#
#   mesa/bench-submit.sh [--rounds R] [--frames N]    (default 15 rounds of 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=15
FRAMES=3000
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --frames) FRAMES="$2"; shift 2 ;;
        *) echo "usage: $0 [--rounds R] [--frames N]" >&2; exit 2 ;;
    esac
done
. mesa/sim-lib.sh
sim_setup >&2
sim_server bench "policy=replay,streams=opaque"

out="$SIM_RUN/bench.json"
for r in $(seq "$ROUNDS"); do
    for variant in upstream patched; do
        vk="$(sim_vk "$variant" bench --submissions "$FRAMES" --render-only --no-readback \
              --size 32 --in-flight 8)"
        gl="$(sim_gl "$variant" bench --frames "$FRAMES" --size 32 --finish-every 0)"
        jq -cn --arg v "$variant" --argjson vk "$vk" --argjson gl "$gl" \
            '{variant: $v, vk_ok: ($vk.calls_failed == 0), gl_ok: ($gl.gl_errors == 0),
              vk_ns: $vk.submit_cpu_ns, gl_ns: $gl.flush_cpu_ns}' | tee -a "$out" >&2
    done
done
jq -rs '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                       else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def q(p): sort | .[(length - 1) * p | floor];
    def us: . / 1000 * 100 | round / 100;
    if any(.[]; (.vk_ok and .gl_ok) | not) then error("a run failed") else . end
    | (map(select(.variant == "upstream"))) as $u | (map(select(.variant == "patched"))) as $p
    | [["honeykrisp, CPU per vkQueueSubmit", "vk_ns"], ["Gallium asahi, CPU per glFlush", "gl_ns"]][]
    | .[1] as $k
    | ($u | map(.[$k])) as $uu | ($p | map(.[$k])) as $pp
    | ([range($uu | length)] | map($pp[.] / $uu[.])) as $ratios
    | "| \(.[0]) | \($uu | median | us) µs (\($uu | q(0.25) | us)-\($uu | q(0.75) | us)) | \($pp | median | us) µs (\($pp | q(0.25) | us)-\($pp | q(0.75) | us)) | \((($ratios | median) - 1) * 1000 | round / 10)% (\((($ratios | q(0.25)) - 1) * 1000 | round / 10)% to \((($ratios | q(0.75)) - 1) * 1000 | round / 10)%) |"
' "$out" | { echo "| loop ($ROUNDS rounds of $FRAMES frames) | upstream median (quartiles) | patched median (quartiles) | patched vs upstream: median of the rounds' ratios (quartiles) |"; echo "| --- | ---: | ---: | ---: |"; cat; }
