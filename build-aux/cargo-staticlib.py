#!/usr/bin/env python3
"""Meson glue for the agx-winsys static library (see docs/c-abi.md).

  build        run cargo to build libagx_winsys.a (or another library of the workspace:
               --package, --artifact; the tests use the render-node preload library) into a
               target directory inside the meson build directory, copy it to meson's output
               path, and turn cargo's .d file into a depfile naming that output, so ninja reruns
               cargo when a Rust source changes.
  native-libs  print the system libraries a Rust staticlib needs (`rustc --print
               native-static-libs` of an empty staticlib: std's list; agx-winsys adds none).
"""

import argparse
import os
import shutil
import subprocess
import sys

FALLBACK_LIBS = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"


def escape(path):
    return path.replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#").replace("$", "$$")


def build(args):
    cmd = [args.cargo, "build", "--lib", "--package", args.package,
           "--manifest-path", os.path.join(args.crate_dir, "Cargo.toml"),
           "--target-dir", args.target_dir]
    if args.profile == "release":
        cmd.append("--release")
    if args.features:
        cmd += ["--features", args.features]
    if args.offline:
        cmd.append("--offline")
    if args.locked:
        cmd.append("--locked")
    env = dict(os.environ)
    # The crate directory is the working directory, so cargo finds the workspace, its
    # Cargo.lock and any .cargo/config.toml (e.g. the vendored sources of an offline build).
    r = subprocess.run(cmd, cwd=args.crate_dir, env=env)
    if r.returncode != 0:
        return r.returncode
    profile_dir = os.path.join(args.target_dir, args.profile)
    lib = os.path.join(profile_dir, args.artifact)
    tmp = args.output + ".tmp"
    shutil.copyfile(lib, tmp)
    os.replace(tmp, args.output)
    # cargo's .d file: "<artifact>: <source> <source> ...", paths with spaces escaped.
    stem = args.artifact.split(".")[0]
    with open(os.path.join(profile_dir, stem + ".d"), encoding="utf-8") as f:
        text = f.read()
    deps = []
    for line in text.splitlines():
        if ":" not in line:
            continue
        _, _, rest = line.partition(": ")
        # Split on unescaped spaces.
        cur, i = "", 0
        while i < len(rest):
            c = rest[i]
            if c == "\\" and i + 1 < len(rest) and rest[i + 1] == " ":
                cur += " "
                i += 2
                continue
            if c == " ":
                if cur:
                    deps.append(cur)
                cur = ""
            else:
                cur += c
            i += 1
        if cur:
            deps.append(cur)
    with open(args.depfile, "w", encoding="utf-8") as f:
        f.write(escape(args.output) + ": " + " ".join(escape(d) for d in deps) + "\n")
    return 0


def native_libs(args):
    os.makedirs(args.tmp_dir, exist_ok=True)
    src = os.path.join(args.tmp_dir, "probe.rs")
    with open(src, "w", encoding="utf-8") as f:
        f.write("")
    try:
        r = subprocess.run([args.rustc, "--crate-type", "staticlib", "--crate-name", "probe",
                            "--print", "native-static-libs", "-o",
                            os.path.join(args.tmp_dir, "libprobe.a"), src],
                           capture_output=True, text=True)
        for line in (r.stderr + r.stdout).splitlines():
            if "native-static-libs:" in line:
                print(line.split("native-static-libs:", 1)[1].strip())
                return 0
    except OSError:
        pass
    print(FALLBACK_LIBS)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("build")
    b.add_argument("--cargo", required=True)
    b.add_argument("--crate-dir", required=True)
    b.add_argument("--target-dir", required=True)
    b.add_argument("--profile", choices=["debug", "release"], required=True)
    b.add_argument("--output", required=True)
    b.add_argument("--depfile", required=True)
    b.add_argument("--package", default="agx-winsys")
    b.add_argument("--artifact", default="libagx_winsys.a",
                   help="the file cargo leaves in target/<profile>/")
    b.add_argument("--features", default="",
                   help="cargo features of agx-winsys, e.g. sim (meson -Dsim=enabled)")
    b.add_argument("--offline", action="store_true")
    b.add_argument("--locked", action="store_true")
    n = sub.add_parser("native-libs")
    n.add_argument("--rustc", required=True)
    n.add_argument("--tmp-dir", required=True)
    args = p.parse_args()
    return build(args) if args.mode == "build" else native_libs(args)


if __name__ == "__main__":
    sys.exit(main())
