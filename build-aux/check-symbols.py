#!/usr/bin/env python3
"""Checks the symbol table of libagx_winsys.a for the simulator (meson test `symbols`).

  --expect-no-sim  a -Dsim=disabled library: no object file or symbol of the agx-sim crate (or
                   of serde_json, which only the simulator uses), and no agx_ws_sim_* entry point.
  --expect-sim     a -Dsim=enabled library: both present (shows the check sees them).

Rust mangles the crate name into every symbol (legacy `_ZN7agx_sim...` and v0 `...7agx_sim...`
alike), and a staticlib holds one object file per crate codegen unit, named after the crate.
"""

import argparse
import subprocess
import sys

SIM_MARKERS = ("agx_sim", "serde_json")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nm", default="nm")
    p.add_argument("--archive", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--expect-sim", action="store_true")
    g.add_argument("--expect-no-sim", action="store_true")
    a = p.parse_args()
    out = subprocess.run([a.nm, "-A", a.archive], capture_output=True, text=True, check=True)
    # "archive:member: address type name" (the member names carry the crate name too).
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    sim = [l for l in lines if any(m in l for m in SIM_MARKERS)]
    entry = sorted({l.split()[-1] for l in lines
                    if l.split()[-1].startswith("agx_ws_sim_") and " T " in l})
    ours = sorted({l.split()[-1] for l in lines
                   if l.split()[-1].startswith("agx_ws_") and " T " in l})
    print(f"{a.archive}: {len(lines)} symbol lines, {len(ours)} agx_ws_* entry points, "
          f"{len(entry)} agx_ws_sim_* entry points, {len(sim)} simulator symbol lines")
    if not ours:
        print("no agx_ws_* entry point at all: not the library?", file=sys.stderr)
        return 1
    if a.expect_no_sim:
        if sim or entry:
            for l in (sim + entry)[:20]:
                print("  simulator in the library:", l, file=sys.stderr)
            return 1
        return 0
    if not sim or not entry:
        print("expected the simulator in this library and found none", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
