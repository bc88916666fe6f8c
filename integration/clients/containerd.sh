#!/usr/bin/env bash
# containerd through coop: containerd.sh /path/to/coop
# A private containerd (own root, state and socket) runs containers with
# `ctr run --runc-binary coop`, through containerd-shim-runc-v2, and is stopped at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 RUNTIME (a path, or a name on PATH)" >&2; exit 2; }
runtime=$(command -v "$1") || { echo "$0: no runtime $1" >&2; exit 2; }
runtime=$(realpath "$runtime")

work=$(mktemp -d /tmp/coop-ctr.XXXXXX)
sock=$work/containerd.sock
daemon=
c() { ctr -a "$sock" -n coop "$@"; }
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

check "ctr run --rm prints" expect_eq "hi" "$(c run --rm --runc-binary "$runtime" --runc-root "$work/runc" $img t1 echo hi)"
# ctr without CNI: a new network namespace with nothing in it but its loopback, which is up.
check "ctr run: lo is up" expect_eq "unknown" "$(c run --rm --runc-binary "$runtime" --runc-root "$work/runc" $img tlo cat /sys/class/net/lo/operstate)"
code=0; c run --rm --runc-binary "$runtime" --runc-root "$work/runc" $img t2 sh -c 'exit 5' || code=$?
check "exit code" expect_eq 5 "$code"
c run -d --runc-binary "$runtime" --runc-root "$work/runc" $img t3 sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done'
sleep 0.3
check "detached task runs" expect_eq RUNNING "$(c task ls | awk '$1=="t3"{print $3}')"

check "task ps lists the pids" eval '[ "$(c task ps t3 | awk '"'"'$1 ~ /^[0-9]+$/'"'"' | wc -l)" -ge 2 ]'
check "task exec prints" expect_eq "in-container" "$(c task exec --exec-id e1 t3 echo in-container)"
code=0; c task exec --exec-id e2 t3 sh -c 'exit 6' || code=$?
check "task exec exit code" expect_eq 6 "$code"
check "task exec --user --cwd" expect_eq "65534 /tmp" "$(c task exec --exec-id e3 --user 65534 --cwd /tmp t3 sh -c 'echo $(id -u) $(pwd)')"
# ctr itself may complain afterwards that it cannot resize the finished process: first line.
# script(1) may echo its stdin's end as "^@" into the output: not the container's.
out=$(script -qec "ctr -a $sock -n coop task exec --tty --exec-id e4 t3 tty" /dev/null </dev/null | tr -d '\r\000' | sed 's/\^@//g' | head -1)
check "task exec --tty gives a terminal" expect_eq "/dev/pts/0" "$out"
check "task pause" c task pause t3
check "task paused" expect_eq PAUSED "$(c task ls | awk '$1=="t3"{print $3}')"
check "task resume" c task resume t3
# Captured first: `ctr ... | grep -q` under pipefail fails when grep exits before ctr is done.
metrics=$(c task metrics t3 2>&1) || true
echo "$metrics" | sed 's/^/#   /'
metric() { echo "$metrics" | awk -v k="$1" '$1==k{print $2}'; }
check "task metrics: memory in use" eval '[ "$(metric memory.usage_in_bytes)" -gt 0 ]'
check "task metrics: the task's pids" eval '[ "$(metric pids.current)" -ge 2 ]'
check "task kill" c task kill t3
for _ in $(seq 50); do [ "$(c task ls | awk '$1=="t3"{print $3}')" = STOPPED ] && break; sleep 0.1; done
check "task stopped" expect_eq STOPPED "$(c task ls | awk '$1=="t3"{print $3}')"
check "task delete" eval "c task delete t3 >/dev/null"
check "container delete" c container delete t3
# A second container joining the first's network namespace, as CRI builds pods.
c run -d --runc-binary "$runtime" --runc-root "$work/runc" $img p1 sleep 100
p1=$(c task ls | awk '$1=="p1"{print $2}')
c run -d --runc-binary "$runtime" --runc-root "$work/runc" --with-ns "network:/proc/$p1/ns/net" $img p2 sleep 100
check "--with-ns joins the network namespace" expect_eq \
  "$(readlink /proc/$p1/ns/net)" "$(readlink "/proc/$(c task ls | awk '$1=="p2"{print $2}')/ns/net")"
for t in p2 p1; do c task kill -s SIGKILL $t; done
sleep 0.5
for t in p2 p1; do c task delete $t >/dev/null; c container delete $t; done
summary
