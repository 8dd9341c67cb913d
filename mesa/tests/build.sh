#!/usr/bin/env bash
# Compiles the test programs into OUT (default build/mesa-tests): the shaders to SPIR-V headers
# with glslangValidator, then vk_submit against the Vulkan loader and gl_robust against EGL and
# GLES (Debian's headers and link libraries; at run time the built Mesa's libEGL/libGLESv2 come
# first through LD_LIBRARY_PATH, and honeykrisp through VK_ICD_FILENAMES).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-build/mesa-tests}"
mkdir -p "$OUT"
CFLAGS=(-std=gnu11 -O1 -g -Wall -Wextra -Werror)
for s in tri.vert tri.frag fill.comp; do
    glslangValidator -V --quiet --vn "${s//./_}" -o "$OUT/$s.h" "$HERE/$s"
done
cc "${CFLAGS[@]}" -I"$OUT" -o "$OUT/vk_submit" "$HERE/vk_submit.c" -lvulkan
cc "${CFLAGS[@]}" -o "$OUT/gl_robust" "$HERE/gl_robust.c" -lEGL -lGLESv2
