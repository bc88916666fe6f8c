#!/usr/bin/env bash
# bench.sh [COOP] [RUNC]: times coop beside runc on the same busybox bundle, each runtime
# with its own --root, and prints a markdown table with the ratio coop/runc.
#   run /bin/true              create + start + wait + delete in one command
#   create+start+wait+delete   the four commands a client issues
#   state                      of a created container
#   list (100 containers)      with 100 created containers
# Uses hyperfine when it is installed (apt-get install hyperfine), else a plain loop.
set -euo pipefail
cd "$(dirname "$0")/.."
coop=$(realpath "${1:-target/release/coop}")
runc=$(command -v "${2:-runc}")
runs=${RUNS:-50}
here=$(pwd)
source integration/clients/lib.sh
work=$(mktemp -d /tmp/coop-bench.XXXXXX)
cleanup() {
  for rt in "$coop" "$runc"; do
    for r in "$work"/root-*; do
      [ -d "$r" ] || continue
      for id in $("$rt" --root "$r" list -q 2>/dev/null); do "$rt" --root "$r" delete -f "$id" >/dev/null 2>&1 || true; done
    done
  done
  rm -rf "$work"
}
trap cleanup EXIT

make_busybox_rootfs "$work/bundle/rootfs"
"$coop" spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["readonly"] = False
# The same namespaces for both runtimes.
c["linux"]["namespaces"] = [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount"]]
json.dump(c, open(p, "w"))
PY
b=$work/bundle

# time_ms CMD: mean wall time in ms over $runs runs.
time_ms() {
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/h.json" "$1" >"$work/h.log" 2>&1 || { cat "$work/h.log" >&2; return 1; }
    python3 -c "import json;print('%.2f'%(json.load(open('$work/h.json'))['results'][0]['mean']*1000))"
  else
    local s e; s=$(date +%s%N)
    for _ in $(seq "$runs"); do bash -c "$1" >/dev/null 2>&1; done
    e=$(date +%s%N); python3 -c "print('%.2f'%(($e-$s)/1e6/$runs))"
  fi
}

declare -A res
for rt in coop runc; do
  bin=${!rt}; r=$work/root-$rt; mkdir -p "$r"
  res[$rt,run]=$(time_ms "$bin --root $r run -b $b x")
  cat > "$work/cycle-$rt.sh" <<SH
$bin --root $r create -b $b y >/dev/null 2>&1 </dev/null
$bin --root $r start y
while [ "\$($bin --root $r state y | grep -o '"status": *"[a-z]*"' | grep -o '[a-z]*"$')" != 'stopped"' ]; do :; done
$bin --root $r delete y
SH
  res[$rt,cycle]=$(time_ms "bash $work/cycle-$rt.sh")
  "$bin" --root "$r" create -b "$b" s >/dev/null 2>&1 </dev/null
  res[$rt,state]=$(time_ms "$bin --root $r state s")
  for i in $(seq 99); do "$bin" --root "$r" create -b "$b" "l$i" >/dev/null 2>&1 </dev/null; done
  res[$rt,list]=$(time_ms "$bin --root $r list")
  for id in $("$bin" --root "$r" list -q); do "$bin" --root "$r" delete -f "$id"; done
done

echo "| operation | coop (ms) | runc (ms) | coop/runc |"
echo "|---|---|---|---|"
for op in run cycle state list; do
  case $op in run) label='`run /bin/true`';; cycle) label='create + start + wait + delete';;
    state) label='`state`';; list) label='`list` (100 containers)';; esac
  printf '| %s | %s | %s | %s |\n' "$label" "${res[coop,$op]}" "${res[runc,$op]}" \
    "$(python3 -c "print('%.2f'%(${res[coop,$op]}/${res[runc,$op]}))")"
done
