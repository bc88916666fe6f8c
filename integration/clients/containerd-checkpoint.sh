#!/usr/bin/env bash
# containerd checkpoint/restore through coop: containerd-checkpoint.sh /path/to/coop
# A private containerd as in containerd.sh; `ctr containers checkpoint --task` and
# `ctr containers restore --live` go through containerd-shim-runc-v2 to `coop checkpoint` and
# `coop restore`. Needs a working CRIU (`criu check`): run it in the cgroup v2 guest
# (integration/v2vm/run-in-vm.sh DIR integration/clients/containerd-checkpoint.sh COOP).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 RUNTIME (a path, or a name on PATH)" >&2; exit 2; }
runtime=$(command -v "$1") || { echo "$0: no runtime $1" >&2; exit 2; }
runtime=$(realpath "$runtime")
if ! out=$(criu check 2>&1); then
  echo "SKIPPED: containerd checkpoint: criu check fails here: $(echo "$out" | grep -m1 Error)"
  exit 0
fi

work=$(mktemp -d /tmp/coop-ctr.XXXXXX)
sock=$work/containerd.sock
daemon=
c() { timeout 120 ctr -a "$sock" -n coop "$@"; }
cleanup() {
  local status=$?
  if [ -n "$daemon" ]; then
    # Tasks left by a failed check: their shims would outlive the daemon.
    for t in $(c task ls -q 2>/dev/null); do c task kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    for t in $(c task ls -q 2>/dev/null); do c task delete -f "$t" >/dev/null 2>&1 || true; done
    for t in $(c container ls -q 2>/dev/null); do c container delete "$t" >/dev/null 2>&1 || true; done
    kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  fi
  grep -o " $work/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
  summary_on_abort $status
}
trap cleanup EXIT

# overlayfs when the kernel and the filesystem under /tmp allow it (not overlay on overlay),
# else the native (copying) snapshotter.
snap=native
mkdir -p "$work/probe"/{l,u,w,m}
if mount -t overlay overlay -o "lowerdir=$work/probe/l,upperdir=$work/probe/u,workdir=$work/probe/w" \
    "$work/probe/m" 2>/dev/null; then
  umount "$work/probe/m"; snap=overlayfs
fi
rm -rf "$work/probe"
export CONTAINERD_SNAPSHOTTER=$snap   # read by ctr images import and ctr run
echo "# snapshotter: $snap"

# The shim's runtime state goes under $work/runc (ctr run --runc-root), not the default
# /run/containerd/runc/<namespace>. containerd 1.6 still puts its shims' sockets in
# /run/containerd/s and ctr its fifos in /run/containerd/fifo, whatever the config says.
# The CRI plugin is off: it is not needed by ctr and would want CNI and more.
cat > "$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "$work/root/overlayfs"
CONF
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
daemon=$!
up=
for _ in $(seq 100); do [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1 && { up=1; break; }; sleep 0.1; done
[ -n "$up" ] || { echo "containerd did not start:" >&2; tail -20 "$work/containerd.log" >&2; exit 1; }

# An OCI image made offline: a busybox layer and a manifest, as an OCI archive.
img=localhost/busybox:coop
make_busybox_rootfs "$work/rootfs"
make_busybox_oci_archive "$work/rootfs" "$work/image.tar" $img
c images import "$work/image.tar" >/dev/null || { tail -5 "$work/containerd.log" >&2; exit 1; }

count() { c task exec --exec-id "x$RANDOM" "$1" cat /tmp/count 2>/dev/null || echo 0; }
wait_above() { # wait_above TASK N: until the task's count is above N (60 s)
  local i
  for i in $(seq 300); do [ "$(count "$1")" -gt "$2" ] && return 0; sleep 0.2; done
  echo "    count of $1 stayed at $(count "$1")" >&2; return 1
}
c run -d --runc-binary "$runtime" --runc-root "$work/runc" $img k1 \
  sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'
check "the counter runs" wait_above k1 3
echo "# checkpointing"
check "ctr containers checkpoint --task" c containers checkpoint --task k1 localhost/k1:ckpt
check "the original still runs" expect_eq RUNNING "$(c task ls | awk '$1=="k1"{print $3}')"
n=$(count k1)
c task kill -s SIGKILL k1 >/dev/null; sleep 1; c task delete k1 >/dev/null 2>&1 || true
check "ctr containers restore --live" c containers restore --live k2 localhost/k1:ckpt
check "the restored task runs" expect_eq RUNNING "$(c task ls | awk '$1=="k2"{print $3}')"
check "the restored count continues" wait_above k2 "$n"
c task kill -s SIGKILL k2 >/dev/null 2>&1 || true
summary
