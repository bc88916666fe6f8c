#!/bin/bash
# integration/v2vm/run-in-vm.sh DIR CMD...
#
# Runs the shell command line CMD as root in a throwaway QEMU guest whose only cgroup hierarchy
# is cgroup2, with every controller the kernel has enabled in the root's subtree_control, and
# exits with CMD's exit code (125: the guest reported none - boot failure, panic or timeout).
#
# The guest runs Debian's kernel (fetched with apt-get download) on the host's own / , shared
# read-only over 9p under a tmpfs overlay: binaries built on the host and the host's tools work
# there, and nothing the guest writes reaches the host, except in DIR, which is shared
# read-write at the same path and is CMD's working directory. /tmp, /run and /var/tmp are
# tmpfs. CMD's stdin is /dev/null; its stdout and stderr come back on ours (the kernel console
# goes to our stderr too).
#
# Environment:
#   COOP_VM_CACHE    cache of kernel, modules and initramfs (/var/cache/coop-v2vm); delete it
#                    to pick up a newer kernel
#   COOP_VM_TIMEOUT  seconds before the guest is killed (1800)
#   COOP_VM_MEM      guest RAM in MiB (2048)
#   COOP_VM_CPUS     vCPUs (1: under TCG a second vCPU makes fork and exec several times slower)
#   COOP_VM_ACCEL    kvm or tcg (kvm when /dev/kvm is usable)
#   COOP_VM_MODULES  kernel modules to load before CMD, e.g. "loop"
#   COOP_VM_KEEP     host directories (space-separated, no spaces in them) that stay visible
#                    in the guest although they lie under /tmp, /var/tmp or /run, e.g. the
#                    checkout (DIR is always visible)
#   COOP_VM_KPKG     kernel package (the one linux-image-amd64 depends on)
# First use needs root and apt: installs qemu-system-x86 when missing and builds the cache
# (about 30 s plus the download).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,26p' "$0" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(realpath "$1"); shift
CACHE=${COOP_VM_CACHE:-/var/cache/coop-v2vm}
say() { echo "run-in-vm: $*" >&2; }
[ -d "$DIR" ] || { say "$DIR is not a directory"; exit 2; }

# qemu-system-x86 from apt. When another qemu package of this host comes from the backports
# (the two would break each other), the backports' qemu-system-x86 is the one that installs.
install_qemu() {
  local opts=(-y -qq --no-install-recommends -o DPkg::Lock::Timeout=600) codename
  apt-get install "${opts[@]}" qemu-system-x86 >/dev/null && return
  apt-get update -qq -o DPkg::Lock::Timeout=600 >&2 || true
  apt-get install "${opts[@]}" qemu-system-x86 >/dev/null && return
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] && apt-get install "${opts[@]}" -t "$codename-backports" qemu-system-x86 >/dev/null
}

# The kernel part of the cache: $CACHE/<package>/{vmlinux,kver,lib/modules/<kver>}, and a
# static busybox (the initramfs's userland, and modprobe for the guest's module autoloading).
build_kernel() {  # $1: kernel package
  local pkg=$1 tmp
  tmp=$(mktemp -d "$CACHE/.build.XXXXXX"); chmod 755 "$tmp"   # apt-get download runs as _apt
  say "building $CACHE/$pkg (apt-get download $pkg busybox-static)"
  (cd "$tmp" && apt-get download "$pkg" busybox-static >&2) ||
    { rm -rf "$tmp"; say "cannot download $pkg"; return 1; }
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
  local kver; kver=$(ls "$tmp/x/lib/modules")
  local vmlinuz=$tmp/x/boot/vmlinuz-$kver
  # Boot the uncompressed ELF kernel (PVH entry) when the bzImage holds an xz payload: under
  # TCG that skips seconds of decompression per boot. Otherwise boot the bzImage itself.
  local off; off=$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1 || true)
  if [ -n "$off" ]; then
    tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream > "$tmp/vmlinux" 2>/dev/null || true
  fi
  head -c 4 "$tmp/vmlinux" 2>/dev/null | grep -q ELF || cp "$vmlinuz" "$tmp/vmlinux"
  # busybox modprobe wants plain .ko files
  find "$tmp/x/lib/modules" -name '*.ko.xz' -exec xz -d {} +
  mkdir -p "$tmp/k/lib/modules"
  mv "$tmp/x/lib/modules/$kver" "$tmp/k/lib/modules/"
  mv "$tmp/vmlinux" "$tmp/k/"
  cp "$tmp/x/bin/busybox" "$tmp/k/busybox"
  "$tmp/k/busybox" depmod -b "$tmp/k" "$kver"
  echo "$kver" > "$tmp/k/kver"
  rm -rf "${CACHE:?}/$pkg"; mv "$tmp/k" "$CACHE/$pkg"; rm -rf "$tmp"
}

