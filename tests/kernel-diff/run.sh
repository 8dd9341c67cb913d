#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Real-kernel differential test harness: boots a distribution kernel under
# QEMU (TCG), loads the agx_synctest DRM driver and runs one test program in
# the guest, capturing its output as a transcript.
#
# usage: tests/kernel-diff/run.sh [options] [--] [PROGRAM [ARGS...]]
#
#   PROGRAM        host path of the program to run in the guest (static or
#                  dynamically linked; shared libraries found by ldd and the
#                  ELF interpreter are copied along).  Default: build and run
#                  smoke.c.  Also settable with KDIFF_PROG (+ KDIFF_ARGS, a
#                  whitespace-split string) when no PROGRAM is given.
#   --out DIR      output directory (default: tests/kernel-diff/out, or
#                  $KDIFF_OUT)
#   --timeout SEC  hard limit for the QEMU run (default 240, $KDIFF_TIMEOUT)
#   --kver VER     kernel version to boot (default: newest /boot/vmlinuz-*
#                  with modules; $KDIFF_KVER); its image is /boot/vmlinuz-VER,
#                  or the file of $KDIFF_VMLINUZ (a ':'-separated list of image
#                  files) whose embedded version string is VER: one setting
#                  serves runs of several kernels
#   --env K=V      export K=V in the guest before running PROGRAM (repeatable)
#   --file SRC[:DST]  copy an extra host file into the guest (DST defaults
#                  to SRC's absolute path; e.g. dlopen()ed libraries, data)
#   --allow-splat  do not fail when the guest kernel log has a WARNING/BUG
#   --no-install   never run apt-get; just report what is missing
#   --keep         keep the temporary build directory (path is printed)
#
# Outputs in the output directory: serial.log (raw console), transcript.txt
# (program output between the markers, CR stripped), dmesg.txt, exit_code,
# timings.txt.  Exit status: 0 when the guest program exited 0, the markers
# were found, no kernel splat was logged and agx_synctest's reference count
# was back to 0 (then it must rmmod cleanly); 1 on test failure; 2 on
# harness or environment errors; 3 on timeout.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${KDIFF_OUT:-$HERE/out}"
LIMIT="${KDIFF_TIMEOUT:-240}"
KVER="${KDIFF_KVER:-}"
NO_INSTALL=0
KEEP=0
ALLOW_SPLAT=0
GUEST_ENV=()
EXTRA_FILES=()
PROG=""
PROG_ARGS=()

die() { echo "kernel-diff: $*" >&2; exit 2; }
log() { echo "kernel-diff: $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT="$2"; shift 2 ;;
	--timeout) LIMIT="$2"; shift 2 ;;
	--kver) KVER="$2"; shift 2 ;;
	--env) GUEST_ENV+=("$2"); shift 2 ;;
	--file) EXTRA_FILES+=("$2"); shift 2 ;;
	--allow-splat) ALLOW_SPLAT=1; shift ;;
	--no-install) NO_INSTALL=1; shift ;;
	--keep) KEEP=1; shift ;;
	-h|--help) sed -n '4,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
if [ $# -gt 0 ]; then
	PROG="$1"; shift
	PROG_ARGS=("$@")
elif [ -n "${KDIFF_PROG:-}" ]; then
	PROG="$KDIFF_PROG"
	# shellcheck disable=SC2206
	PROG_ARGS=(${KDIFF_ARGS:-})
fi
case "$LIMIT" in ''|*[!0-9]*) die "--timeout needs whole seconds" ;; esac
if [ -n "$PROG" ]; then
	[ -f "$PROG" ] && [ -x "$PROG" ] || die "test program $PROG is not an executable file"
fi

T_START=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
stamp() { echo "$1 $(since "$T_START")"; }

