#!/usr/bin/env bash
# The test command: installs what the tests need (Debian 12, as root), builds coop and runs
# every tier: unit tests, integration tests with real containers, real clients (podman,
# containerd), and the cgroup-related integration tests again in a QEMU guest with pure cgroup
# v2 (scripts/test-v2.sh). Requires a Rust toolchain (cargo) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root" >&2; exit 1; }
command -v cargo >/dev/null || { echo "scripts/test.sh: cargo (Rust 1.80+) is required" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  busybox-static podman containerd runc conmon catatonit libseccomp-dev pkg-config \
  iptables uidmap python3 >/dev/null

cargo build --release --locked
echo "== unit tests"
cargo test --release --locked --lib --bins
echo "== fuzz targets (fuzz/main.rs), 20 s each"
COOP_FUZZ_SECS=20 cargo test --release --locked --test fuzz
echo "== integration tests (real containers)"
cargo test --release --locked --test integration -- --test-threads=2
echo "== real clients"
failed=0
for client in integration/clients/podman.sh integration/clients/containerd.sh; do
  echo "-- $client"
  bash "$client" "$PWD/target/release/coop" || failed=$((failed + 1))
done
echo "== cgroup v2 tier (integration tests in a QEMU guest with pure cgroup v2)"
scripts/test-v2.sh || failed=$((failed + 1))
[ "$failed" = 0 ] || { echo "$failed suite(s) failed (clients, cgroup v2 tier)" >&2; exit 1; }
