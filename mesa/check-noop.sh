#!/usr/bin/env bash
# Builds Mesa (cached, mesa/build.sh) and the test programs (mesa/tests), then runs them on
# Mesa's own asahi noop drm-shim, where every job "succeeds" without executing: honeykrisp must
# enumerate in vulkaninfo, vk_submit must complete all its render/compute submissions and
# waits, gl_robust must draw and flush on a robust surfaceless EGL context with no reset and no
# GL error. Results (pixels, buffer contents) cannot be right there and are not checked.
# Both builds run: upstream, and patched (which submits directly there: agx-winsys refuses the
# shim, whose GET_PARAMS answers the fault-report probe with a stale errno, not EINVAL).
#
#   mesa/check-noop.sh [BUILD_DIR]   (default BUILD_DIR: build/mesa-tests)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-build/mesa-tests}"

mesa/build.sh >/dev/null
mesa/tests/build.sh "$OUT"

fail() { echo "check-noop: FAIL: $*" >&2; exit 1; }
# expect JSON FILTER: the program's summary (last stdout line) must satisfy the jq filter.
expect() {
    local json="$1" filter="$2"
    jq -e "$filter" >/dev/null <<<"$json" || fail "$filter not true of $json"
}

for variant in upstream patched; do
    PREFIX="$(mesa/build.sh --prefix "$variant" 2>/dev/null)"
    ICD="$PREFIX/share/vulkan/icd.d/asahi_icd.x86_64.json"
    SHIM="$PREFIX/lib/libasahi_noop_drm_shim.so"

    echo "--- $variant: vulkaninfo --summary (honeykrisp on the noop shim)"
    info="$(LD_PRELOAD="$SHIM" VK_ICD_FILENAMES="$ICD" vulkaninfo --summary 2>/dev/null)"
    grep -E "deviceName|driverName|driverInfo" <<<"$info"
    grep -q "driverName *= Honeykrisp" <<<"$info" || fail "honeykrisp did not enumerate"
    grep -q "deviceName *= Apple M1 (G13G A0)" <<<"$info" || fail "unexpected device name"

    echo "--- $variant: vk_submit (300 submissions: 150 render passes, 150 dispatches)"
    out="$(LD_PRELOAD="$SHIM" VK_ICD_FILENAMES="$ICD" "$OUT/vk_submit" --submissions 300 \
           2>/dev/null | tail -n1)"
    echo "$out"
    expect "$out" '.driver == "Honeykrisp" and .submissions == 300 and .render_passes == 150
        and .dispatches == 150 and .calls_failed == 0 and .device_lost == false'

    echo "--- $variant: gl_robust (300 frames, flushes only: the noop shim cannot export a sync_file)"
    out="$(LD_PRELOAD="$SHIM" LD_LIBRARY_PATH="$PREFIX/lib" "$OUT/gl_robust" --frames 300 \
           --finish-every 0 2>/dev/null | tail -n1)"
    echo "$out"
    expect "$out" '(.renderer | startswith("Apple M1")) and .robust_access == true
        and .frames == 300 and .flushes == 300 and .reset_status == "none" and .gl_errors == 0'
done
echo "check-noop: ok"
