#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): build coop, make a busybox bundle and
# run a container in it. Requires a Rust toolchain (cargo) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
command -v busybox >/dev/null && busybox --list >/dev/null 2>&1 && ldd "$(command -v busybox)" 2>&1 | grep -q "not a dynamic" ||
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends busybox-static >/dev/null; }
cargo build --release --locked
install -m 0755 target/release/coop /usr/local/bin/coop

bundle=${BUNDLE:-/tmp/coop-demo}
rm -rf "$bundle"
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" "$bundle/rootfs/tmp"
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
for applet in $("$bundle/rootfs/bin/busybox" --list); do
  [ -e "$bundle/rootfs/bin/$applet" ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$bundle/rootfs/etc/group"
cd "$bundle"
coop spec
# Not a terminal (so this runs anywhere) and a command that shows where it runs.
sed -i 's/"terminal": true/"terminal": false/' config.json
sed -i 's|"sh"$|"sh", "-c", "echo hello from $(hostname), running as pid $$ in its own pid namespace"|' config.json
coop run demo
