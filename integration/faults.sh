#!/usr/bin/env bash
# Fault injection: kill coop with SIGKILL at its N-th system call, for every command and phase,
# then check that the others still tell the truth and clean up everything.
#
#   integration/faults.sh COOP_BINARY
#
# For each of create, create --sandbox (a sandbox root: its shm mount and sandbox cgroup),
# start, run -d, run (foreground), exec, pause, resume, kill and delete --force, the command is first run once under `strace -o` to record the sequence of
# system calls coop's own process makes. Then, for N in 1..count (every N with FAULTS_ALL=1,
# else FAULTS_CASES evenly spaced N per command, default 25, the first and the last included),
# a fresh container is prepared and the command is run again under
#   strace -e inject=SYSCALL:signal=KILL:when=K
# where SYSCALL is the N-th call of the recorded run and K its occurrence among calls of that
# name: coop receives SIGKILL on entering its N-th system call (only coop: its children, the
# container's init included, are not traced, so they live on as they would after a real kill).
# (`strace -f -e inject=all:signal=SIGKILL:when=N` would instead fire at the first call of ANY
# name reaching its N-th occurrence, in ANY process: most phases would never be hit.)
#
# After each kill:
#   - `state` tells the truth: it answers (never "does not exist") while the directory exists;
#     stopped iff no process is left in the container's cgroup; created/creating/running/paused
#     only with a living init in the cgroup; paused iff the freezer says FROZEN; created while
#     init has not exec'd yet, running after;
#   - `list` shows the container, with the same status, iff its directory exists;
#   - `delete --force` succeeds and leaves no process (in the cgroup, or a coop clone naming the
#     case's --root), no cgroup directory (every v1 hierarchy and the unified one), no mount and
#     nothing under --root; a second `delete --force` changes nothing.
# It prints each problem on one line, then `N cases, M problems`, and exits 1 on any problem.
# Each case has its own --root under /tmp and its own container id. Needs root, strace,
# busybox-static and jq.
set -u
COOP=${1:?usage: faults.sh COOP_BINARY}
COOP=$(readlink -f "$COOP")
COMM=$(basename "$COOP" | cut -c1-15)
CASES=${FAULTS_CASES:-25}
ONLY=${FAULTS_ONLY:-}   # e.g. FAULTS_ONLY="pause resume": only these commands
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=integration/lib/rootfs.sh
. "$HERE/lib/rootfs.sh"

[ "$(id -u)" = 0 ] || { echo "faults.sh: needs root" >&2; exit 2; }
for t in strace jq; do
  command -v $t >/dev/null || { echo "faults.sh: $t is needed" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/coop-faults.XXXXXX)
CG=/sys/fs/cgroup
TAG=f$$
problems=0
cases=0

