#!/usr/bin/env bash
# Builds the pinned Mesa (Gallium asahi on surfaceless EGL, honeykrisp, Mesa's asahi noop
# drm-shim) twice, upstream and with the patch series mesa/patches/ (which links agx-winsys),
# and what they need (SPIRV-Tools; for the patched build, agx-winsys from this checkout) into a
# cache directory outside the checkout, keyed by every input, and prints where. A second run
# with the same inputs only prints.
#
#   mesa/build.sh                     build both if needed, print where
#   mesa/build.sh --prefix [VARIANT]  the same, but stdout is only VARIANT's install prefix
#                                     (upstream, the default, or patched; progress on stderr)
#
# What is built and how is in mesa/recipe.sh. Cache entries and their keys:
#   spirv-tools-KEY  the SPIRV-Tools tarball, its cmake options and targets, the toolchain;
#   agx-winsys-KEY   the library's sources in this checkout (winsys/, uapi-bindings/, the
#                    workspace manifests and lock file, the meson files), recipe.sh, the Rust and
#                    C toolchains;
#   mesa-KEY         the Mesa tarball, recipe.sh, the SPIRV-Tools key, the toolchain, and for the
#                    patched build the patch series (names and contents, applied in name order)
#                    and the agx-winsys key.
# Compilers run through ccache (its cache in the cache directory too), so a patched build after
# the upstream one, or after an agx-winsys change, recompiles only what differs.
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
CCACHE_DIR="$CACHE/ccache"

QUIET=0
VARIANT=upstream
if [ "${1:-}" = --prefix ]; then
    QUIET=1
    VARIANT="${2:-upstream}"
    case "$VARIANT" in
        upstream|patched) ;;
        *) echo "mesa/build.sh: --prefix takes upstream or patched, not $VARIANT" >&2; exit 2 ;;
    esac
fi
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
for t in llvm-config-15 cmake ninja gcc g++ pkg-config git flock ccache cargo rustc; do
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
# agx-winsys: every file its static library is built from (the crate and the uAPI crate it
# depends on, the workspace's manifests and lock file, the meson build).
WINSYS_KEY="$( {
    cd "$ROOT"
    find winsys uapi-bindings -type f -not -path '*/target/*' | LC_ALL=C sort | while read -r f; do
        echo "$f"; sha "$f"
    done
    sha Cargo.toml Cargo.lock meson.build meson_options.txt build-aux/cargo-staticlib.py \
        "$HERE/recipe.sh"
    rustc --version; cargo --version
    toolchain_id
} | sha256sum | cut -c1-16)"
mesa_key() {
    {
        sha "$MESA_TARBALL" "$HERE/recipe.sh"
        echo "$SPIRV_KEY"
        if [ "$1" = patched ]; then
            for p in "${PATCHES[@]}"; do basename "$p"; sha "$p"; done
            echo "$WINSYS_KEY"
        fi
        toolchain_id
    } | sha256sum | cut -c1-16
}

VENV="$CACHE/venv-$(printf '%s\n' "${PY_PINS[@]}" | sha256sum | cut -c1-12)"
SPIRV_DIR="$CACHE/spirv-tools-$SPIRV_KEY"
WINSYS_DIR="$CACHE/agx-winsys-$WINSYS_KEY"
declare -A MESA_DIR=([upstream]="$CACHE/mesa-$(mesa_key upstream)"
                     [patched]="$CACHE/mesa-$(mesa_key patched)")
mkdir -p "$CACHE" "$CCACHE_DIR"

# A complete entry (one with its done mark) is never changed or removed again, so a hit needs
# no lock and does not wait for someone else's build. Builders take the lock, one at a time
# (checkouts may share the cache).
if [ -f "${MESA_DIR[upstream]}/done" ] && [ -f "${MESA_DIR[patched]}/done" ] &&
    [ -f "$SPIRV_DIR/done" ] && [ -f "$WINSYS_DIR/done" ]; then
    build_needed=0
else
    build_needed=1
    exec 9>"$CACHE/.lock"
    flock 9
    # Entries without a done mark are failed or interrupted builds (nobody builds them: we
    # hold the lock); they can be large, so they go.
    for d in "$CACHE"/spirv-tools-* "$CACHE"/agx-winsys-* "$CACHE"/mesa-*; do
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

if [ ! -f "$WINSYS_DIR/done" ]; then
    say "building agx-winsys (-Dsim=disabled) into $WINSYS_DIR"
    start=$SECONDS
    rm -rf "$WINSYS_DIR"
    mkdir -p "$WINSYS_DIR"
    build_winsys "$ROOT" "$WINSYS_DIR/work" "$WINSYS_DIR/prefix" "$WINSYS_DIR/build.log"
    rm -rf "$WINSYS_DIR/work"
    echo "$((SECONDS - start))" >"$WINSYS_DIR/seconds"
    touch "$WINSYS_DIR/done"
    say "agx-winsys built in $((SECONDS - start)) s"
fi

for variant in upstream patched; do
    dir="${MESA_DIR[$variant]}"
    [ -f "$dir/done" ] && continue
    pkgconfig="$SPIRV_DIR/prefix/lib/pkgconfig"
    patches=()
    if [ "$variant" = patched ]; then
        pkgconfig="$pkgconfig:$WINSYS_DIR/prefix/lib/pkgconfig"
        patches=("${PATCHES[@]}")
    fi
    say "building $variant Mesa into $dir (${#patches[@]} patches)"
    start=$SECONDS
    rm -rf "$dir"
    mkdir -p "$dir/work"
    tar -xf "$MESA_TARBALL" -C "$dir/work"
    for p in "${patches[@]}"; do
        say "applying $(basename "$p")"
        git -C "$dir/work/mesa" apply --whitespace=nowarn "$p"
    done
    build_mesa "$dir/work/mesa" "$dir/work/build" "$dir/prefix" "$pkgconfig" "$dir/build.log"
    rm -rf "$dir/work"
    echo "$((SECONDS - start))" >"$dir/seconds"
    touch "$dir/done"
    say "$variant Mesa built in $((SECONDS - start)) s"
done
[ "$build_needed" = 0 ] || flock -u 9

for variant in upstream patched; do
    prefix="${MESA_DIR[$variant]}/prefix"
    for f in lib/libEGL.so.1 lib/libGLESv2.so.2 lib/libasahi_noop_drm_shim.so \
             share/vulkan/icd.d/asahi_icd.x86_64.json; do
        [ -e "$prefix/$f" ] || {
            echo "mesa: $prefix/$f missing: remove ${MESA_DIR[$variant]} and rerun" >&2
            exit 1
        }
    done
    say "$variant: ${MESA_DIR[$variant]} (cold build took $(cat "${MESA_DIR[$variant]}/seconds") s)"
    say "  VK_ICD_FILENAMES=$prefix/share/vulkan/icd.d/asahi_icd.x86_64.json"
    say "  LD_LIBRARY_PATH=$prefix/lib (libEGL, libGLESv2, the Gallium driver)"
done
say "SPIRV-Tools: $SPIRV_DIR ($(cat "$SPIRV_DIR/seconds") s), agx-winsys: $WINSYS_DIR ($(cat "$WINSYS_DIR/seconds") s)"
if [ "$QUIET" = 1 ]; then
    echo "${MESA_DIR[$VARIANT]}/prefix"
else
    echo "${MESA_DIR[upstream]}/prefix"
    echo "${MESA_DIR[patched]}/prefix"
fi
