#!/usr/bin/env bash
# containerd through coop: containerd.sh /path/to/coop
# A private containerd (own root, state and socket) runs containers with
# `ctr run --runc-binary coop`, through containerd-shim-runc-v2, and is stopped at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
runtime=$(realpath "$1")

work=$(mktemp -d /tmp/coop-ctr.XXXXXX)
sock=$work/containerd.sock
daemon=
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "$work/root/overlayfs"
CONF
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1 && break; sleep 0.1; done
c() { ctr -a "$sock" -n coop "$@"; }

# An OCI image made offline: a busybox layer and a manifest, as an OCI archive.
make_busybox_rootfs "$work/rootfs"
python3 - "$work" <<'PY'
import hashlib, json, os, sys, tarfile, io
work = sys.argv[1]
layout = os.path.join(work, "oci"); blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d, len(data)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    t.add(os.path.join(work, "rootfs"), arcname=".")
layer = buf.getvalue()
ldig, lsize = put(layer)
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [ldig]}}).encode()
cdig, csize = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ldig, "size": lsize}]}).encode()
mdig, msize = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": mdig, "size": msize, "platform": {"architecture": "amd64", "os": "linux"},
    "annotations": {"io.containerd.image.name": "localhost/busybox:coop",
                    "org.opencontainers.image.ref.name": "coop"}}]},
    open(os.path.join(layout, "index.json"), "w"))
open(os.path.join(layout, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
tar -C "$work/oci" -cf "$work/image.tar" oci-layout index.json blobs
c images import "$work/image.tar" >/dev/null || { ls -R "$work/oci" >&2; cat "$work/containerd.log" | tail -5 >&2; exit 1; }
img=localhost/busybox:coop

check "ctr run --rm prints" expect_eq "hi" "$(c run --rm --runc-binary "$runtime" $img t1 echo hi)"
code=0; c run --rm --runc-binary "$runtime" $img t2 sh -c 'exit 5' || code=$?
check "exit code" expect_eq 5 "$code"
c run -d --runc-binary "$runtime" $img t3 sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done'
sleep 0.3
check "detached task runs" expect_eq RUNNING "$(c task ls | awk '$1=="t3"{print $3}')"

check "task ps lists the pids" eval '[ "$(c task ps t3 | awk '"'"'$1 ~ /^[0-9]+$/'"'"' | wc -l)" -ge 2 ]'
check "task exec prints" expect_eq "in-container" "$(c task exec --exec-id e1 t3 echo in-container)"
code=0; c task exec --exec-id e2 t3 sh -c 'exit 6' || code=$?
check "task exec exit code" expect_eq 6 "$code"
check "task exec --user --cwd" expect_eq "65534 /tmp" "$(c task exec --exec-id e3 --user 65534 --cwd /tmp t3 sh -c 'echo $(id -u) $(pwd)')"
# ctr itself may complain afterwards that it cannot resize the finished process: first line.
# script(1) may echo its stdin's end as "^@" into the output: not the container's.
out=$(script -qec "ctr -a $sock -n coop task exec --tty --exec-id e4 t3 tty" /dev/null </dev/null | tr -d '\r\000' | sed 's/\^@//g' | head -1)
check "task exec --tty gives a terminal" expect_eq "/dev/pts/0" "$out"
check "task pause" c task pause t3
check "task paused" expect_eq PAUSED "$(c task ls | awk '$1=="t3"{print $3}')"
check "task resume" c task resume t3
check "task metrics" eval "c task metrics t3 | grep -q memory"
check "task kill" c task kill t3
for _ in $(seq 50); do [ "$(c task ls | awk '$1=="t3"{print $3}')" = STOPPED ] && break; sleep 0.1; done
check "task stopped" expect_eq STOPPED "$(c task ls | awk '$1=="t3"{print $3}')"
check "task delete" eval "c task delete t3 >/dev/null"
check "container delete" c container delete t3
# A second container joining the first's network namespace, as CRI builds pods.
c run -d --runc-binary "$runtime" $img p1 sleep 100
p1=$(c task ls | awk '$1=="p1"{print $2}')
c run -d --runc-binary "$runtime" --with-ns "network:/proc/$p1/ns/net" $img p2 sleep 100
check "--with-ns joins the network namespace" expect_eq \
  "$(readlink /proc/$p1/ns/net)" "$(readlink /proc/$(c task ls | awk '$1=="p2"{print $2}')/ns/net)"
for t in p2 p1; do c task kill -s SIGKILL $t; done
sleep 0.5
for t in p2 p1; do c task delete $t >/dev/null; c container delete $t; done
summary
