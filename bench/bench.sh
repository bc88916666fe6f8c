#!/usr/bin/env bash
# bench.sh [COOP] [RUNC] [CRUN]: times coop beside runc and crun on the same busybox bundle,
# each runtime with its own --root, and prints one markdown table per view of the cgroups:
#   hybrid  the host as it is (here: cgroup v1 controllers, cgroup2 at /sys/fs/cgroup/unified)
#   v2      a private mount namespace (unshare -m) with cgroup2 mounted on /sys/fs/cgroup, the
#           pure cgroup v2 view crun needs (crun refuses hybrid hosts)
# COOP defaults to target/release/coop, RUNC to runc on PATH; CRUN is optional (a path to a crun
# binary; without it crun is skipped with a note). Each may be a path or a name on PATH.
#
# Timings are paired: in round i every runtime runs once, the starting runtime rotating, and each
# ratio is the median of the per-round ratios with its 10th-90th percentile spread (bench/pairs.py).
# For crun the `run` line is repeated back to back (each runtime's runs in one block, as
# hyperfine does): crun mounts a fresh cgroup2 in the container, and the first cgroup2 mount after
# a while waits for an RCU grace period, which back-to-back runs mostly skip.
#   run /bin/true                 one `run` of a bundle whose process is /bin/true
#   create+start+wait+delete      the commands a client issues (state polled until stopped)
#   100 sequential runs           one sample = 100 `run`s in a row
#   20 concurrent lifecycles      one sample = 20 `run`s started together, until all are done
#   peak RSS of create            /usr/bin/time's maximum resident set of `create` (median of 5)
#   init waiting for start        VmRSS of the created container's process (median of 5)
#   state, list                   with 100 created containers, and with BIG (1000) containers:
#                                 the 100 created ones and BIG-100 stopped ones
# Environment: RUNS (samples per timing, 30), REPS (samples of the 100-run and concurrent lines,
# 5), BIG (1000), VIEWS ("hybrid v2"). Needs root, python3, busybox-static, util-linux unshare.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
pairs=$top/bench/pairs.py

if [ "${1:-}" = --inner ]; then
  # bench.sh --inner VIEW WORK: measure in this view, results into WORK/VIEW.md.
  view=$2 work=$3
  source "$work/env"
else
  source "$top/integration/lib/rootfs.sh"
  resolve() { # resolve NAME-OR-PATH: an absolute path to an executable
    local p
    p=$(command -v "$1") || { echo "bench.sh: no runtime $1" >&2; exit 2; }
    realpath "$p"
  }
  coop=$(cd "$top" && resolve "${1:-target/release/coop}")
  runc=$(resolve "${2:-runc}")
  crun=
  if [ -n "${3:-}" ]; then crun=$(resolve "$3"); fi
  command -v python3 >/dev/null || { echo "bench.sh: python3 is needed" >&2; exit 2; }
  [ -x /usr/bin/time ] || { echo "bench.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
  work=$(mktemp -d /tmp/coop-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  b=$work/bundle
  make_busybox_rootfs "$b/rootfs"
  (cd "$b" && "$runc" spec)
  # runc spec's defaults (read-only rootfs), no terminal, /bin/true, the same namespaces for all.
  python3 - "$b/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["namespaces"] = [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount"]]
json.dump(c, open(p, "w"), indent=1)
PY
  printf 'coop=%q\nruncbin=%q\ncrun=%q\nb=%q\nRUNS=%q\nREPS=%q\nBIG=%q\n' "$coop" "$runc" \
    "$crun" "$b" "${RUNS:-30}" "${REPS:-5}" "${BIG:-1000}" > "$work/env"
  for view in ${VIEWS:-hybrid v2}; do
    case $view in
      hybrid) bash "$0" --inner hybrid "$work" ;;
      v2) unshare -m --propagation private -- bash "$0" --inner v2 "$work" ;;
      *) echo "bench.sh: unknown view $view" >&2; exit 2 ;;
    esac
  done
  echo "coop: $coop ($("$coop" --version | head -1))"
  echo "runc: $runc ($("$runc" --version | head -1))"
  if [ -n "$crun" ]; then echo "crun: $crun ($("$crun" --version | head -1))"
  else echo "crun: not given (bench.sh COOP RUNC CRUN), skipped"; fi
  echo "machine: $(nproc) cores, $(uname -r), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  for view in ${VIEWS:-hybrid v2}; do echo; cat "$work/$view.md"; done
  exit 0
