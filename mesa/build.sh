#!/usr/bin/env bash
# Builds the pinned Mesa (Gallium asahi on surfaceless EGL, honeykrisp, Mesa's asahi noop
# drm-shim) and the SPIRV-Tools it needs into a cache directory outside the checkout, keyed by
# every input, and prints where the build is. A second run with the same inputs only prints.
#
#   mesa/build.sh            build if needed, print where; the last line is the install prefix
#   mesa/build.sh --prefix   the same, but stdout is only the prefix (progress goes to stderr)
#
# What is built and how is in mesa/recipe.sh. The Mesa cache key covers: the Mesa and
# SPIRV-Tools tarballs (sha256), recipe.sh (configure options and build commands), the patch
# series mesa/patches/*.patch (names and contents, applied in name order), and the compiler,
# LLVM and cmake versions. SPIRV-Tools has its own entry, keyed by its tarball, its cmake
# options and targets, and the same toolchain, so a Mesa patch does not rebuild it.
#
# Environment:
#   AGXWS_VENDOR      vendored sources      (default: <checkout>/../shared/vendor)
#   AGXWS_MESA_CACHE  cache root            (default: ${XDG_CACHE_HOME:-$HOME/.cache}/agx-winsys/mesa)
#   AGXWS_MESA_JOBS   parallel build jobs   (default: nproc)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
VENDOR="${AGXWS_VENDOR:-$ROOT/../shared/vendor}"
CACHE="${AGXWS_MESA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agx-winsys/mesa}"
JOBS="${AGXWS_MESA_JOBS:-$(nproc)}"
MESA_TARBALL="$VENDOR/mesa-26.2.0-rc1.tar.xz"
SPIRV_TARBALL="$VENDOR/spirv-tools-2026.2-48bd3e9.tar.xz"

QUIET=0
[ "${1:-}" = --prefix ] && QUIET=1
say() { if [ "$QUIET" = 1 ]; then echo "mesa: $*" >&2; else echo "mesa: $*"; fi; }

# Runs a build command with its output in LOG, printing every 100th line as progress (and the
# log's tail if it fails).
run_logged() {
    local log="$1"; shift
    if ! "$@" 2>&1 | tee -a "$log" | awk 'NR % 100 == 0 { print "  " substr($0, 1, 110); fflush() }' >&2
    then
        echo "mesa: failed: $*; last lines of $log:" >&2
        tail -n 60 "$log" >&2
        exit 1
    fi
}

# shellcheck source=recipe.sh
. "$HERE/recipe.sh"

for f in "$MESA_TARBALL" "$SPIRV_TARBALL"; do
    [ -f "$f" ] || { echo "mesa: missing $f (set AGXWS_VENDOR)" >&2; exit 1; }
done
for t in llvm-config-15 cmake ninja gcc g++ pkg-config git flock; do
    command -v "$t" >/dev/null || {
        echo "mesa: $t missing (tools/test-all.sh installs the packages)" >&2
        exit 1
    }
done