# The initramfs: busybox, the modules needed to mount the root (9p over virtio, overlay) and
# init (stage 1). Cheap to build, so it is named after the hash of init and rebuilt with it.
build_initrd() {  # $1: kernel dir, $2: output
  local k=$1 kver ir
  kver=$(cat "$k/kver"); ir=$(mktemp -d "$CACHE/.initrd.XXXXXX")
  mkdir -p "$ir"/{bin,dev,proc,sys,host,upper,newroot}
  cp "$k/busybox" "$ir/bin/busybox"; cp "$HERE/init" "$ir/init"; chmod 755 "$ir/init"
  local m f
  for m in virtio_pci 9pnet_virtio 9p overlay; do   # each with what modules.dep says it needs
    for f in $(grep -E "(^|/)$m\.ko:" "$k/lib/modules/$kver/modules.dep" | tr -d :); do
      mkdir -p "$ir/lib/modules/$kver/$(dirname "$f")"
      cp "$k/lib/modules/$kver/$f" "$ir/lib/modules/$kver/$f"
    done
  done
  "$k/busybox" depmod -b "$ir" "$kver"
  (cd "$ir" && find . | "$k/busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$2.tmp"
  mv "$2.tmp" "$2"; rm -rf "$ir"
}

mkdir -p "$CACHE"
command -v qemu-system-x86_64 >/dev/null || { say "installing qemu-system-x86"; install_qemu; }
PKG=${COOP_VM_KPKG:-$(apt-cache depends linux-image-amd64 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ {print $2; exit}')}
[ -n "$PKG" ] || { say "no kernel package known to apt (run apt-get update)"; exit 2; }
KDIR=$CACHE/$PKG
INITRD=$CACHE/initrd-$PKG-$(sha256sum "$HERE/init" | cut -c1-12).gz
{
  flock 9   # one builder at a time; the others wait and use its result
  [ -f "$KDIR/kver" ] || build_kernel "$PKG"
  [ -f "$INITRD" ] || build_initrd "$KDIR" "$INITRD"
} 9>"$CACHE/.lock"

# The control share: what the guest runs, and where it leaves CMD's exit code.
CTL=$(mktemp -d /tmp/coop-vm.XXXXXX)
QEMU_PID=
# shellcheck disable=SC2317  # (called by the trap)
cleanup() { [ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null || true; rm -rf "$CTL"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "$HERE/guest.sh" "$CTL/guest.sh"
printf '%s\n' "$*" > "$CTL/cmd"
MERGE=0; [ /proc/self/fd/1 -ef /proc/self/fd/2 ] && MERGE=1   # 2>&1 here: one stream there too
{
  printf 'WORKDIR=%q\n' "$DIR"
  printf 'KDIR=%q\n' "$KDIR"
  printf 'MODULES=%q\n' "${COOP_VM_MODULES:-}"
  printf 'KEEP=%q\n' "${COOP_VM_KEEP:-}"
  printf 'MERGE=%q\n' "$MERGE"
} > "$CTL/env"

ACCEL=${COOP_VM_ACCEL:-}
if [ -z "$ACCEL" ]; then
  ACCEL=tcg
  if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; fi
fi
# TCG caches translated code by virtual address: without address-space randomisation, every
# run of a program finds its code already translated (exec is several times faster).
APPEND="console=ttyS1 loglevel=${COOP_VM_LOGLEVEL:-1} panic=-1 mitigations=off edd=off"
APPEND+=" random.trust_cpu=on i8042.noaux i8042.nokbd"
[ "$ACCEL" = tcg ] && APPEND+=" norandmaps"
BIOS=(); [ -f /usr/share/qemu/qboot.rom ] && BIOS=(-bios /usr/share/qemu/qboot.rom)   # boots faster

# The guest's two serial ports (stdout, stderr) are FIFO pairs; our cats copy them to our own
# fds 1 and 2, so the output lands where ours goes, at our file offsets.
mkfifo "$CTL"/{out,err}.{in,out}
cat < "$CTL/out.out" & CAT1=$!
cat < "$CTL/err.out" >&2 & CAT2=$!
share() {  # $1 tag, $2 host path, $3 extra fsdev options
  echo "-fsdev local,id=$1,path=$2,$3 -device virtio-9p-pci,fsdev=$1,mount_tag=$1"
}
rc=0
# shellcheck disable=SC2046  # share() prints options that must be split into words
timeout -k 10 "${COOP_VM_TIMEOUT:-1800}" qemu-system-x86_64 \
  -accel "$ACCEL" -nodefaults -no-reboot -display none -no-user-config "${BIOS[@]}" \
  -m "${COOP_VM_MEM:-2048}" -smp "${COOP_VM_CPUS:-1}" \
  -kernel "$KDIR/vmlinux" -initrd "$INITRD" -append "$APPEND" \
  -chardev pipe,id=out,path="$CTL/out" -serial chardev:out \
  -chardev pipe,id=err,path="$CTL/err" -serial chardev:err \
  $(share host / security_model=none,readonly=on,multidevs=remap) \
  $(share work "$DIR" security_model=passthrough) \
  $(share ctl "$CTL" security_model=passthrough) \
  </dev/null & QEMU_PID=$!
wait "$QEMU_PID" || rc=$?
QEMU_PID=
[ "$rc" = 0 ] || say "qemu exited with status $rc"
# Opening a FIFO read-write never blocks: this ends a cat still waiting for qemu to open it.
true 3<>"$CTL/out.out" 4<>"$CTL/err.out"
wait "$CAT1" "$CAT2" || true
[ -s "$CTL/rc" ] || { say "the guest reported no exit code (boot failure, panic or timeout)"; exit 125; }
exit "$(cat "$CTL/rc")"
