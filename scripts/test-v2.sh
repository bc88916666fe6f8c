#!/usr/bin/env bash
# The cgroup v2 tier: the integration tests that make, join or remove cgroups (by default
# cgroups:: devices:: events:: lifecycle:: exec:: sandbox:: selfexe:: checkpoint:: recovery:: rootless::; arguments replace these test name filters,
# "" runs them all) in a QEMU guest whose only cgroup hierarchy is cgroup v2 with every
# controller enabled (integration/v2vm/run-in-vm.sh). Everything is built here: the guest sees
# this host's / read-only. Root on Debian 12; installs what it needs from apt. Under TCG (no
# KVM) the guest's part takes about a minute, plus a minute or two the first time (qemu and
# the kernel cache). The tests that need pure cgroup v2 are #[ignore]d on a host: they run here
# (--include-ignored) with COOP_REQUIRE_V2=1, which makes them fail rather than skip when the
# guest is not pure v2. Works from any checkout path: a checkout under /tmp, /var/tmp or /run
# (which are tmpfs in the guest) stays visible there (COOP_VM_KEEP).
# the kernel cache). The checkpoint tests need CRIU, which Debian's criu 3.17 cannot do on
# kernels with the [vvar_vclock] mapping (6.x hosts) but can on the guest's 6.1 kernel: they are
# #[ignore]d on a host and run here (--include-ignored) with COOP_REQUIRE_CRIU=1, which makes
# a failing `criu check` fail them instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test-v2.sh: run as root" >&2; exit 1; }
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(cgroups:: devices:: events:: lifecycle:: exec:: sandbox:: selfexe:: checkpoint:: recovery:: rootless::)

# busybox-static: the tests' rootfs; mount: losetup, for the loop device of the io.max test;
# criu: the checkpoint tests (installed here: the guest sees this host's / read-only).
if ! command -v busybox >/dev/null || ! command -v losetup >/dev/null || ! command -v criu >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 busybox-static mount criu >/dev/null
fi

# Build, and find the test binary among cargo's artifacts.
echo "cgroup v2 tier: building the integration tests (release; up to 10 min on 2 cores from scratch)"
bin=$(cargo test --release --locked --test integration --no-run \
  --message-format=json-render-diagnostics |
  sed -n 's/.*"executable":"\([^"]*\/integration-[0-9a-f]*\)".*/\1/p' | tail -1)
coop=$PWD/target/release/coop
if [ ! -x "$bin" ] || [ ! -x "$coop" ]; then
  echo "scripts/test-v2.sh: the build left no test binary or coop" >&2
  exit 1
fi

# In the guest: exec from RAM rather than over 9p (much faster under TCG). The tests run coop
# by the path compiled into them, so its copy is bind-mounted over that path (in the guest's
# overlay only). TMPDIR is the guest's /tmp, a tmpfs.
work=$PWD/target/v2vm
mkdir -p "$work"
guest_cmd=$(printf 'set -e; cp %q /run/it; cp %q /run/coop; mount --bind /run/coop %q; ' \
  "$bin" "$coop" "$coop")
guest_cmd+=$(printf 'TMPDIR=/tmp COOP_REQUIRE_V2=1 COOP_REQUIRE_CRIU=1 exec /run/it --test-threads=1 --include-ignored')
guest_cmd+=$(printf ' %q' "${filters[@]}")
cache=${COOP_VM_CACHE:-/var/cache/coop-v2vm}
if ! ls "$cache"/linux-image-*/kver >/dev/null 2>&1; then
  echo "cgroup v2 tier: first run: installing qemu-system-x86 and downloading Debian's kernel" \
    "package (a few hundred MB together; the kernel goes to $cache): a few minutes, once"
fi
echo "cgroup v2 guest: booting (about 10 s under TCG), then the tests one at a time" \
  "(about a minute for the default filters): ${filters[*]}"
start=$SECONDS
rc=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# The guest's output is shown as it comes and kept for the counts below.
set +e
COOP_VM_KEEP="$PWD ${COOP_VM_KEEP:-}" COOP_VM_MODULES="loop ${COOP_VM_MODULES:-}" \
  COOP_VM_TIMEOUT=${COOP_VM_TIMEOUT:-1500} \
  integration/v2vm/run-in-vm.sh "$work" "$guest_cmd" | tee "$out"
rc=${PIPESTATUS[0]}
set -e
echo "cgroup v2 guest: exit $rc after $((SECONDS - start)) s"
# Its own count, the line scripts/test.sh reads: from libtest's "test result:" line.
read -r passed failed ignored < <(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$out" | tail -1) || true
if [ -z "${passed:-}" ]; then passed=0; failed=0; ignored=0; fi
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
  failed=1   # no counted failure, but the guest failed (boot failure, panic, timeout)
fi
echo "$passed passed, $failed failed, $ignored skipped"
exit "$rc"
