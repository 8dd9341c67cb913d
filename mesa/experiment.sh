#!/usr/bin/env bash
# The seed's experiment with real Mesa: on one simulated GPU (a device server whose GPU time
# follows the host clock, running Mesa's AGX streams as opaque jobs), a GL renderer (gl_robust:
# Gallium asahi, a robust context, 1024x1024 clear-and-draw frames) and a Vulkan renderer
# (vk_submit --render-only --no-readback: honeykrisp, 1024x1024 clear-and-draw render passes)
# keep submitting frames for SECONDS while the evil neighbour faults every EVERY ms; a renderer
# whose context is reset or whose device is lost starts again (a new process), as an
# application would. Under kill-inflight (what the asahi kernel does today) and replay (the
# fault-report extension), with upstream Mesa and with the patched Mesa. Prints a markdown
# table (and the raw numbers as JSON lines on stderr).
#
#   mesa/experiment.sh [--seconds S] [--every MS] [--readme]    (default 20 s, 3 ms)
#
#   --readme   write the table into README.md between its mesa-experiment markers instead of
#              printing it
#
# Columns: frames each renderer got the kernel to accept (submits, as the render node counted
# them: one per frame; a GL run that ends normally also reads two pixels back); what each GL run
# (process) reported at its end: a reset, guilty / innocent / unknown, or none (upstream Mesa
# reports none whatever happens, when it lives to report at all); Vulkan
# runs losing the device, of all Vulkan runs, and the guilt their VK_EXT_device_fault report
# gave; renderer processes that died without a summary (an assertion: upstream Mesa
# asserts when the kernel refuses a submit to a banned queue); the renderers' jobs the server
# killed (innocent victims: under upstream Mesa, frames silently lost) and replayed; the share of
# the renderers' hardware commands that carried a RESTARTABLE job info, as the render node saw
# them go to the kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=20
EVERY=3
README=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
        --every) EVERY="$2"; shift 2 ;;
        --readme) README=1; shift ;;
        *) echo "usage: $0 [--seconds S] [--every MS] [--readme]" >&2; exit 2 ;;
    esac
done
. mesa/sim-lib.sh
sim_setup >&2

now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic; is EXPR: a floating-point condition.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
is() { awk "BEGIN { exit !($1) }"; }
# renderer KIND VARIANT SERVER END OUT: runs the renderer again and again until the time END,
# appending each run's summary to OUT.
renderer() {
    local kind="$1" variant="$2" server="$3" end="$4" out="$5" left
    while left="$(calc "$end - $(now)")"; is "$left > 0.2"; do
        if [ "$kind" = gl ]; then
            sim_gl "$variant" "$server" --frames 1000000 --size 1024 --duration "$left" >>"$out"
        else
            sim_vk "$variant" "$server" --submissions 1000000 --size 1024 --render-only \
                --no-readback --duration "$left" >>"$out"
        fi
    done
}

TABLE="$SIM_RUN/table.md"
{
echo "| policy | Mesa | GL frames | GL runs reporting a reset: guilty / innocent / unknown / none | Vulkan frames | Vulkan runs losing the device / runs (fault report: guilty / innocent) | renderer crashes (GL / Vulkan) | renderers' jobs killed | replayed | tagged restartable (GL / Vulkan) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for policy in kill-inflight replay; do
    for variant in upstream patched; do
        name="$policy-$variant"
        sim_server "$name" "policy=$policy,streams=opaque,clock=host"
        before="$(sim_stats "$name")"
        sim_evil "$name" "$EVERY" $((SECONDS_PER_RUN + 30))
        end="$(calc "$(now) + $SECONDS_PER_RUN")"
        gl="$SIM_RUN/$name.gl.json" vk="$SIM_RUN/$name.vk.json"
        : >"$gl"; : >"$vk"
        AGX_RENDER_NODE_STATS="$SIM_RUN/$name.gl.node.json" \
            renderer gl "$variant" "$name" "$end" "$gl" &
        glpid=$!
        AGX_RENDER_NODE_STATS="$SIM_RUN/$name.vk.node.json" \
            renderer vk "$variant" "$name" "$end" "$vk" &
        vkpid=$!
        wait "$glpid" "$vkpid"
        kill "$EVIL_PID"
        wait "$EVIL_PID" 2>/dev/null || true
        after="$(sim_stats "$name")"
        glnode="$(sim_node_stats "$SIM_RUN/$name.gl.node.json")"
        vknode="$(sim_node_stats "$SIM_RUN/$name.vk.node.json")"
        row="$(jq -sc --argjson b "$before" --argjson a "$after" --argjson glnode "$glnode" \
            --argjson vknode "$vknode" --slurpfile vkruns "$vk" --arg policy "$policy" \
            --arg mesa "$variant" '
            def share(n): if n.commands > 0 then (n.restartable * 100 / n.commands | floor)
                          else 0 end;
            def runs(r): r | map(select(.crashed | not));
            {policy: $policy, mesa: $mesa,
             gl_runs: length, gl_crashes: (map(select(.crashed)) | length),
             gl_frames: $glnode.accepted, gl_processes: $glnode.processes,
             gl_guilty: (runs(.) | map(select(.reset_status == "guilty")) | length),
             gl_innocent: (runs(.) | map(select(.reset_status == "innocent")) | length),
             gl_unknown: (runs(.) | map(select(.reset_status == "unknown")) | length),
             gl_none: (runs(.) | map(select(.reset_status == "none")) | length),
             vk_runs: ($vkruns | length), vk_crashes: ($vkruns | map(select(.crashed)) | length),
             vk_frames: $vknode.accepted, vk_processes: $vknode.processes,
             vk_lost: (runs($vkruns) | map(select(.device_lost)) | length),
             vk_guilty: (runs($vkruns) | map(select(.fault_guilt == "guilty")) | length),
             vk_innocent: (runs($vkruns) | map(select(.fault_guilt == "innocent")) | length),
             killed: ($a.killed - $b.killed), replayed: ($a.replays - $b.replays),
             faults: ($a.faults + $a.timeouts - $b.faults - $b.timeouts),
             gl_restartable: share($glnode), vk_restartable: share($vknode)}' "$gl")"
        echo "$row" >&2
        jq -r '"| \(.policy) | \(.mesa) | \(.gl_frames) | \(.gl_guilty) / \(.gl_innocent) / \(.gl_unknown) / \(.gl_none) | \(.vk_frames) | \(.vk_lost) / \(.vk_runs) (\(.vk_guilty) / \(.vk_innocent)) | \(.gl_crashes) / \(.vk_crashes) | \(.killed) | \(.replayed) | \(.gl_restartable)% / \(.vk_restartable)% |"' <<<"$row"
    done
done
} >"$TABLE"

block="$(
    echo "<!-- mesa-experiment: generated by mesa/experiment.sh --readme; do not edit by hand -->"
    echo
    echo "\`mesa/experiment.sh --seconds $SECONDS_PER_RUN --every $EVERY\`, run on $(date -u +%Y-%m-%d):"
    echo "$SECONDS_PER_RUN s per row, the evil neighbour faulting every $EVERY ms."
    echo
    cat "$TABLE"
    echo
    echo "<!-- mesa-experiment end -->"
)"
if [ "$README" = 1 ]; then
    mesa/put-block.sh README.md mesa-experiment <<<"$block"
    echo "experiment: table written to README.md" >&2
else
    cat "$TABLE"
fi
