# The Mesa build recipe, sourced by mesa/build.sh. Everything here is an input of the build:
# this file's hash is part of the cache key (mesa/build.sh, which only finds, locks, prints and
# calls these functions, is not), so edit it only to change what is built or how.

# The build's Python tools, pinned (Debian 12's meson is 1.0.1; Mesa 26.2 needs >= 1.4).
PY_PINS=(meson==1.8.5 mako==1.3.10 PyYAML==6.0.2 packaging==25.0)

# SPIRV-Tools: only the three static libraries Mesa's CLC links (core, opt, link), position
# independent because they end up inside the drivers' shared objects. No executables, no
# tests, no shared variant (SPIRV_TOOLS_BUILD_STATIC=ON would compile every core source twice).
SPIRV_CMAKE_OPTS=(
    -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON
    -DSPIRV_SKIP_TESTS=ON -DSPIRV_SKIP_EXECUTABLES=ON -DSPIRV_WERROR=OFF
    -DSPIRV_TOOLS_BUILD_STATIC=OFF -DSPIRV_TOOLS_LIBRARY_TYPE=STATIC
)
SPIRV_TARGETS=(SPIRV-Tools SPIRV-Tools-opt SPIRV-Tools-link spirv-tools-pkg-config)

# Mesa: only what asahi needs (Gallium asahi + surfaceless EGL + GLES2/GL, honeykrisp, the
# drm-shim tool with Mesa's asahi noop shim). -O1 without debug info keeps a cold build short
# on two cores (the drivers' speed is not what this project measures against upstream: both
# sides of any comparison use this build); assertions stay on (-Db_ndebug=false): what the
# drivers assert on is part of what this project documents.
MESA_OPTS=(
    -Doptimization=1 -Ddebug=false -Db_ndebug=false
    -Dgallium-drivers=asahi -Dvulkan-drivers=asahi -Dtools=drm-shim
    -Dplatforms= -Dglx=disabled -Degl=enabled -Dgbm=disabled -Dglvnd=disabled
    -Dgles1=disabled -Dgles2=enabled -Dopengl=true
    -Dllvm=enabled -Dshared-llvm=enabled -Ddraw-use-llvm=false
    -Dvideo-codecs= -Dvalgrind=disabled -Dlibunwind=disabled -Dlmsensors=disabled
    -Dbuild-tests=false -Dhtml-docs=disabled -Dvulkan-layers=
    -Dspirv-tools=enabled
)

# build_spirv_tools WORK PREFIX LOG: WORK holds the unpacked SPIRV-Tools/ and SPIRV-Headers/.
build_spirv_tools() {
    local work="$1" prefix="$2" log="$3"
    run_logged "$log" cmake -S "$work/SPIRV-Tools" -B "$work/build" -G Ninja \
        -DSPIRV-Headers_SOURCE_DIR="$work/SPIRV-Headers" \
        -DCMAKE_INSTALL_PREFIX="$prefix" "${SPIRV_CMAKE_OPTS[@]}"
    run_logged "$log" ninja -C "$work/build" -j "$JOBS" "${SPIRV_TARGETS[@]}"
    # A hand install of just those targets (cmake's install step wants every target built).
    mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
    cp -r "$work/SPIRV-Tools/include/spirv-tools" "$prefix/include/"
    cp "$work/build/source/libSPIRV-Tools.a" "$work/build/source/opt/libSPIRV-Tools-opt.a" \
        "$work/build/source/link/libSPIRV-Tools-link.a" "$prefix/lib/"
    cp "$work/build/SPIRV-Tools.pc" "$prefix/lib/pkgconfig/"
    PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --exists 'SPIRV-Tools >= 2024.1'
}

# agx-winsys as the patched Mesa links it: the static library without the simulated GPU, from
# this checkout, with no C tests, installed with its header and agx_winsys.pc.
WINSYS_MESON_OPTS=(-Dsim=disabled -Dtests=false -Dbuildtype=release -Dcargo_profile=release)

# build_winsys SRC BUILD PREFIX LOG: SRC is the project checkout.
build_winsys() {
    local src="$1" build="$2" prefix="$3" log="$4"
    run_logged "$log" "$VENV/bin/meson" setup "$build" "$src" --prefix "$prefix" --libdir lib \
        "${WINSYS_MESON_OPTS[@]}"
    run_logged "$log" "$VENV/bin/meson" install -C "$build" --quiet
}

# build_mesa SRC BUILD PREFIX PKG_CONFIG_PATH LOG: SRC is the unpacked (and patched) mesa/.
# Meson runs with only the venv and the system's bin directories on PATH: Mesa picks the first
# python3.16 ... python3.10, python3 it finds, and a stray one (a pyenv shim for a Python that
# is not installed) fails the configure step. The compilers run through ccache with its cache
# in CCACHE_DIR: the upstream and the patched builds share most objects, and a rebuild after an
# agx-winsys change recompiles nothing (no debug info, so objects do not depend on the entry's
# directory).
build_mesa() {
    local src="$1" build="$2" prefix="$3" pkgconfig="$4" log="$5"
    local native="$build.native.ini"
    printf "[binaries]\nllvm-config = '%s'\nc = ['ccache', 'gcc']\ncpp = ['ccache', 'g++']\n" \
        "$(command -v llvm-config-15)" >"$native"
    local meson=(env PATH="$VENV/bin:/usr/bin:/bin" CCACHE_DIR="$CCACHE_DIR"
                 CCACHE_MAXSIZE=4G "$VENV/bin/meson")
    run_logged "$log" "${meson[@]}" setup "$build" "$src" \
        --native-file "$native" --prefix "$prefix" --libdir lib \
        -Dpkg_config_path="$pkgconfig" "${MESA_OPTS[@]}"
    run_logged "$log" "${meson[@]}" compile -C "$build" -j "$JOBS"
    run_logged "$log" "${meson[@]}" install -C "$build" --quiet
}