# ---------------------------------------------------------------- packages --
missing_pkgs() {
	local p=()
	command -v qemu-system-x86_64 >/dev/null || p+=(qemu-system-x86)
	# busybox must be static: it is the guest's only userland
	[ -x /bin/busybox ] && ! readelf -l /bin/busybox 2>/dev/null | grep -q interpreter || p+=(busybox-static)
	command -v cpio >/dev/null || p+=(cpio)
	command -v gcc >/dev/null || p+=(gcc)
	command -v make >/dev/null || p+=(make)
	command -v modinfo >/dev/null || p+=(kmod)
	command -v readelf >/dev/null || p+=(binutils)
	[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || p+=(libc6-dev)
	compgen -G '/boot/vmlinuz-*' >/dev/null || p+=(linux-image-amd64 linux-headers-amd64)
	echo "${p[*]}"
}

can_apt() { [ "$NO_INSTALL" = 0 ] && [ "$(id -u)" = 0 ] && [ -e /etc/debian_version ] && command -v apt-get >/dev/null; }

apt_install() {
	log "installing: $*"
	if [ -z "${KDIFF_APT_UPDATED:-}" ]; then
		apt-get update -q >&2 || die "apt-get update failed"
		KDIFF_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 ||
		die "apt-get install $* failed"
}

need=$(missing_pkgs)
if [ -n "$need" ]; then
	if can_apt; then
		# shellcheck disable=SC2086
		apt_install $need
		need=$(missing_pkgs)
		[ -z "$need" ] || die "still missing after install: $need"
	else
		die "missing tools; as root on Debian run: apt-get install $need"
	fi
fi

# ------------------------------------------------------------------ kernel --
if [ -z "$KVER" ]; then
	for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's,^/boot/vmlinuz-,,' | sort -rV); do
		if [ -d "/lib/modules/$k/kernel" ]; then KVER=$k; break; fi
	done
	[ -n "$KVER" ] || die "no /boot/vmlinuz-<ver> with /lib/modules/<ver>/kernel found"
fi
# The version a bzImage carries (the string its setup header's kernel_version field points
# at), e.g. "6.12.118+deb12-amd64".
image_version() {
	local off
	off=$(od -An -tu2 -j $((0x20E)) -N2 "$1" 2>/dev/null | tr -d ' ') || return 0
	[ -n "$off" ] && [ "$off" -gt 0 ] || return 0
	dd if="$1" bs=1 skip=$((off + 0x200)) count=128 status=none 2>/dev/null |
		tr '\0' '\n' | head -1 | cut -d' ' -f1
}
VMLINUZ="/boot/vmlinuz-$KVER"
if [ -n "${KDIFF_VMLINUZ:-}" ]; then
	IFS=: read -r -a images <<<"$KDIFF_VMLINUZ"
	for img in "${images[@]}"; do
		if [ -r "$img" ] && [ "$(image_version "$img")" = "$KVER" ]; then VMLINUZ=$img; break; fi
	done
	[ "$VMLINUZ" != "/boot/vmlinuz-$KVER" ] || log "KDIFF_VMLINUZ: no image of $KVER in it, using $VMLINUZ"
fi
if [ ! -e "$VMLINUZ" ]; then
	if can_apt; then
		apt_install "linux-image-$KVER" "linux-headers-$KVER"
	else
		die "$VMLINUZ missing; as root run: apt-get install linux-image-$KVER linux-headers-$KVER"
	fi
fi
[ -r "$VMLINUZ" ] || die "$VMLINUZ not readable"
KBUILD="/lib/modules/$KVER/build"
if [ ! -e "$KBUILD/Makefile" ] && [ -e "/usr/src/linux-headers-$KVER/Makefile" ]; then
	KBUILD="/usr/src/linux-headers-$KVER"
fi
if [ ! -e "$KBUILD/Makefile" ]; then
	if can_apt; then
		apt_install "linux-headers-$KVER"
		KBUILD="/lib/modules/$KVER/build"
	else
		die "headers for $KVER missing; as root run: apt-get install linux-headers-$KVER"
	fi
fi
[ -e "$KBUILD/Makefile" ] || die "no kernel build tree for $KVER"

# The uapi headers (for the smoke program) live in the -common package on
# Debian; the arch directory's Makefile includes the common one.
UAPI=""
for d in "$KBUILD" $(sed -n 's,^include \(.*\)/Makefile$,\1,p' "$KBUILD/Makefile" 2>/dev/null); do
	if [ -e "$d/include/uapi/drm/drm.h" ]; then UAPI="$d/include/uapi"; break; fi