cleanup_all() {
  # Whatever a failed case left: thaw, kill, remove its cgroups and roots.
  local d
  for d in "$CG"/*/coop/"$TAG"-* "$CG"/coop/"$TAG"-*; do
    [ -d "$d" ] || continue
    [ -e "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2>/dev/null
    [ -e "$d/cgroup.kill" ] && echo 1 > "$d/cgroup.kill" 2>/dev/null
    xargs -r kill -9 < "$d/cgroup.procs" 2>/dev/null
  done
  pkill -9 -f "$WORK/root-" 2>/dev/null
  sleep 0.2
  for d in "$CG"/*/coop/"$TAG"-* "$CG"/coop/"$TAG"-*; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null
  done
  grep -o " $WORK/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup_all EXIT
trap "exit 130" INT TERM

make_busybox_rootfs "$WORK/rootfs" || exit 2
bundle() { # bundle DIR ARGS_JSON
  mkdir -p "$1"
  "$COOP" spec --bundle "$1" || exit 2
  jq --arg r "$WORK/rootfs" --argjson a "$2" \
    '.root = {path: $r, readonly: true} | .process.terminal = false | .process.args = $a' \
    "$1/config.json" > "$1/c.tmp" && mv "$1/c.tmp" "$1/config.json"
}
bundle "$WORK/sleep" '["sleep", "100000"]'
bundle "$WORK/true" '["true"]'

problem() {
  problems=$((problems + 1))
  echo "PROBLEM $*"
}

coopr() { "$COOP" --root "$ROOT" "$@"; }

cg_procs() { # every pid in the container's cgroups (a sandbox root's are one level down)
  cat "$CG"/*/coop/"$ID"/cgroup.procs "$CG"/coop/"$ID"/cgroup.procs \
    "$CG"/*/coop/"$ID"/*/cgroup.procs "$CG"/coop/"$ID"/*/cgroup.procs 2>/dev/null | sort -u
}
cg_dirs() { ls -d "$CG"/*/coop/"$ID" "$CG"/coop/"$ID" 2>/dev/null; }
frozen() {
  grep -qs FROZEN "$CG/freezer/coop/$ID/freezer.state" "$CG/freezer/coop/$ID/$ID/freezer.state" ||
    grep -qs '^frozen 1' "$CG/unified/coop/$ID/cgroup.events" "$CG/coop/$ID/cgroup.events" \
      "$CG/unified/coop/$ID/$ID/cgroup.events" "$CG/coop/$ID/$ID/cgroup.events"
}
clones() { pgrep -f -- "$ROOT" 2>/dev/null; } # coop clones not exec'd yet name the root

# The truth as the kernel sees it, compared with `state` and `list`; empty output = agree.
check_state() {
  local out rc st pid procs comm lst
  out=$(coopr state "$ID" 2>&1); rc=$?
  if [ ! -d "$ROOT/$ID" ]; then
    [ $rc != 0 ] || { echo "state answers for a missing directory: $out"; return; }
    procs=$(cg_procs)
    [ -z "$procs" ] || echo "no directory but processes in the cgroup: $procs"
    return
  fi
  [ $rc = 0 ] || { echo "state fails while the directory exists: $out"; return; }
  st=$(jq -r .status <<<"$out"); pid=$(jq -r .pid <<<"$out")
  lst=$(coopr list --format json 2>/dev/null | jq -r --arg id "$ID" '.[] | select(.id == $id) | .status' 2>&1)
  [ "$lst" = "$st" ] || echo "list says '${lst:-<absent>}', state says $st"
  procs=$(cg_procs)
  case $st in
    stopped)
      [ -z "$procs" ] || echo "state says stopped, cgroup holds $(echo $procs)"
      ;;
    creating|created|running|paused)
      if [ "$pid" -le 0 ] 2>/dev/null || [ ! -d "/proc/$pid" ] ||
         ! grep -qx "$pid" <<<"$procs"; then
        [ "$st" = creating ] && [ -n "$procs" ] ||
          echo "state says $st with pid $pid, not a living process of the cgroup ($(echo $procs))"
        return
      fi
      # init is a clone of coop until it execs the container's program: its comm is coop's.
      comm=$(cat "/proc/$pid/comm" 2>/dev/null)
      [ "$comm" = "$COMM" ] && comm=coop
      if frozen; then
        [ "$st" = paused ] || echo "the freezer is frozen, state says $st"
      else
        [ "$st" != paused ] || echo "state says paused, the freezer is thawed"
        case $st:$comm in
          created:coop|creating:coop|running:sleep|running:true) ;;
          *) echo "state says $st, init is '$comm'" ;;
        esac
      fi
      ;;
    *) echo "unknown status $st" ;;
  esac
}

# Run one case: $1 = command name, $2 = N (0 = record only), rest = the coop arguments.
prepare() { # prepare CMD: bring the container to where CMD starts from
  case $1 in
    create|run-d|run|sandbox) ;;
    start) coopr create --bundle "$WORK/sleep" "$ID" ;;
    exec|pause|kill|delete) coopr run -d --bundle "$WORK/sleep" "$ID" ;;
    resume) coopr run -d --bundle "$WORK/sleep" "$ID" && coopr pause "$ID" ;;
  esac
}
args_of() {
  case $1 in
    create) echo "create --bundle $WORK/sleep $ID" ;;
    sandbox) echo "create --sandbox $ID --bundle $WORK/sleep $ID" ;;
    start) echo "start $ID" ;;
    run-d) echo "run -d --bundle $WORK/sleep $ID" ;;
    run) echo "run --bundle $WORK/true $ID" ;;
    exec) echo "exec $ID true" ;;
    pause) echo "pause $ID" ;;
    resume) echo "resume $ID" ;;
    kill) echo "kill $ID KILL" ;;
    delete) echo "delete --force $ID" ;;
  esac
}

one_case() { # one_case CMD N SYSCALL K
  local cmd=$1 n=$2 sc=$3 k=$4 msg tries left
  ROOT=$WORK/root-$cmd-$n; ID=$TAG-$cmd-$n
  mkdir -p "$ROOT"
  if ! prepare "$cmd" >/dev/null 2>"$WORK/prep.err"; then
    problem "$cmd@$n: preparing failed: $(head -c 300 "$WORK/prep.err" | tr '\n' ' ')"
    return
  fi
  # shellcheck disable=SC2046
  ( strace -qq -o /dev/null -e trace="$sc" -e inject="$sc:signal=KILL:when=$k" \
    "$COOP" --root "$ROOT" $(args_of "$cmd") </dev/null >/dev/null 2>&1 || true ) 2>/dev/null
  cases=$((cases + 1))
  # A dying coop's children notice (pdeathsig, EOF): give the kernel a moment to settle,
  # polling, before calling a disagreement a problem.
  for tries in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    msg=$(check_state)
    [ -z "$msg" ] && break
    sleep 0.1
  done
  [ -z "$msg" ] || problem "$cmd@$n ($sc#$k): $(tr '\n' ' ' <<<"$msg")"
  if [ -d "$ROOT/$ID" ]; then
    msg=$(coopr delete --force "$ID" 2>&1) ||
      problem "$cmd@$n ($sc#$k): delete --force failed: $(tr '\n' ' ' <<<"$msg")"
  fi
  coopr delete --force "$ID" >/dev/null 2>&1   # twice: harmless
  left=""
  [ -z "$(cg_procs)" ] || left+=" processes in the cgroup: $(echo $(cg_procs));"
  [ -z "$(clones)" ] || left+=" coop processes: $(echo $(clones));"
  [ -z "$(cg_dirs)" ] || left+=" cgroups: $(echo $(cg_dirs));"
  grep -qs " $ROOT" /proc/self/mountinfo && left+=" mounts under --root;"
  [ -z "$(ls -A "$ROOT" 2>/dev/null)" ] || left+=" files: $(cd "$ROOT" && find . | tr '\n' ' ');"
  if [ -n "$left" ]; then
    problem "$cmd@$n ($sc#$k): after delete --force:$left"
    cleanup_case
  fi
  rm -rf "$ROOT"
}

cleanup_case() {
  local d
  for d in $(cg_dirs); do
    [ -e "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2>/dev/null
    xargs -r kill -9 < "$d/cgroup.procs" 2>/dev/null
  done
  clones | xargs -r kill -9 2>/dev/null
  sleep 0.3
  for d in $(cg_dirs); do rmdir "$d" 2>/dev/null; done
  grep -o " $ROOT[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
}

for cmd in create sandbox start run-d run exec pause resume kill delete; do
  if [ -n "$ONLY" ] && ! grep -qw -- "$cmd" <<<"$ONLY"; then continue; fi
  # Record the system calls of one undisturbed run.
  ROOT=$WORK/root-$cmd-rec; ID=$TAG-$cmd-rec
  mkdir -p "$ROOT"
  prepare "$cmd" >/dev/null 2>&1 || { problem "$cmd: preparing the recording failed"; continue; }
  # shellcheck disable=SC2046
  strace -qq -o "$WORK/trace" "$COOP" --root "$ROOT" $(args_of "$cmd") </dev/null >/dev/null 2>&1
  coopr delete --force "$ID" >/dev/null 2>&1
  rm -rf "$ROOT"
  mapfile -t calls < <(sed -n 's/^\([a-z_0-9]*\)(.*/\1/p' "$WORK/trace")
  count=${#calls[@]}
  [ "$count" -gt 0 ] || { problem "$cmd: recorded no system calls"; continue; }
  if [ "${FAULTS_ALL:-0}" = 1 ] || [ "$count" -le "$CASES" ]; then
    ns=$(seq 1 "$count")
  else
    ns=$(awk -v c="$count" -v k="$CASES" 'BEGIN { for (i = 0; i < k; i++) print 1 + int(i * (c - 1) / (k - 1)) }' | uniq)
  fi
  echo "$cmd: $count system calls, $(wc -w <<<"$ns") cases"
  for n in $ns; do
    sc=${calls[$((n - 1))]}
    k=0
    for ((i = 0; i < n; i++)); do [ "${calls[$i]}" = "$sc" ] && k=$((k + 1)); done
    one_case "$cmd" "$n" "$sc" "$k"
  done
done

echo "$cases cases, $problems problems"
# The count scripts/test.sh reads: a case passes when it showed no problem.
echo "$((cases - problems < 0 ? 0 : cases - problems)) passed, $problems failed"
[ "$problems" = 0 ]
