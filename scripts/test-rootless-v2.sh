#!/usr/bin/env bash
# Rootless coop on a pure cgroup v2 host with a delegated subtree: integration/rootless.sh (as
# the unprivileged user it creates) in the QEMU guest of scripts/test-v2.sh, where the memory
# limit that this hybrid host must refuse is applied in the user's delegated cgroup. Root on
# Debian 12; needs the release build (target/release/coop). Usage: scripts/test-rootless-v2.sh
# [COOP]. rootless podman is left to the host's rootless tier here (ROOTLESS_PODMAN=1 adds it:
# about 5 more minutes under TCG).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test-rootless-v2.sh: run as root" >&2; exit 1; }
coop=$(realpath "${1:-target/release/coop}")
[ -x "$coop" ] || { echo "scripts/test-rootless-v2.sh: no coop binary at $coop (build first)" >&2; exit 1; }
work=$PWD/target/v2vm-rootless
mkdir -p "$work"
# The guest has no /dev/fd, which the rootfs helper's process substitution needs.
guest_cmd=$(printf 'ln -sf /proc/self/fd /dev/fd; cp %q /run/coop; ROOTLESS_COMPARE_RUNC=0 ROOTLESS_PODMAN=%q exec bash %q /run/coop' \
  "$coop" "${ROOTLESS_PODMAN:-0}" "$PWD/integration/rootless.sh")
echo "rootless cgroup v2 guest: booting (about 10 s under TCG), then integration/rootless.sh (a minute or two)"
start=$SECONDS
COOP_VM_KEEP="$PWD ${COOP_VM_KEEP:-}" COOP_VM_TIMEOUT=${COOP_VM_TIMEOUT:-1200} \
  integration/v2vm/run-in-vm.sh "$work" "$guest_cmd" && rc=0 || rc=$?
echo "rootless cgroup v2 guest: exit $rc after $((SECONDS - start)) s"
# rootless.sh's own last line ("N passed, M failed") is what scripts/test.sh counts.
exit "$rc"