fi

# ---- inside one view ----
if [ "$view" = v2 ]; then
  mount -t cgroup2 none /sys/fs/cgroup || { echo "bench.sh: cannot mount cgroup2" >&2; exit 1; }
fi
rts="coop runc"
[ -n "$crun" ] && rts="coop runc crun"
declare -A bin=([coop]=$coop [runc]=$runcbin [crun]=$crun)
out=$work/$view.md
note=
if [ -n "$crun" ]; then
  # crun refuses a hybrid host; find out here rather than in the middle of a measurement.
  mkdir -p "$work/$view-probe"
  if ! msg=$("$crun" --root "$work/$view-probe" run -b "$b" cbp$$ 2>&1 </dev/null); then
    note="crun fails in this view and is left out: $(echo "$msg" | head -1)"
    rts="coop runc"
  fi
fi
for rt in $rts; do mkdir -p "$work/$view-root-$rt"; done
cleanup() {
  local rt r id
  for rt in coop runc crun; do
    r=$work/$view-root-$rt
    [ -d "$r" ] || continue
    for id in $("${bin[$rt]}" --root "$r" list -q 2>/dev/null); do
      "${bin[$rt]}" --root "$r" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
}
trap cleanup EXIT
R() { echo "${bin[$1]} --root $work/$view-root-$1"; }   # R RT: a runtime's command prefix
id=cb$$$view

# measure LABEL RUNS ORDER CMD-TEMPLATE: one JSON line into $work/res; %R is the runtime's
# command prefix, %T the runtime's name.
measure() {
  local label=$1 n=$2 order=$3 tpl=$4 args=() rt c
  for rt in $rts; do
    c=${tpl//%R/$(R "$rt")}; c=${c//%T/$rt}
    args+=("$rt=$c")
  done
  echo "$view: $label ($order, $n samples)" >&2
  printf '%s\t%s\t' "$label" "$order" >> "$work/$view.res"
  python3 "$pairs" "$n" 2 "$order" "${args[@]}" >> "$work/$view.res"
}

measure '`run` /bin/true' "$RUNS" alternate "%R run -b $b $id-%T"
if [ -n "$crun" ] && [[ $rts == *crun* ]]; then
  measure '`run` /bin/true, back to back' "$RUNS" blocks "%R run -b $b $id-%T"
fi
for rt in $rts; do
  cat > "$work/$view-cycle-$rt.sh" <<SH
set -e
$(R "$rt") create -b $b $id-cy </dev/null >/dev/null 2>&1
$(R "$rt") start $id-cy
i=0
while [ \$i -lt 10000 ]; do
  case \$($(R "$rt") state $id-cy) in *'"status": "stopped"'*|*'"status":"stopped"'*) break ;; esac
  i=\$((i + 1))
done
$(R "$rt") delete $id-cy
SH
  printf 'i=0\nwhile [ $i -lt 100 ]; do %s run -b %s %s-seq >/dev/null; i=$((i + 1)); done\n' \
    "$(R "$rt")" "$b" "$id" > "$work/$view-seq-$rt.sh"
  { for i in $(seq 20); do echo "$(R "$rt") run -b $b $id-c$i >/dev/null &"; done; echo wait; } \
    > "$work/$view-conc-$rt.sh"
done
measure 'create + start + wait + delete' "$RUNS" alternate "sh $work/$view-cycle-%T.sh"
measure '100 sequential runs' "$REPS" alternate "sh $work/$view-seq-%T.sh"
measure '20 concurrent lifecycles' "$REPS" alternate "sh $work/$view-conc-%T.sh"

