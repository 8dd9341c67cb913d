#!/usr/bin/env bash
# The test command's Mesa step: builds Mesa (cached, mesa/build.sh) and runs the unmodified
# drivers on the simulated GPU through the LD_PRELOAD render node:
#  - vulkaninfo on honeykrisp shows the device;
#  - mesa/scenarios.sh runs vk_submit and gl_robust on a device server without faults (every
#    submission must complete on the GPU: all their commands completed, as opaque jobs, none
#    faulted, killed or cancelled, every wait returned) and under the fault scenarios of the
#    "before" table (mesa/before.sh), checking what is deterministic about upstream Mesa there;
#  - prints the table of this run (the README's comes from mesa/before.sh).
#
#   mesa/check-sim.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX="$(mesa/build.sh --prefix)"
ICD="$PREFIX/share/vulkan/icd.d/asahi_icd.x86_64.json"
cargo build -q -p agx-render-node
NODE="${CARGO_TARGET_DIR:-$PWD/target}/debug/libagx_render_node.so"
fail() { echo "check-sim: FAIL: $*" >&2; exit 1; }

echo "--- vulkaninfo --summary (honeykrisp on the render node's embedded simulated GPU)"
info="$(LD_PRELOAD="$NODE" VK_ICD_FILENAMES="$ICD" vulkaninfo --summary 2>/dev/null)"
grep -E "deviceName|driverName|driverInfo" <<<"$info"
grep -q "driverName *= Honeykrisp" <<<"$info" || fail "honeykrisp did not enumerate"
grep -q "deviceName *= Apple M1 (G13G" <<<"$info" || fail "unexpected device name"

echo "--- the programs on a device server, with and without faults (mesa/scenarios.sh)"
OUT=build/mesa-scenarios/check.jsonl
mesa/scenarios.sh --prefix "$PREFIX" --label upstream --device policy=kill-inflight,upstream \
    --out "$OUT" >/dev/null
# expect CASE PROGRAM FILTER: that run's record must satisfy the jq filter.
expect() {
    local rec
    rec="$(jq -c --arg c "$1" --arg p "$2" 'select(.case == $c and .program == $p)' "$OUT")"
    [ -n "$rec" ] || fail "no $1 run of $2"
    jq -e "$3" >/dev/null <<<"$rec" ||
        fail "$1 $2: $3 is not true of $(jq -c 'del(.prefix)' <<<"$rec")"
}
# Every submission completed on the simulated GPU, every fence signalled (every wait returned).
all_done='.gpu.commands > 0 and .gpu.completed == .gpu.commands and .gpu.opaque == .gpu.commands
    and .gpu.faults == 0 and .gpu.timeouts == 0 and .gpu.killed == 0 and .gpu.cancelled == 0'
expect baseline vk ".exit == 0 and .summary.driver == \"Honeykrisp\"
    and .summary.submissions == 300 and .summary.render_passes == 150
    and .summary.dispatches == 150 and .summary.waits == 301 and .summary.calls_failed == 0
    and .summary.device_lost == false and ($all_done)"
expect baseline gl ".exit == 0 and (.summary.renderer | startswith(\"Apple M1\"))
    and .summary.robust_access == true and .summary.frames == 300 and .summary.flushes == 300
    and .summary.finishes == 30 and .summary.reset_status == \"none\"
    and .summary.gl_errors == 0 and ($all_done)"
for p in vk gl; do
    # The program's own fault mid-run: one guilty fault on the GPU; upstream Mesa's next submit
    # on the banned queue fails (ECANCELED) and the driver asserts.
    expect own-fault-mid $p '.gpu.faults == 1 and .injections != [] and .signal == 6
        and any(.mesa_messages[]; test("Assertion"))'
    expect own-hang-mid $p '.gpu.timeouts == 1 and .signal == 6'
    # At its last submit: the fault happens and the program never hears of it.
    expect own-fault-last $p '.gpu.faults == 1 and .exit == 0'
    # The evil neighbour faulted during the run; nothing hung (what else happens depends on
    # timing and is reported, not checked).
    expect evil-faults $p '.evil.faults > 0 and .evil.errors == 0 and .gpu.faults > 0
        and .timed_out == false'
    expect evil-hangs $p '.evil.faults > 0 and .evil.errors == 0 and .gpu.timeouts > 0
        and .timed_out == false'
done
expect own-fault-last vk '.summary.device_lost == false and .summary.calls_failed == 0'
# Its own bug: passes into a depth buffer it freed fault at the stale address (the ZLS store,
# unit fragment), found by the GPU's page tables, not injected; then the same assertion.
expect stale-depth vk '.gpu.faults == 1 and .injections == [] and .signal == 6
    and any(.gpu.last_faults[]; test("fault_type: 1, unit: 4, write: true"))'
expect own-fault-last gl '.summary.reset_status == "none"'

echo "--- this run's table"
mesa/table.sh "$OUT"
echo "check-sim: ok"
