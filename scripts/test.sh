#!/usr/bin/env bash
# The test command (CI runs exactly this, see .ci/run): installs what the tests need (Debian 12,
# as root), builds coop and runs every tier: unit tests, fuzz targets, integration tests with
# real containers, real clients (podman, containerd), and the cgroup-related integration tests
# again in a QEMU guest with pure cgroup v2 (scripts/test-v2.sh). Requires a Rust toolchain
# (cargo) on PATH. About 11 min on an idle 2-core machine from a clean clone (much longer when it is shared), most of it
# release builds (see docs/testing.md).
#
#   scripts/test.sh                 every tier
#   scripts/test.sh unit fuzz       only these tiers (or COOP_TIERS=unit,fuzz scripts/test.sh)
#   scripts/test.sh --list          the tiers, in order
#
# Every tier runs even when an earlier one failed. Each tier's output is shown as it comes and
# kept in target/test-logs/TIER.log. The run ends with one table (tier, passed, failed,
# skipped, time), the reasons for the skips, the total time and, as its very last line,
# `N passed, M failed, K skipped`; it exits 1 when anything failed.
#
# Counting: a tier that prints its own `N passed, M failed[, K skipped]` line (the client
# scripts, the cgroup v2 tier) is counted from its last such line; a cargo test tier from
# libtest's `test result:` lines, where `ignored` counts as skipped (with the reason from
# `#[ignore = "..."]`) and a test that printed `SKIPPED: TEST: REASON` counts as skipped, not
# passed; a tier that reports nothing (build, setup) is one check. A tier that exits non-zero
# without a counted failure counts one failure. Environment: COOP_FUZZ_SECS (20: seconds per
# fuzz target), COOP_FUZZ_SEED (random: printed, replays the fuzz tier), COOP_TIERS.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root" >&2; exit 1; }
command -v cargo >/dev/null || { echo "scripts/test.sh: cargo (Rust 1.80+) is required" >&2; exit 1; }

list=0
selected=()
for a in "$@"; do
  case $a in
    --list) list=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) selected+=("$a") ;;
  esac
