#!/usr/bin/env bash
# bench.sh [COOP] [RUNC]: times coop beside runc on the same busybox bundle, each runtime
# with its own --root, and prints a markdown table with the ratio coop/runc.
#   run /bin/true              create + start + wait + delete in one command
#   create+start+wait+delete   the four commands a client issues (state polled until stopped)
#   state                      of a created container
#   list (100 containers)      with 100 created containers
# COOP defaults to target/release/coop, RUNC to runc on PATH; either may be a path or a name on
# PATH (bench.sh runc runc compares runc with itself). RUNS=N sets the runs per measure (50).
# Uses hyperfine when it is installed (apt-get install hyperfine) unless NO_HYPERFINE=1, else
# a plain loop timed with date +%s%N. One bundle, made with runc's `spec`, serves both runtimes: process
# /bin/true, no terminal, writable root, namespaces pid, mount, ipc, uts and network.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/integration/lib/rootfs.sh"
resolve() { # resolve NAME-OR-PATH: an absolute path to an executable
  local p
  p=$(command -v "$1") || { echo "bench.sh: no runtime $1" >&2; exit 2; }
  realpath "$p"
}
coop=$(cd "$top" && resolve "${1:-target/release/coop}")
runc=$(resolve "${2:-runc}")
runs=${RUNS:-50}
command -v python3 >/dev/null || { echo "bench.sh: python3 is needed" >&2; exit 2; }

work=$(mktemp -d /tmp/coop-bench.XXXXXX)
cleanup() {
  local rt r id
  for rt in coop runc; do
    r=$work/root-$rt
    [ -d "$r" ] || continue
    for id in $("${!rt}" --root "$r" list -q 2>/dev/null); do
      "${!rt}" --root "$r" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  umount "$work/ro" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

b=$work/bundle
make_busybox_rootfs "$b/rootfs"
(cd "$b" && "$runc" spec)
python3 - "$b/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["readonly"] = False
# The same namespaces for both runtimes.
c["linux"]["namespaces"] = [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount"]]
json.dump(c, open(p, "w"), indent=1)
PY

# The same bundle with podman's seccomp profile (containers-common), for the per-create cost
# of compiling and installing it.
bs=$work/bundle-seccomp
profile=/usr/share/containers/seccomp.json
if [ -r "$profile" ]; then
  mkdir -p "$bs"
  python3 - "$b/config.json" "$profile" "$bs/config.json" "$b/rootfs" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["linux"]["seccomp"] = json.load(open(sys.argv[2]))
c["root"]["path"] = sys.argv[4]   # runc refuses a symlinked rootfs
json.dump(c, open(sys.argv[3], "w"), indent=1)
PY
fi

use_hf=
[ -z "${NO_HYPERFINE:-}" ] && command -v hyperfine >/dev/null && use_hf=1
if [ -n "$use_hf" ]; then method="hyperfine, $runs runs after 3 warmups"
else method="plain loop of $runs runs after 1 warmup"; fi

# time_ms CMD: mean wall time of CMD in ms. CMD is split on spaces (no quoting needed here).
time_ms() {
  if [ -n "$use_hf" ]; then
    hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/h.json" "$1" >"$work/h.log" 2>&1 ||
      { cat "$work/h.log" >&2; return 1; }
    python3 -c "import json,sys;print('%.2f'%(json.load(open(sys.argv[1]))['results'][0]['mean']*1000))" "$work/h.json"
  else
    local s e i
    $1 >/dev/null 2>&1 </dev/null || { echo "bench.sh: failed: $1" >&2; return 1; }   # warmup
    s=$(date +%s%N)
    for ((i = 0; i < runs; i++)); do $1 >/dev/null 2>&1 </dev/null; done
    e=$(date +%s%N)
    python3 -c "import sys;print('%.2f'%((int(sys.argv[2])-int(sys.argv[1]))/1e6/int(sys.argv[3])))" "$s" "$e" "$runs"
  fi
}

declare -A res
for rt in coop runc; do
  bin=${!rt}; r=$work/root-$rt; mkdir -p "$r"
  # Container ids unique to this run: with no cgroupsPath, the id names the cgroup.
  id=cb$$-$rt
  res[$rt,run]=$(time_ms "$bin --root $r run -b $b $id-run")
  res[$rt,seccomp]=n/a
  [ -d "$bs" ] && res[$rt,seccomp]=$(time_ms "$bin --root $r run -b $bs $id-sc")
  # What a client does: create, start, poll state until the process has exited, delete.
  cat > "$work/cycle-$rt.sh" <<SH
set -e
$bin --root $r create -b $b $id-cycle </dev/null >/dev/null 2>&1
$bin --root $r start $id-cycle
for i in \$(seq 10000); do
  case \$($bin --root $r state $id-cycle) in *'"status": "stopped"'*|*'"status":"stopped"'*) break ;; esac
done
$bin --root $r delete $id-cycle
SH
  res[$rt,cycle]=$(time_ms "bash $work/cycle-$rt.sh")
  "$bin" --root "$r" create -b "$b" "$id-s0" </dev/null >/dev/null 2>&1
  res[$rt,state]=$(time_ms "$bin --root $r state $id-s0")
  for i in $(seq 99); do "$bin" --root "$r" create -b "$b" "$id-s$i" </dev/null >/dev/null 2>&1; done
  n=$("$bin" --root "$r" list -q | wc -l)
  [ "$n" = 100 ] || { echo "bench.sh: $rt lists $n containers, not 100" >&2; exit 1; }
  res[$rt,list]=$(time_ms "$bin --root $r list")
  for c in $("$bin" --root "$r" list -q); do "$bin" --root "$r" delete -f "$c"; done
done

echo "coop: $coop"
echo "runc: $runc"
echo "mean wall time in ms ($method)"
echo
echo "| operation | coop (ms) | runc (ms) | ratio coop/runc |"
echo "|---|---:|---:|---:|"
for op in run seccomp cycle state list; do
  [ "${res[coop,$op]}" = n/a ] && continue
  case $op in run) label='`run` /bin/true';; cycle) label='create + start + wait + delete';;
    seccomp) label="\`run\` /bin/true with podman's seccomp profile";;
    state) label='`state`';; list) label='`list` (100 containers)';; esac
  printf '| %s | %s | %s | %s |\n' "$label" "${res[coop,$op]}" "${res[runc,$op]}" \
    "$(python3 -c "import sys;print('%.2f'%(float(sys.argv[1])/float(sys.argv[2])))" "${res[coop,$op]}" "${res[runc,$op]}")"