done

# ------------------------------------------------------------------- build --
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kernel-diff.XXXXXX")
QEMU_PIDFILE="$TMP/qemu.pid"
RUNNER_PID=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$RUNNER_PID" ] && kill -0 "$RUNNER_PID" 2>/dev/null; then
		kill "$RUNNER_PID" 2>/dev/null || true
	fi
	if [ -s "$QEMU_PIDFILE" ]; then
		local qp
		qp=$(cat "$QEMU_PIDFILE" 2>/dev/null || true)
		if [ -n "$qp" ] && kill -0 "$qp" 2>/dev/null; then
			kill "$qp" 2>/dev/null || true
			sleep 1
			kill -9 "$qp" 2>/dev/null || true
		fi
	fi
	if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT/serial.log" "$OUT/transcript.txt" "$OUT/dmesg.txt" "$OUT/exit_code" "$OUT/timings.txt"
log "kernel $KVER, build tree $KBUILD, output $OUT"

mkdir "$TMP/module"
cp "$HERE/module/agx_synctest.c" "$HERE/module/agx_synctest_uapi.h" "$HERE/module/Kbuild" "$TMP/module/"
if ! make -C "$KBUILD" M="$TMP/module" modules >"$TMP/module-build.log" 2>&1; then
	cat "$TMP/module-build.log" >&2
	die "module build failed"
fi
grep -E 'warning:|error:' "$TMP/module-build.log" >&2 || true
KO="$TMP/module/agx_synctest.ko"
[ -e "$KO" ] || die "module build produced no agx_synctest.ko"
T_MODULE=$(stamp module_built_at)

if [ -z "$PROG" ]; then
	[ -n "$UAPI" ] || die "no uapi/drm/drm.h found under $KBUILD"
	gcc -static -O2 -Wall -D__user= -I"$UAPI/drm" -I"$HERE/module" \
		"$HERE/smoke.c" -o "$TMP/smoke" || die "smoke.c build failed"
	PROG="$TMP/smoke"
fi
[ -f "$PROG" ] && [ -x "$PROG" ] || die "test program $PROG is not an executable file"
T_PROG=$(stamp program_built_at)

# --------------------------------------------------------------- initramfs --
ROOT="$TMP/root"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,test,lib/modules/kdiff}
cp /bin/busybox "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"

# Copy a host file into the initramfs at the same absolute path (or $2).
put() {
	local src="$1" dst="${2:-$1}"
	mkdir -p "$ROOT$(dirname "$dst")"
	cp -L "$src" "$ROOT$dst"
}

# Kernel modules: agx_synctest's dependencies, resolved recursively against
# the guest kernel's module tree, inserted in dependency order.
LOAD_ORDER=()
declare -A SEEN=()
add_module() {   # $1 = module name or .ko path
	local name="$1" file deps dep
	if [ -f "$name" ]; then
		file="$name"
		name=$(modinfo -F name "$file")
	else
		file=$(modinfo -k "$KVER" -F filename "$name" 2>/dev/null | head -n1) ||
			die "module $name not found for $KVER"
		[ -n "$file" ] && [ "$file" != "(builtin)" ] || return 0
	fi
	[ -z "${SEEN[$name]:-}" ] || return 0
	SEEN[$name]=1
	deps=$(modinfo -F depends "$file" | tr ',' ' ')
	for dep in $deps; do add_module "$dep"; done
	local dst="$ROOT/lib/modules/kdiff/$name.ko"
	# busybox insmod may not handle compressed modules: decompress here.
	case "$file" in
	*.ko.xz) command -v xz >/dev/null || die "need xz (apt-get install xz-utils)"
		xz -dc "$file" >"$dst" ;;
	*.ko.zst) command -v zstd >/dev/null || die "need zstd (apt-get install zstd)"
		zstd -qdc "$file" >"$dst" ;;
	*.ko.gz) gzip -dc "$file" >"$dst" ;;
	*) cp "$file" "$dst" ;;
	esac
	LOAD_ORDER+=("$name")
}
add_module "$KO"

