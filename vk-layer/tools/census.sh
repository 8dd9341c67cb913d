#!/usr/bin/env bash
# The restartability census of real programs (BENCHMARKS.md, "Vulkan layer on real
# applications"): each program runs on lavapipe through the real loader under Xvfb with
# VK_LAYER_AGX_fault and AGX_FAULT_PLAN=neighbor-every@1 (every submission hit, so every one
# analysed), GL programs on zink; prints each program's AGX_FAULT_STATS.
#
# Usage: vk-layer/tools/census.sh [PLAN]   (from the checkout root, after
#        `cargo build --release -p agx-vk-layer`)
set -euo pipefail
cd "$(dirname "$0")/../.."
plan=${1:-neighbor-every@1}
lib=target/release
[ -e "$lib/libagx_vk_layer.so" ] || { echo "build first: cargo build --release -p agx-vk-layer" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill "$xvfb" 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -m 0700 "$tmp/xdg"
Xvfb -displayfd 3 -screen 0 640x480x24 -nolisten tcp 3>"$tmp/display" 2>/dev/null &
xvfb=$!
for _ in $(seq 50); do [ -s "$tmp/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$tmp/display")" XDG_RUNTIME_DIR="$tmp/xdg"
export VK_LAYER_PATH="$PWD/$lib" VK_INSTANCE_LAYERS=VK_LAYER_AGX_fault AGX_FAULT_PLAN="$plan"

# run NAME SECONDS ZINK COMMAND...: SECONDS > 0 ends the program with Escape after that long.
run() {
    local name=$1 secs=$2 zink=$3; shift 3
    local env=()
    [ "$zink" = zink ] && env=(MESA_LOADER_DRIVER_OVERRIDE=zink LIBGL_ALWAYS_SOFTWARE=1)
    rm -f "$tmp/stats.json"
    local presser=
    if [ "$secs" -gt 0 ]; then
        (sleep "$secs"; xdotool search --name "$name" key Escape >/dev/null 2>&1 || true) &
        presser=$!
    fi
    local rc=0
    env "${env[@]}" AGX_FAULT_STATS="$tmp/stats.json" timeout 120 "$@" >/dev/null 2>"$tmp/err" || rc=$?
    [ -z "$presser" ] || wait "$presser"
    printf '%-34s exit %-3s %s\n' "$name $*" "$rc" "$(cat "$tmp/stats.json" 2>/dev/null || echo '(no stats)')" |
        sed "s|$PWD/||"
}

run vkcube 0 vk vkcube --c 300
run vkcubepp 0 vk vkcubepp --c 300
run glxgears 5 zink glxgears
run es2gears 5 zink es2gears_x11
run agx-gl-frames 0 zink target/release/agx-gl-frames --frames 300
run agx-gl-frames 0 zink target/release/agx-gl-frames --frames 300 --upload true
