#!/usr/bin/env bash
# podman through coop: podman.sh /path/to/coop
# podman (through conmon) creates, starts, kills and deletes containers with coop as its
# --runtime, with its own storage and configuration so nothing on the host is touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 RUNTIME (a path, or a name on PATH)" >&2; exit 2; }
runtime=$(command -v "$1") || { echo "$0: no runtime $1" >&2; exit 2; }
runtime=$(realpath "$runtime")
name=$(basename "$runtime")

work=$(mktemp -d /tmp/coop-pm.XXXXXX)   # podman refuses a runroot longer than 50 characters
# conmon writes an "oom" marker into its working directory when a container is OOM-killed.
cd "$work"
cleanup() {
  local status=$?
  pm pod rm -af -t 0 >/dev/null 2>&1 || true
  pm rm -af -t 0 >/dev/null 2>&1 || true
  pm rmi -af >/dev/null 2>&1 || true
  [ -z "${loop:-}" ] || losetup -d "$loop" 2>/dev/null || true
  # Whatever podman left mounted under the work directory (shm, overlay), deepest first.
  grep -o " $work/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
  summary_on_abort $status
}
trap cleanup EXIT

cat > "$work/containers.conf" <<CONF
[containers]
# podman's default ulimits ask for 1048576 open files, above what this host lets anyone raise.
default_ulimits = []
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
# Nothing in the host's /run/libpod: per-boot state and the event log stay in the work dir.
tmp_dir = "$work/tmp"
events_logfile_path = "$work/events.log"
runtime = "$name"
# podman passes --log-format=json --log FILE only to the runtimes named here.
runtime_supports_json = ["$name", "crun", "runc", "kata", "runsc", "youki", "krun", "ocijail"]
[engine.runtimes]
$name = ["$runtime"]
CONF
export CONTAINERS_CONF="$work/containers.conf"
mkdir -p "$work/vartmp"
export TMPDIR="$work/vartmp"   # podman's image copies, instead of /var/tmp
pm() { podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs --runtime "$runtime" "$@"; }

make_busybox_rootfs "$work/rootfs"
# The pod's infra process.
printf '#!/bin/sh\ntrap "exit 0" TERM\nwhile :; do sleep 1; done\n' > "$work/rootfs/pause"
chmod +x "$work/rootfs/pause"
img=localhost/busybox:coop
PODMAN_CMD=pm make_busybox_image $img "" "$work/rootfs"

check "run --rm prints" expect_eq "hi" "$(pm run --rm $img echo hi)"
# A new network namespace has its loopback up, as with runc: 127.0.0.1 works without a network.
check "--network none: lo is up" expect_eq "unknown" "$(pm run --rm --network none $img cat /sys/class/net/lo/operstate)"
check "--network none: 127.0.0.1 reachable" expect_eq "served" "$(pm run --rm --network none $img sh -c \
  '(while :; do echo served | nc -l -p 5603; done) & for i in $(seq 200); do r=$(nc 127.0.0.1 5603 </dev/null 2>/dev/null); [ "$r" = served ] && echo served && exit; sleep 0.05; done')"
check "podman uses the given runtime" expect_eq "$runtime" "$(pm info --format '{{.Host.OCIRuntime.Path}}')"
code=0; pm run --rm $img sh -c 'exit 3' || code=$?
check "exit code" expect_eq 3 "$code"
code=0; pm run --rm $img nosuchprog >/dev/null 2>&1 || code=$?
check "missing program exits 127" expect_eq 127 "$code"
cid=$(pm run -d $img sh -c 'echo started; trap "exit 0" TERM; while :; do sleep 0.1; done')
sleep 0.5
check "run -d then logs" expect_eq "started" "$(pm logs "$cid")"
check "the container runs" expect_eq "running" "$(pm inspect -f '{{.State.Status}}' "$cid")"
check "exec prints" expect_eq "in-container" "$(pm exec $cid echo in-container)"
code=0; pm exec $cid sh -c 'exit 4' || code=$?
check "exec exit code" expect_eq 4 "$code"
check "exec -u -w -e" expect_eq "65534 /tmp bar" "$(pm exec -u 65534 -w /tmp -e FOO=bar $cid sh -c 'echo $(id -u) $(pwd) $FOO')"
# script(1) may echo its stdin's end as "^@" into the output: not the container's.
out=$(script -qec "podman --root $work/storage --runroot $work/run --storage-driver vfs --runtime $runtime exec -t $cid tty" /dev/null </dev/null | tr -d '\r\000' | sed 's/\^@//g')
check "exec -t gives a terminal" expect_eq "/dev/pts/0" "$out"
check "exec -i reads stdin" expect_eq "piped" "$(echo piped | pm exec -i $cid cat)"
check "pause" eval "pm pause $cid >/dev/null"
check "paused" expect_eq "paused" "$(pm inspect -f '{{.State.Status}}' "$cid")"
check "unpause" eval "pm unpause $cid >/dev/null"
check "running again" expect_eq "running" "$(pm inspect -f '{{.State.Status}}' "$cid")"
# Outputs are captured before grep: `cmd | grep -q` under pipefail fails when grep exits first.
top=$(pm top $cid 2>&1) || true
check "top lists the container's processes" eval 'echo "$top" | grep -q "sh -c"'
check "update --memory" eval "pm update --memory 64m $cid >/dev/null"
pid=$(pm inspect -f '{{.State.Pid}}' "$cid")
check "update --memory reaches the cgroup" expect_eq 67108864 \
  "$(cg_read "$pid" memory memory.limit_in_bytes memory.max)"
