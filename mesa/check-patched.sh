#!/usr/bin/env bash
# The patched Mesa (mesa/patches: Gallium asahi on a robust GL ES context, honeykrisp, linked
# to agx-winsys) gets the right answers on the simulated GPU, through the render node and a device server running Mesa's AGX streams as opaque jobs with
# GPU time following the host clock. Each case says what the programs must report:
#
#   clean       no fault: every frame/submission completes, no reset, no device loss, no
#               VK_KHR_device_fault report
#   guilty      a fault injected into the program's own 20th submit: GL reports a guilty reset
#               (and a new context works), Vulkan loses the device with a guilty fault report
#               (VK_EXT_device_fault, and a guilty DEVICE_LOST group from VK_KHR_device_fault)
#   stale       Vulkan render passes into a depth buffer the program freed: the GPU faults on
#               the stale address (nothing injected); the device is lost with a guilty fault
#               report naming that address and a write (VK_KHR_device_fault: a DEVICE_LOST
#               group with MEMORY_ADDRESS, that address)
#   innocent    the evil neighbour faulting every 2 ms under kill-inflight, while 1024x1024
#               passes (0.27 ms of GPU time each, back to back) are in flight: GL reports an
#               innocent reset, Vulkan loses the device with an innocent fault report (and an
#               innocent DEVICE_LOST group without an address, no masked fault)
#   replay      the same neighbour under replay, the programs' work all clear-and-store passes
#               (restartable, and tagged so by the drivers: every frame's command the render
#               node saw carried a RESTARTABLE job info): nothing reported, nothing lost, none
#               of their jobs killed, while the server replayed their work (so it was hit).
#               VK_KHR_device_fault with deviceFaultReportMasked reports each replayed job as
#               a masked fault (no DEVICE_LOST anywhere, one replay at least), and their replay
#               counts add up to the server's replays during the Vulkan run; with
#               deviceFaultDeviceLostOnMasked a replayed job loses the device instead. The
#               server's replay limit is raised to 100 here: on this shared 2-core machine the
#               GPU clock thread can be descheduled for tens of ms, and the neighbour's faults
#               then arrive in a burst that hits one pass more times than the default limit (3)
#               replays; that budget, not restartability, is what would end such a job, and the
#               experiment (mesa/experiment.sh) keeps the default
#
# (mesa/check-sim.sh checks what unmodified Mesa does in the same situations: the "before".)
#
#   mesa/check-patched.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. mesa/sim-lib.sh

fail() { echo "check-patched: FAIL: $*" >&2; exit 1; }
# jq: bit B of the VK_KHR_device_fault flags F (DEVICE_LOST 0, MEMORY_ADDRESS 1, VENDOR 3,
# WATCHDOG_TIMEOUT 4, OVERFLOW 5) is set.
BIT='def bit(f; b): ((f / pow(2; b)) | floor) % 2 == 1;'

expect() {
    local json="$1" filter="$2"
    jq -e "$filter" >/dev/null <<<"$json" || fail "$filter not true of $json"
}

sim_setup
HOST=streams=opaque,clock=host

echo "--- clean: patched Mesa, no fault"
sim_server clean "policy=kill-inflight,$HOST"
out="$(sim_gl patched clean --frames 200)"; echo "$out"
expect "$out" '.frames == 200 and .reset_status == "none" and .gl_errors == 0'
out="$(sim_vk patched clean --submissions 200)"; echo "$out"
expect "$out" '.submissions == 200 and .calls_failed == 0 and .device_lost == false
    and .fault_ext == true'
expect "$out" '.khr_fault == true and .khr_masked_enabled == true and .khr_calls > 0
    and .khr_bad_result == 0 and .khr_entries == 0'

echo "--- guilty: a fault injected into the program's own 20th submit"
sim_server guilty "policy=kill-inflight,$HOST"
export AGX_RENDER_NODE_FAULTS=guilty@20
out="$(sim_gl patched guilty --frames 200)"; echo "$out"
expect "$out" '.reset_status == "guilty" and .new_context == "works" and .gl_errors == 0'
out="$(sim_vk patched guilty --submissions 200)"; echo "$out"
expect "$out" '.device_lost == true and (.lost_at | startswith("vkWaitForFences"))
    and .fault_reported == true and .fault_guilt == "guilty"'
expect "$out" "$BIT"' .khr_bad_result == 0 and .khr_lost == true and .khr_lost_guilt == "guilty"
    and bit(.khr_lost_flags; 0) and bit(.khr_lost_flags; 3) and .khr_masked == 0'
unset AGX_RENDER_NODE_FAULTS

