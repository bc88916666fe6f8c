# shellcheck shell=bash
# A busybox root filesystem and image, built offline from the host's static busybox
# (apt-get install busybox-static). Sourced, not run:
#
#   make_busybox_rootfs DIR
#       DIR gets /bin/busybox and a link for every applet at the place `busybox --list-full`
#       gives (/bin, /sbin, /usr/bin, /usr/sbin), /etc/passwd and /etc/group with root and
#       nobody, and empty /proc, /sys, /dev, /tmp (1777), /root and /run.
#   make_busybox_image NAME [ARCHIVE [ROOTFS]]
#       `podman import`s a busybox rootfs (ROOTFS if given, else a fresh one) as image NAME and,
#       with ARCHIVE, `podman save --format oci-archive`s it there for `ctr images import`.
#       podman is called as $PODMAN_CMD (a command or a shell function; default: podman), so a
#       test can point it at its own storage: PODMAN_CMD=pm make_busybox_image ...
#   make_busybox_oci_archive ROOTFS ARCHIVE NAME
#       the same OCI archive without podman (python3): one layer, CMD sh, a PATH, and the
#       io.containerd.image.name annotation, so `ctr images import ARCHIVE` names it NAME.

busybox_static() { # path of a statically linked busybox, or fail saying what to install
  local bb out
  for bb in /bin/busybox /usr/bin/busybox "$(command -v busybox 2>/dev/null || true)"; do
    [ -n "$bb" ] && [ -x "$bb" ] || continue
    # A dynamic busybox (package busybox) would not run inside a rootfs that has no libc.
    out=$(LC_ALL=C ldd "$bb" 2>&1 || true)
    case $out in *"not a dynamic executable"*|*"statically linked"*) echo "$bb"; return 0 ;; esac
  done
  echo "make_busybox_rootfs: no static busybox found (apt-get install -y busybox-static)" >&2
  return 1
}

# Every step checks its own status: set -e does not hold inside a function called from an
# `if`, `&&` or `||`.

make_busybox_rootfs() { # make_busybox_rootfs DIR
  local dir=$1 bb applet up
  bb=$(busybox_static) || return 1
  mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run} || return 1
  cp "$bb" "$dir/bin/busybox" && chmod 0755 "$dir/bin/busybox" || return 1
  # Links relative to the rootfs, so they resolve the same from the host and the container.
  while read -r applet; do
    case $applet in */*) ;; *) continue ;; esac   # skip "linuxrc" at the top
    [ -e "$dir/$applet" ] || [ -L "$dir/$applet" ] && continue
    up=$(dirname "$applet" | sed 's:[^/][^/]*:..:g')
    ln -s "$up/bin/busybox" "$dir/$applet" || return 1
  done < <("$dir/bin/busybox" --list-full 2>/dev/null || "$dir/bin/busybox" --list | sed 's:^:bin/:')
  [ -L "$dir/bin/sh" ] || { echo "make_busybox_rootfs: no applet links in $dir" >&2; return 1; }
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    > "$dir/etc/passwd" || return 1
  printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/etc/group" || return 1
  chmod 1777 "$dir/tmp" && chmod 0700 "$dir/root"
}

make_busybox_image() { # make_busybox_image NAME [ARCHIVE [ROOTFS]]
  local name=$1 archive=${2:-} rootfs=${3:-} pmc=${PODMAN_CMD:-podman} tmp rc=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/busybox-image.XXXXXX") || return 1
  if [ -z "$rootfs" ]; then rootfs=$tmp/rootfs; make_busybox_rootfs "$rootfs" || rc=1; fi
  [ $rc = 0 ] && { tar --numeric-owner -C "$rootfs" -cf "$tmp/rootfs.tar" . || rc=1; }
  [ $rc = 0 ] && { $pmc import --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tmp/rootfs.tar" "$name" >/dev/null 2>"$tmp/err" || rc=1; }
  if [ $rc = 0 ] && [ -n "$archive" ]; then
    rm -f "$archive"
    $pmc save --format oci-archive -o "$archive" "$name" >/dev/null 2>"$tmp/err" || rc=1
  fi
  # podman's progress lines go to stderr: shown only when something failed.
  [ $rc = 0 ] || { cat "$tmp/err" 2>/dev/null; echo "make_busybox_image: could not build $name"; } >&2
  rm -rf "$tmp"
  return $rc
}

make_busybox_oci_archive() { # make_busybox_oci_archive ROOTFS ARCHIVE NAME
  local rootfs=$1 archive=$2 name=$3 tmp rc=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/busybox-oci.XXXXXX") || return 1
  python3 - "$rootfs" "$tmp" "$name" <<'PY' || rc=1
import hashlib, io, json, os, sys, tarfile
rootfs, layout, name = sys.argv[1:4]
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
def numeric(ti):
    ti.uid = ti.gid = 0; ti.uname = ti.gname = ""
    return ti
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    t.add(rootfs, arcname=".", filter=numeric)
ldig, lsize = put(buf.getvalue())
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [ldig]}}).encode()
cdig, csize = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ldig, "size": lsize}]}).encode()
mdig, msize = put(manifest)
tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": mdig, "size": msize, "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": tag}}]}, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
PY
  [ $rc = 0 ] && { tar -C "$tmp" -cf "$archive" oci-layout index.json blobs || rc=1; }
  rm -rf "$tmp"
  return $rc
}