# The test program plus, for a dynamic executable, its loader and libraries.
PROG_NAME=$(basename "$PROG")
cp -L "$PROG" "$ROOT/test/$PROG_NAME"
LIBDIRS=()
if readelf -l "$PROG" 2>/dev/null | grep -q 'program interpreter'; then
	interp=$(readelf -l "$PROG" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	put "$interp"
	while read -r lib; do
		[ -n "$lib" ] || continue
		put "$lib"
		LIBDIRS+=("$(dirname "$lib")")
	done < <(ldd "$PROG" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | sort -u)
	if ldd "$PROG" | grep -q 'not found'; then
		ldd "$PROG" >&2
		die "unresolved shared libraries for $PROG"
	fi
fi
for spec in "${EXTRA_FILES[@]+"${EXTRA_FILES[@]}"}"; do
	src="${spec%%:*}"; dst="${spec#*:}"
	[ "$dst" != "$spec" ] || dst="$(realpath "$src")"
	put "$src" "$dst"
done

# Single-quote for the guest's sh.
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
ARGS_Q=""
for a in "${PROG_ARGS[@]+"${PROG_ARGS[@]}"}"; do ARGS_Q="$ARGS_Q $(sq "$a")"; done
ENV_Q=""
for kv in "${GUEST_ENV[@]+"${GUEST_ENV[@]}"}"; do
	[[ "$kv" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env needs NAME=VALUE, got $kv"
	ENV_Q="${ENV_Q}export ${kv%%=*}=$(sq "${kv#*=}")
"
done
LD_PATH=$(printf '%s\n' "${LIBDIRS[@]+"${LIBDIRS[@]}"}" | sort -u | paste -sd: -)

cat >"$ROOT/init" <<EOF
#!/bin/sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
dmesg -n 1
echo
echo "=== KDIFF GUEST UP \$(cut -d' ' -f1 /proc/uptime) ==="
for m in ${LOAD_ORDER[*]}; do
	if ! insmod /lib/modules/kdiff/\$m.ko; then
		echo "=== KDIFF INSMOD FAILED: \$m ==="
		dmesg | tail -n 30
		poweroff -f
	fi
done
i=0
while [ ! -e /dev/dri/renderD128 ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i+1)); done
ls -l /dev/dri
${LD_PATH:+export LD_LIBRARY_PATH='$LD_PATH'}
${ENV_Q}cd /test
echo "=== BEGIN TRANSCRIPT ==="
/test/$(sq "$PROG_NAME")$ARGS_Q </dev/null 2>&1
rc=\$?
echo "=== END TRANSCRIPT ==="
echo "=== EXIT CODE: \$rc ==="
# Leak check: every fence pins the module, so with the program gone the
# reference count must drop to 0 and the module must unload cleanly.
sleep 0.2
echo "=== KDIFF MODULE REFCNT \$(cat /sys/module/agx_synctest/refcnt) ==="
rmmod agx_synctest
echo "=== KDIFF RMMOD \$? ==="
echo "=== BEGIN DMESG ==="
dmesg
echo "=== END DMESG ==="
echo "=== KDIFF GUEST DONE \$(cut -d' ' -f1 /proc/uptime) ==="
poweroff -f
EOF
chmod 755 "$ROOT/init"

INITRD="$TMP/initramfs.cpio"
(cd "$ROOT" && find . -print0 | sort -z | cpio --null -o -H newc -R 0:0 --quiet >"$INITRD") ||
	die "cpio failed"
T_INITRD=$(stamp initramfs_packed_at)
log "initramfs $(du -h "$INITRD" | cut -f1), modules: ${LOAD_ORDER[*]}, program: $PROG_NAME${ARGS_Q}"

# -------------------------------------------------------------------- boot --
SERIAL="$OUT/serial.log"
QEMU=(qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1G -nographic -no-reboot -nic none
	-pidfile "$QEMU_PIDFILE"
	-kernel "$VMLINUZ" -initrd "$INITRD"
	-append "console=ttyS0 panic=-1 quiet")
T_BOOT0=$(date +%s.%N)
timeout --kill-after=5 "$LIMIT" "${QEMU[@]}" </dev/null >"$SERIAL" 2>"$TMP/qemu.stderr" &
RUNNER_PID=$!
qrc=0
wait "$RUNNER_PID" || qrc=$?
RUNNER_PID=""
T_BOOT=$(since "$T_BOOT0")

# ----------------------------------------------------------------- results --
tr -d '\r' <"$SERIAL" >"$TMP/serial.txt"
# The program's last line may lack a newline: END can then follow it.
awk '/^=== BEGIN TRANSCRIPT ===$/ { on = 1; next }
     on && /=== END TRANSCRIPT ===$/ { sub(/=== END TRANSCRIPT ===$/, ""); if ($0 != "") print; on = 0; next }
     on' \
	"$TMP/serial.txt" >"$OUT/transcript.txt"
awk '/^=== BEGIN DMESG ===$/ {on=1; next} /^=== END DMESG ===$/ {on=0} on' \
	"$TMP/serial.txt" >"$OUT/dmesg.txt"
grep -q '=== END TRANSCRIPT ===$' "$TMP/serial.txt" && have_markers=1 || have_markers=0
grep -q '^=== BEGIN TRANSCRIPT ===$' "$TMP/serial.txt" || have_markers=0
guest_rc=$(sed -n 's/^=== EXIT CODE: \([0-9]*\) ===$/\1/p' "$TMP/serial.txt" | tail -n1)
echo "${guest_rc:-none}" >"$OUT/exit_code"
up=$(sed -n 's/.*=== KDIFF GUEST UP \(.*\) ===$/\1/p' "$TMP/serial.txt")
done_t=$(sed -n 's/^=== KDIFF GUEST DONE \(.*\) ===$/\1/p' "$TMP/serial.txt")
{
	echo "$T_MODULE"; echo "$T_PROG"; echo "$T_INITRD"
	echo "qemu_wall $T_BOOT"
	echo "guest_uptime_at_init ${up:-?}"
	echo "guest_uptime_at_done ${done_t:-?}"
	echo "total $(since "$T_START")"
} >"$OUT/timings.txt"

status=0
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	log "TIMEOUT after ${LIMIT}s (serial log: $SERIAL)"
	status=3
elif [ "$qrc" != 0 ]; then
	cat "$TMP/qemu.stderr" >&2
	log "qemu exited with $qrc"
	status=2
fi
if [ "$status" = 0 ] && [ "$have_markers" = 0 ]; then
	grep -E 'KDIFF INSMOD FAILED|Kernel panic|not syncing' "$TMP/serial.txt" >&2 || true
	log "transcript markers missing (serial log: $SERIAL)"
	status=1
fi
if [ "$status" = 0 ] && [ "${guest_rc:-x}" != 0 ]; then
	log "guest program exited with ${guest_rc:-unknown}"
	status=1
fi
refcnt=$(sed -n 's/^=== KDIFF MODULE REFCNT \(.*\) ===$/\1/p' "$TMP/serial.txt")
rmmod_rc=$(sed -n 's/^=== KDIFF RMMOD \(.*\) ===$/\1/p' "$TMP/serial.txt")
if [ "$status" = 0 ] && { [ "$refcnt" != 0 ] || [ "$rmmod_rc" != 0 ]; }; then
	log "agx_synctest leak check failed: refcnt after exit '${refcnt}', rmmod rc '${rmmod_rc}'"
	status=1
fi
if grep -Eq 'WARNING:|BUG:|Call Trace:|general protection|refcount_t:' "$OUT/dmesg.txt"; then
	log "kernel splat in guest log (see $OUT/dmesg.txt)"
	if [ "$ALLOW_SPLAT" = 0 ] && [ "$status" = 0 ]; then status=1; fi
fi

cat "$OUT/transcript.txt"
log "$(tr '\n' ' ' <"$OUT/timings.txt")"
if [ "$status" = 0 ]; then log "PASS"; else log "FAIL (status $status)"; fi
exit "$status"