sha() { sha256sum "$@" | cut -c1-64; }
shopt -s nullglob
PATCHES=("$HERE"/patches/*.patch)
shopt -u nullglob
toolchain_id() {
    printf '%s\n' "$(gcc -dumpfullversion)" "$(g++ -dumpfullversion)" \
        "$(llvm-config-15 --version)" "$(cmake --version | head -n1)" "$(uname -m)"
}
SPIRV_KEY="$( {
    sha "$SPIRV_TARBALL"
    printf '%s\n' "${SPIRV_CMAKE_OPTS[@]}" "${SPIRV_TARGETS[@]}"
    toolchain_id
} | sha256sum | cut -c1-16)"
MESA_KEY="$( {
    sha "$MESA_TARBALL" "$HERE/recipe.sh"
    echo "$SPIRV_KEY"
    for p in "${PATCHES[@]}"; do basename "$p"; sha "$p"; done
    toolchain_id
} | sha256sum | cut -c1-16)"

VENV="$CACHE/venv-$(printf '%s\n' "${PY_PINS[@]}" | sha256sum | cut -c1-12)"
SPIRV_DIR="$CACHE/spirv-tools-$SPIRV_KEY"
MESA_DIR="$CACHE/mesa-$MESA_KEY"
mkdir -p "$CACHE"

# A complete entry (one with its done mark) is never changed or removed again, so a hit needs
# no lock and does not wait for someone else's build. Builders take the lock, one at a time
# (checkouts may share the cache).
if [ -f "$MESA_DIR/done" ] && [ -f "$SPIRV_DIR/done" ]; then
    build_needed=0
else
    build_needed=1
    exec 9>"$CACHE/.lock"
    flock 9
    # Entries without a done mark are failed or interrupted builds (nobody builds them: we
    # hold the lock); they can be large, so they go.
    for d in "$CACHE"/spirv-tools-* "$CACHE"/mesa-*; do
        [ -d "$d" ] && [ ! -f "$d/done" ] && rm -rf "$d"
    done
fi

if [ "$build_needed" = 1 ] && [ ! -x "$VENV/bin/meson" ]; then
    say "creating $VENV (${PY_PINS[*]})"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}" >&2
fi

# Each entry is built in DIR/work and marked complete by DIR/done; an entry without it is a
# failed or interrupted build and is started over.
if [ ! -f "$SPIRV_DIR/done" ]; then
    say "building SPIRV-Tools into $SPIRV_DIR"
    start=$SECONDS
    rm -rf "$SPIRV_DIR"
    mkdir -p "$SPIRV_DIR/work"
    tar -xf "$SPIRV_TARBALL" -C "$SPIRV_DIR/work"
    build_spirv_tools "$SPIRV_DIR/work" "$SPIRV_DIR/prefix" "$SPIRV_DIR/build.log"
    rm -rf "$SPIRV_DIR/work"
    echo "$((SECONDS - start))" >"$SPIRV_DIR/seconds"
    touch "$SPIRV_DIR/done"
    say "SPIRV-Tools built in $((SECONDS - start)) s"
fi

if [ ! -f "$MESA_DIR/done" ]; then
    say "building Mesa into $MESA_DIR (${#PATCHES[@]} patches)"
    start=$SECONDS
    rm -rf "$MESA_DIR"
    mkdir -p "$MESA_DIR/work"
    tar -xf "$MESA_TARBALL" -C "$MESA_DIR/work"
    for p in "${PATCHES[@]}"; do
        say "applying $(basename "$p")"
        git -C "$MESA_DIR/work/mesa" apply --whitespace=nowarn "$p"
    done
    build_mesa "$MESA_DIR/work/mesa" "$MESA_DIR/work/build" "$MESA_DIR/prefix" \
        "$SPIRV_DIR/prefix" "$MESA_DIR/build.log"
    rm -rf "$MESA_DIR/work"
    echo "$((SECONDS - start))" >"$MESA_DIR/seconds"
    touch "$MESA_DIR/done"
    say "Mesa built in $((SECONDS - start)) s"
fi
[ "$build_needed" = 0 ] || flock -u 9

prefix="$MESA_DIR/prefix"
for f in lib/libEGL.so.1 lib/libGLESv2.so.2 lib/libasahi_noop_drm_shim.so \
         share/vulkan/icd.d/asahi_icd.x86_64.json; do
    [ -e "$prefix/$f" ] || { echo "mesa: $prefix/$f missing: remove $MESA_DIR and rerun" >&2; exit 1; }
done
say "build: $MESA_DIR (key $MESA_KEY; cold build took Mesa $(cat "$MESA_DIR/seconds") s + SPIRV-Tools $(cat "$SPIRV_DIR/seconds") s)"
say "  VK_ICD_FILENAMES=$prefix/share/vulkan/icd.d/asahi_icd.x86_64.json"
say "  LD_LIBRARY_PATH=$prefix/lib (libEGL, libGLESv2, the Gallium driver)"
say "  LD_PRELOAD=$prefix/lib/libasahi_noop_drm_shim.so (Mesa's noop shim: nothing executes)"
echo "$prefix"