# Memory: peak RSS of `create` and the RSS of the process waiting for `start`, in KiB.
declare -A rss_create rss_init
for rt in $rts; do
  cr=() ini=()
  for i in 1 2 3 4 5; do
    # -o: the created init holds stdout and stderr open until start, so no pipe here.
    /usr/bin/time -o "$work/time" -f %M $(R "$rt") create -b "$b" "$id-m" </dev/null >/dev/null 2>&1
    cr+=("$(tail -1 "$work/time")")
    pid=$($(R "$rt") state "$id-m" | python3 -c 'import json,sys;print(json.load(sys.stdin)["pid"])')
    ini+=("$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")")
    $(R "$rt") delete -f "$id-m" >/dev/null
  done
  rss_create[$rt]=$(printf '%s\n' "${cr[@]}" | sort -n | sed -n 3p)
  rss_init[$rt]=$(printf '%s\n' "${ini[@]}" | sort -n | sed -n 3p)
done

# state and list: 100 created containers, then BIG with BIG-100 stopped ones added.
for rt in $rts; do
  for i in $(seq 100); do $(R "$rt") create -b "$b" "$id-s$i" </dev/null >/dev/null 2>&1; done
done
measure '`state` (100 containers)' "$RUNS" alternate "%R state $id-s1"
measure '`list` (100 containers)' "$RUNS" alternate "%R list"
echo "$view: making $BIG containers per runtime" >&2
for rt in $rts; do
  for i in $(seq 101 "$BIG"); do
    $(R "$rt") create -b "$b" "$id-s$i" </dev/null >/dev/null 2>&1
    $(R "$rt") start "$id-s$i"
  done
done
measure "\`state\` ($BIG containers)" "$RUNS" alternate "%R state $id-s1"
measure "\`list\` ($BIG containers)" "$RUNS" alternate "%R list"
for rt in $rts; do
  n=$($(R "$rt") list -q | wc -l)
  [ "$n" = "$BIG" ] || echo "bench.sh: $rt lists $n containers, not $BIG" >&2
done

python3 - "$work/$view.res" "$view" "$rts" "$note" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "${rss_create[coop]}" "${rss_create[runc]}" "${rss_create[crun]:-}" \
  "${rss_init[coop]}" "${rss_init[runc]}" "${rss_init[crun]:-}" > "$out" <<'PY'
import json, sys
res, view, rts, note, load = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5]
rc = dict(zip(["coop", "runc", "crun"], sys.argv[6:9]))
ri = dict(zip(["coop", "runc", "crun"], sys.argv[9:12]))
others = [r for r in rts if r != "coop"]
print("### %s view (load average after: %s)" % (view, load))
print()
if note:
    print(note + "\n")
print("| | " + " | ".join(rts) + " | " + " | ".join("coop/" + r for r in others) + " |")
print("|---|" + "---:|" * (len(rts) + len(others)))
def ms(x):
    return ("%.0f ms" % x) if x >= 100 else ("%.1f ms" % x)
for line in open(res):
    label, order, js = line.rstrip("\n").split("\t")
    d = json.loads(js)
    cells = [ms(d[r]["median"]) for r in rts]
    for r in others:
        x = d[r]
        if "ratio_p10" in x:
            cells.append("%.2f (%.2f-%.2f)" % (x["ratio"], x["ratio_p10"], x["ratio_p90"]))
        else:
            cells.append("%.2f" % x["ratio"])
    print("| %s | %s |" % (label, " | ".join(cells)))
def mib(k):
    return "%.1f MiB" % (int(k) / 1024)
for label, d in (("peak RSS of `create`", rc), ("RSS of the init waiting for `start`", ri)):
    cells = [mib(d[r]) for r in rts] + ["%.2f" % (int(d["coop"]) / int(d[r])) for r in others]
    print("| %s | %s |" % (label, " | ".join(cells)))
print()
print("Times are medians; ratios are medians of per-round ratios (10th-90th percentile), except"
      " back-to-back lines (ratio of medians).")
PY
