#!/usr/bin/env bash
# podman checkpoint/restore through coop: podman-checkpoint.sh /path/to/coop
# Needs a working CRIU (`criu check`): Debian's criu 3.17 works in the cgroup v2 guest
# (integration/v2vm/run-in-vm.sh DIR integration/clients/podman-checkpoint.sh COOP), not on
# 6.x kernels with the [vvar_vclock] mapping. Own storage and configuration, as podman.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 RUNTIME (a path, or a name on PATH)" >&2; exit 2; }
runtime=$(command -v "$1") || { echo "$0: no runtime $1" >&2; exit 2; }
runtime=$(realpath "$runtime")
name=$(basename "$runtime")
if ! out=$(criu check 2>&1); then
  echo "SKIPPED: podman checkpoint: criu check fails here: $(echo "$out" | grep -m1 Error)"
  exit 0
fi

work=$(mktemp -d /tmp/coop-pc.XXXXXX)
cd "$work"
cleanup() {
  local status=$?
  pm rm -af -t 0 >/dev/null 2>&1 || true
  pm rmi -af >/dev/null 2>&1 || true
  grep -o " $work/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
  summary_on_abort $status
}
trap cleanup EXIT

cat > "$work/containers.conf" <<CONF
[containers]
default_ulimits = []
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$work/tmp"
events_logfile_path = "$work/events.log"
runtime = "$name"
runtime_supports_json = ["$name", "crun", "runc", "kata", "runsc", "youki", "krun", "ocijail"]
[engine.runtimes]
$name = ["$runtime"]
CONF
export CONTAINERS_CONF="$work/containers.conf"
mkdir -p "$work/vartmp"
export TMPDIR="$work/vartmp"
pm() { podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs --runtime "$runtime" "$@"; }

make_busybox_rootfs "$work/rootfs"
img=localhost/busybox:coop
PODMAN_CMD=pm make_busybox_image $img "" "$work/rootfs"

count() { pm exec "$1" cat /tmp/count 2>/dev/null || echo 0; }
wait_above() { # wait_above CID N: until the container's count is above N (60 s)
  local i
  for i in $(seq 600); do [ "$(count "$1")" -gt "$2" ] && return 0; sleep 0.1; done
  echo "    count of $1 stayed at $(count "$1")" >&2; return 1
}
cid=$(pm run -d --name ck1 $img sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done')
check "the counter runs" wait_above ck1 3
check "podman container checkpoint" pm container checkpoint ck1
check "checkpointed: exited" expect_eq exited "$(pm inspect -f '{{.State.Status}}' ck1)"
check "podman container restore" pm container restore ck1
check "restored: running" expect_eq running "$(pm inspect -f '{{.State.Status}}' ck1)"
n=$(count ck1)
check "the count continues" wait_above ck1 "$n"
check "checkpoint --export" pm container checkpoint --export "$work/ck1.tar.gz" ck1
check "restore --import under a new name" pm container restore --import "$work/ck1.tar.gz" --name ck2
check "the copy runs" expect_eq running "$(pm inspect -f '{{.State.Status}}' ck2)"
n=$(count ck2)
check "the copy counts on" wait_above ck2 "$n"
check "checkpoint --leave-running" pm container checkpoint --leave-running ck2
check "still running" expect_eq running "$(pm inspect -f '{{.State.Status}}' ck2)"
check "rm -f" pm rm -f -t 0 ck1 ck2
summary