done

# What the read-only view of coop's binary costs (src/linux/selfexe.rs): `create` of a missing
# bundle, which fails right after the re-exec, from a writable copy of the binary (re-executes)
# and from the same binary on a read-only bind mount (needs no view, so no re-exec).
mkdir -p "$work/rw" "$work/ro"
cp "$coop" "$work/rw/coop"; cp "$coop" "$work/ro/coop"
mount --bind "$work/ro" "$work/ro" && mount -o remount,bind,ro "$work/ro"
sealed() { # sealed DIR: mean ms of a failing create
  if [ -n "$use_hf" ]; then
    hyperfine -N -i --warmup 10 --runs $((runs * 4)) --export-json "$work/s.json" \
      "$1/coop --root $work/root-coop create -b $work/none x" >/dev/null 2>&1
    python3 -c "import json,sys;print('%.2f'%(json.load(open(sys.argv[1]))['results'][0]['mean']*1000))" "$work/s.json"
  else
    local s e i n=$((runs * 4))
    s=$(date +%s%N)
    for ((i = 0; i < n; i++)); do "$1/coop" --root "$work/root-coop" create -b "$work/none" x >/dev/null 2>&1 || true; done
    e=$(date +%s%N)
    python3 -c "import sys;print('%.2f'%((int(sys.argv[2])-int(sys.argv[1]))/1e6/int(sys.argv[3])))" "$s" "$e" "$n"
  fi
}
rw=$(sealed "$work/rw"); ro=$(sealed "$work/ro")
umount "$work/ro"
echo
printf 'read-only view of the binary: a failing `create` takes %s ms from a writable path, %s ms from a read-only mount (difference: the re-exec)\n' "$rw" "$ro"