echo "--- guilty, found by the GPU: render passes into a depth buffer the program freed"
sim_server stale "policy=kill-inflight,$HOST"
out="$(sim_vk patched stale --submissions 200 --stale-depth 101)"; echo "$out"
# The VK_EXT_device_fault report names the address the GPU's page tables refused, a write (the
# ZLS store), as the device recorded it.
addr="$(sim_stats stale | jq -r '.last_faults[0] | capture("address: (?<a>[0-9]+)").a')"
expect "$out" ".device_lost == true and .fault_guilt == \"guilty\" and .fault_access == \"write\"
    and .fault_address == \"$(printf '0x%x' "$addr")\""
# VK_KHR_device_fault: the same fault as a DEVICE_LOST group with MEMORY_ADDRESS, that address.
expect "$out" "$BIT .khr_lost == true and .khr_lost_guilt == \"guilty\"
    and bit(.khr_lost_flags; 0) and bit(.khr_lost_flags; 1)
    and .khr_lost_address == \"$(printf '0x%x' "$addr")\""

echo "--- innocent: the evil neighbour under kill-inflight"
sim_server innocent "policy=kill-inflight,$HOST"
sim_evil innocent 2 60
out="$(sim_gl patched innocent --frames 100000 --size 1024 --duration 20)"; echo "$out"
expect "$out" '.reset_status == "innocent" and .new_context != "failed" and .gl_errors == 0'
out="$(sim_vk patched innocent --submissions 100000 --size 1024 --render-only --no-readback \
       --duration 20)"; echo "$out"
expect "$out" '.device_lost == true and .fault_reported == true and .fault_guilt == "innocent"'
expect "$out" "$BIT"' .khr_bad_result == 0 and .khr_lost == true
    and .khr_lost_guilt == "innocent" and bit(.khr_lost_flags; 0)
    and (bit(.khr_lost_flags; 1) | not) and .khr_masked == 0'
kill "$EVIL_PID"

echo "--- replay: the evil neighbour under replay, restartable work"
sim_server replay "policy=replay,replay-limit=100,$HOST"
before="$(sim_stats replay)"
sim_evil replay 2 60
gl="$(AGX_RENDER_NODE_STATS="$SIM_RUN/replay.gl.json" \
      sim_gl patched replay --frames 100000 --size 1024 --duration 3)"; echo "$gl"
expect "$gl" '.frames > 0 and .reset_status == "none" and .gl_errors == 0'
before_vk="$(sim_stats replay)"
vk="$(AGX_RENDER_NODE_STATS="$SIM_RUN/replay.vk.json" \
      sim_vk patched replay --submissions 100000 --size 1024 --render-only --no-readback \
      --duration 3)"; echo "$vk"
after="$(sim_stats replay)"
expect "$vk" '.submissions > 0 and .calls_failed == 0 and .device_lost == false'
# Every Vulkan job the server replayed is a masked fault report, and no report lost the device.
# (The neighbour's own jobs are guilty, never replayed: the server's replays while the Vulkan
# program ran are that program's.)
vk_replays=$(( $(jq .replays <<<"$after") - $(jq .replays <<<"$before_vk") ))
expect "$vk" ".khr_bad_result == 0 and .khr_lost == false and .khr_masked >= 1
    and .khr_masked_min_replays >= 1 and .khr_masked_replays >= .khr_masked
    and (.khr_overflows > 0 or .khr_masked_replays == $vk_replays)"
# deviceFaultDeviceLostOnMasked: the first replayed job loses the device instead (innocent, no
# masked report).
lom="$(sim_vk patched replay --submissions 100000 --size 1024 --render-only --no-readback \
      --duration 3 --lost-on-masked)"; echo "$lom"
expect "$lom" "$BIT"' .khr_lost_on_masked == true and .device_lost == true
    and (.fault_description | contains("deviceFaultDeviceLostOnMasked"))
    and .khr_lost == true and .khr_lost_guilt == "innocent" and bit(.khr_lost_flags; 0)
    and .khr_masked == 0'
kill "$EVIL_PID"
echo "server: before $before, after $after"
glnode="$(sim_node_stats "$SIM_RUN/replay.gl.json")"
vknode="$(sim_node_stats "$SIM_RUN/replay.vk.json")"
echo "render node: GL $glnode, Vulkan $vknode"
replays=$(( $(jq .replays <<<"$after") - $(jq .replays <<<"$before") ))
killed=$(( $(jq .killed <<<"$after") - $(jq .killed <<<"$before") ))
[ "$replays" -gt 0 ] || fail "no replay: the neighbour's faults never hit the programs' work"
[ "$killed" = 0 ] || fail "$killed of the programs' jobs killed under replay"
# Every frame's command tagged restartable (GL's last readback is a copy, which is not);
# every Vulkan command (render passes only).
expect "$glnode" ".restartable >= $(jq .frames <<<"$gl")"
expect "$vknode" '.commands > 0 and .restartable == .commands'
echo "check-patched: ok ($replays replays of the programs' work, none killed; Vulkan: $(jq .khr_masked <<<"$vk") masked fault reports, $vk_replays replays)"
