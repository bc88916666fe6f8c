#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): build coop, install it (make install:
# /usr/local/bin/coop, man pages, completions), make a busybox bundle and run a container in
# it. Requires a Rust toolchain (cargo) on PATH. About 8 min on 2 cores, most of it the build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root" >&2; exit 1; }
say() { echo "demo: $*"; }
export DEBIAN_FRONTEND=noninteractive
if ! { command -v busybox >/dev/null && busybox --list >/dev/null 2>&1 &&
  ldd "$(command -v busybox)" 2>&1 | grep -q "not a dynamic"; } || ! command -v make >/dev/null; then
  say "installing busybox-static and make (apt-get)"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends busybox-static make >/dev/null
fi

# The release build is long and cargo is quiet while it links with LTO: a line a minute.
say "building coop (cargo build --release: about 8 min on 2 cores the first time, seconds after)"
start=$SECONDS
( while sleep 60; do say "still building ($(((SECONDS - start) / 60)) min)"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
cargo build --release --locked
kill $ticker 2>/dev/null || true
say "built in $((SECONDS - start)) s; installing (make install PREFIX=/usr/local)"
make --no-print-directory install PREFIX=/usr/local >/dev/null
say "installed /usr/local/bin/coop, its man pages (man coop, man coop-run) and completions"

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
say "making a busybox bundle in $bundle"
coop spec
# Not a terminal (so this runs anywhere) and a command that shows where it runs.
sed -i 's/"terminal": true/"terminal": false/' config.json
sed -i 's|"sh"$|"sh", "-c", "echo hello from $(hostname), running as pid $$ in its own pid namespace"|' config.json
say "running it: coop run demo"
coop run demo
# A second bundle on the same rootfs whose process stays, for the commands below.
mkdir -p "$bundle/sleeper"
sed -e "s|\"path\": \"rootfs\"|\"path\": \"$bundle/rootfs\"|" \
  -e 's|"sh", "-c", ".*"$|"sleep", "600"|' config.json > "$bundle/sleeper/config.json"
cat <<EOT

demo: done. coop is /usr/local/bin/coop ($(coop --version | head -1)).
Try next (the bundle $bundle/sleeper runs sleep 600):
  coop run -d -b $bundle/sleeper nap && coop list
  coop exec -t nap sh                  # a shell in the running container (exit to leave)
  coop update --memory 64m nap && coop events --stats nap
  coop kill nap KILL && coop delete nap
  man coop-run                         # a man page per command; coop --help ends with examples
  scripts/test.sh                      # every test tier, roughly 45-60 min (docs/testing.md)
EOT