done
[ ${#selected[@]} -gt 0 ] || IFS=, read -ra selected <<< "${COOP_TIERS:-}"

logs=$PWD/target/test-logs
mkdir -p "$logs"
run_start=$SECONDS
rows=()        # one "name|passed|failed|skipped|seconds" per tier run
reasons=()     # "name: N x reason"
not_run=()
total_p=0 total_f=0 total_s=0

# count LOG: prints "passed failed skipped" for a tier's output, and appends the skip reasons
# (one per line, "N x reason") to LOG.reasons.
count() {
  local log=$1 own
  own=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -1)
  : > "$log.reasons"
  if [ -n "$own" ]; then
    awk '{ s = ($6 == "") ? 0 : $5; print $1, $3, s }' <<< "${own//,/}"
    return
  fi
  local p f i s
  read -r p f i < <(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$log" |
    awk '{ p += $1; f += $2; i += $3 } END { print p + 0, f + 0, i + 0 }')
  s=$(grep -c '^SKIPPED: ' "$log")
  {
    sed -n 's/^test .* \.\.\. ignored, \(.*\)$/\1/p; s/^test .* \.\.\. ignored$/(no reason given)/p' "$log"
    sed -n 's/^SKIPPED: [^:]*: \(.*\)$/\1/p' "$log"
  } | sort | uniq -c | awk '{ n = $1; $1 = ""; print n " x" $0 }' > "$log.reasons"
  # A test that printed SKIPPED returned early: libtest counted it as passed.
  echo "$((p - s)) $f $((i + s))"
}

# tier NAME DESCRIPTION COMMAND...: run COMMAND as one tier (adding a tier is one such line).
tier() {
  local name=$1 about=$2; shift 2
  if [ "$list" = 1 ]; then printf '%-12s %s\n' "$name" "$about"; return; fi
  if [ ${#selected[@]} -gt 0 ] && [[ " ${selected[*]} " != *" $name "* ]]; then
    not_run+=("$name"); return
  fi
  local log=$logs/$name.log start=$SECONDS rc p f s
  echo
  echo "== $name: $about"
  echo "   \$ $*"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  read -r p f s < <(count "$log")
  if [ "$p" = 0 ] && [ "$f" = 0 ] && [ "$s" = 0 ] && [ -z "$(grep -E '^(test result:|[0-9]+ passed, )' "$log")" ]; then
    if [ "$rc" = 0 ]; then p=1; else f=1; fi   # a tier that reports no count: one check
  elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    f=1   # it failed without a counted failure (a crash, a build error, a timeout)
  fi
  while read -r line; do [ -n "$line" ] && reasons+=("$name: $line"); done < "$log.reasons"
  rows+=("$name|$p|$f|$s|$((SECONDS - start))")
  total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
  echo "== $name: $p passed, $f failed, $s skipped in $(mmss $((SECONDS - start))) (exit $rc; log: $log)"
}

mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }

setup() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 busybox-static podman containerd runc conmon catatonit libseccomp-dev \
    pkg-config iptables uidmap python3 golang-github-containers-common make man-db strace jq criu >/dev/null
}

export COOP_FUZZ_SECS=${COOP_FUZZ_SECS:-20}
export COOP_FUZZ_SEED=${COOP_FUZZ_SEED:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}
coop=$PWD/target/release/coop
cargo_test=(cargo test --release --locked)

[ "$list" = 1 ] || echo "fuzz seed: $COOP_FUZZ_SEED (COOP_FUZZ_SEED=<it> replays the fuzz tier)"
tier setup "apt-get install of what the tests need (a minute or two the first time)" setup
tier build "cargo build --release (about 2 min on 2 cores from a clean clone; LTO)" \
  cargo build --release --locked
tier unit "unit tests: a release build of them (about 2 min on 2 cores), then seconds" \
  "${cargo_test[@]}" --lib --bins
tier fuzz "fuzz targets (fuzz/main.rs): a release build (about 1 min), then $COOP_FUZZ_SECS s per target, two at a time" \
  "${cargo_test[@]}" --test fuzz
tier integration "integration tests with real containers: a release build (about 1 min), then about a minute" \
  "${cargo_test[@]}" --test integration -- --test-threads=2
tier faults "SIGKILL coop at its N-th syscall in every command, then state/list/delete --force must tell the truth and leave nothing (~2 min)" \
  bash integration/faults.sh "$coop"
tier rootless "coop and rootless podman as an unprivileged user (cooptest, made here), runc for comparison (~2 min)" \
  bash integration/rootless.sh "$coop"
tier rootless-v2 "integration/rootless.sh again in the QEMU guest with pure cgroup v2, where the user gets a delegated subtree (~2 min)" \
  scripts/test-rootless-v2.sh "$coop"
tier podman "podman through conmon with coop as its runtime (~3 min)" \
  bash integration/clients/podman.sh "$coop"
tier containerd "a private containerd, ctr run --runc-binary coop (~2 min)" \
  bash integration/clients/containerd.sh "$coop"
tier cgroup-v2 "the cgroup tests again in a QEMU guest with pure cgroup v2 (~5 min; the first run also installs qemu and downloads a kernel package)" \
  scripts/test-v2.sh
[ "$list" = 1 ] && exit 0

echo
echo "== summary"
printf '%-12s %7s %7s %8s %8s\n' tier passed failed skipped time
for r in "${rows[@]}"; do
  IFS='|' read -r n p f s t <<< "$r"
  printf '%-12s %7s %7s %8s %8s\n' "$n" "$p" "$f" "$s" "$(mmss "$t")"
done
for n in "${not_run[@]}"; do printf '%-12s %s\n' "$n" "not run (not selected)"; done
if [ ${#reasons[@]} -gt 0 ]; then
  echo "skipped:"
  printf '  %s\n' "${reasons[@]}"
fi
echo "logs: $logs"
echo "total time: $(mmss $((SECONDS - run_start))) (fuzz seed $COOP_FUZZ_SEED)"
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" = 0 ]