stats=$(pm stats --no-stream --format '{{.MemUsage}}' $cid 2>&1) || true
check "stats reads the container's usage" eval 'echo "$stats" | grep -q "B / "'
check "stop" eval "pm stop -t 5 $cid >/dev/null"
check "stopped" expect_eq "exited" "$(pm inspect -f '{{.State.Status}}' "$cid")"
check "rm" eval "pm rm $cid >/dev/null"
out=$(script -qec "podman --root $work/storage --runroot $work/run --storage-driver vfs --runtime $runtime run --rm -t $img sh -c 'test -t 0 && tty'" /dev/null </dev/null | tr -d '\r\000' | sed 's/\^@//g')
check "run -t gives a terminal" expect_eq "/dev/pts/0" "$out"
# Resource flags, as the user sees them.
code=0
pm run --rm --memory 32m --memory-swap 32m $img sh -c "x=\$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived" >"$work/oom.out" 2>&1 || code=$?
check "--memory 32m: a 200 MB allocation is OOM-killed (137)" expect_eq "137 " "$code $(grep -o survived "$work/oom.out" || true)"
pm run --rm --pids-limit 5 $img sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo all-forked' >"$work/pids.out" 2>&1 || true
forks_stopped() { grep -q "can't fork" "$work/pids.out" && ! grep -q all-forked "$work/pids.out"; }
check "--pids-limit 5 stops forks" forks_stopped
cid=$(pm run -d --cpus 0.5 --pids-limit 50 $img sleep 100)
pid=$(pm inspect -f '{{.State.Pid}}' "$cid")
check "--cpus 0.5 sets the cpu quota" expect_eq "50000" \
  "$(cg_read "$pid" cpu cpu.cfs_quota_us cpu.max | cut -d' ' -f1)"
check "--pids-limit reaches the cgroup" expect_eq 50 "$(cg_read "$pid" pids pids.max pids.max)"
pm rm -f -t 0 "$cid" >/dev/null
# A pod: two containers sharing the infra container's namespaces (the infra image is ours).
check "pod create" eval "pm pod create --name coop-pod --infra-image $img --infra-command /pause >/dev/null"
c1=$(pm run -d --pod coop-pod $img sleep 100)
c2=$(pm run -d --pod coop-pod $img sleep 100)
check "pod members share the network namespace" expect_eq \
  "$(pm exec "$c1" readlink /proc/self/ns/net)" "$(pm exec "$c2" readlink /proc/self/ns/net)"
check "pod members have their own mount namespaces" eval \
  "[ \"$(pm exec $c1 readlink /proc/self/ns/mnt)\" != \"$(pm exec $c2 readlink /proc/self/ns/mnt)\" ]"
check "pod rm" eval "pm pod rm -f -t 0 coop-pod >/dev/null"
# A device granted read-only (--device HOST:CTR:r): readable, a write refused with EPERM, and
# the host's backing file unchanged.
head -c 1048576 /dev/zero > "$work/disk"
loop=$(losetup --find --show "$work/disk")
out=$(pm run --rm --device "$loop:/dev/xvdc:r" $img sh -c \
  'head -c 4 /dev/xvdc | wc -c; printf wwww > /dev/xvdc && echo written' 2>&1) || true
losetup -d "$loop"; loop=
check "--device HOST:CTR:r can be read" eval 'echo "$out" | grep -qx 4'
check "--device HOST:CTR:r refuses a write (EPERM)" eval \
  'echo "$out" | grep -q "Operation not permitted" && ! echo "$out" | grep -q written'
check "--device HOST:CTR:r leaves the host's file unchanged" expect_eq 0 "$(tr -d '\000' < "$work/disk" | wc -c)"

# Pods with podman's own infra (catatonit, in a pause image podman builds offline): every pod
# command succeeds and leaves nothing running, also after the infra process was SIGKILLed
# (its members keep running until podman stops them, as with runc).
pod_pids() { # pod_pids POD: host pids of the pod's running containers
  local c p
  for c in $(pm ps -aq --filter pod="$1"); do
    p=$(pm inspect -f '{{.State.Pid}}' "$c"); [ "$p" = 0 ] || echo "$p"
  done
}
gone() { # gone PID...: none of these processes is alive (zombies count as gone)
  local p
  for p in "$@"; do
    if [ -d "/proc/$p" ] && ! grep -q '^State:.*zombie' "/proc/$p/status" 2>/dev/null; then
      echo "    pid $p still runs: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)" >&2; return 1
    fi
  done
}
pod_states() { # pod_states POD: the distinct states of the pod's containers
  # (podman says "stopped" until its cleanup has recorded the exit, then "exited")
  pm inspect -f '{{.State.Status}}' $(pm ps -aq --filter pod="$1") | sed 's/^stopped$/exited/' |
    sort -u | tr '\n' ' ' | sed 's/ $//'
}
kill_infra() { # kill_infra POD: SIGKILL the infra process, as the OOM killer would
  local infra pid
  infra=$(pm pod inspect -f '{{.InfraContainerID}}' "$1")
  pid=$(pm inspect -f '{{.State.Pid}}' "$infra")
  kill -9 "$pid"
  while [ -d "/proc/$pid" ] && ! grep -q '^State:.*zombie' "/proc/$pid/status" 2>/dev/null; do sleep 0.1; done
}
# One member exits on TERM; the other traps and ignores it: `pod stop -t 2` must SIGKILL it
# after 2 s (and restart and rm -f after its --stop-timeout of 2 s).
polite='trap "exit 0" TERM; while :; do sleep 0.2; done'
stubborn='trap "echo ignored" TERM; while :; do sleep 0.2; done'
for round in plain infra-killed; do
  pod=coop-pod-$round
  check "$round: pod create" eval "pm pod create --name $pod >/dev/null"
  pm run -d --pod $pod --stop-timeout 2 $img sh -c "$polite" >/dev/null
  m2=$(pm run -d --pod $pod --stop-timeout 2 $img sh -c "$stubborn")
  check "$round: pod runs" expect_eq running "$(pod_states $pod)"
  pids=$(pod_pids $pod)
  if [ $round = infra-killed ]; then
    kill_infra $pod
    check "$round: exec into a member of a pod whose infra died" expect_eq in "$(pm exec "$m2" echo in)"
  fi
  check "$round: pod kill" eval "pm pod kill $pod >/dev/null"
  check "$round: pod kill leaves nothing running" gone $pids
  check "$round: pod kill stops every container" expect_eq exited "$(pod_states $pod)"
  check "$round: pod start" eval "pm pod start $pod >/dev/null"
  check "$round: pod start runs every container" expect_eq running "$(pod_states $pod)"
  pids=$(pod_pids $pod)
  [ $round = plain ] || kill_infra $pod
  check "$round: pod stop -t 2 (a member ignores TERM)" eval "pm pod stop -t 2 $pod >/dev/null"
  check "$round: pod stop leaves nothing running" gone $pids
  check "$round: pod stop stops every container" expect_eq exited "$(pod_states $pod)"
  pm pod start $pod >/dev/null
  pids=$(pod_pids $pod)
  [ $round = plain ] || kill_infra $pod
  check "$round: pod restart" eval "pm pod restart $pod >/dev/null"
  check "$round: pod restart runs every container" expect_eq running "$(pod_states $pod)"
  check "$round: pod restart leaves no old process" gone $pids
  pids=$(pod_pids $pod)
  cids=$(pm ps -aq --no-trunc --filter pod=$pod)
  [ $round = plain ] || kill_infra $pod
  check "$round: pod rm -f" eval "pm pod rm -f $pod >/dev/null"
  check "$round: pod rm -f leaves nothing running" gone $pids
  # (podman itself leaves the pod's libpod_parent/<pod> cgroup in the unified and name=systemd
  # hierarchies of a hybrid host, with runc too; the containers' cgroups must go.)
  check "$round: pod rm -f leaves no container cgroup" eval \
    "! for c in $(echo $cids); do find /sys/fs/cgroup -maxdepth 6 -type d -name \"*\$c*\"; done | grep ."
done
summary
