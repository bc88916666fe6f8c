#!/usr/bin/env bash
# Rootless coop: rootless.sh /path/to/coop
#
# As a real unprivileged user (created here if missing: cooptest, uid 59123, with a subuid and
# subgid range of its own), runs coop directly (spec --rootless, run, run -d + exec + kill +
# delete, list, state under $XDG_RUNTIME_DIR/coop) and through rootless podman, then the same
# podman checks with runc for comparison. Prints one line per check and `N passed, M failed`.
# The user, its ranges and its podman storage under its home stay for the next run; every
# container and the work directory go.
#
# Environment: ROOTLESS_USER, ROOTLESS_UID, ROOTLESS_SUB (first subordinate id),
# ROOTLESS_COMPARE_RUNC (default 1; a runtime path, or 0 to skip), ROOTLESS_PODMAN (default 1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/clients/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 COOP" >&2; exit 2; }
coop_bin=$(realpath "$1")
user=${ROOTLESS_USER:-cooptest}
uid=${ROOTLESS_UID:-59123}
sub=${ROOTLESS_SUB:-1610612736}   # 0x60000000: far above any range useradd hands out
compare=${ROOTLESS_COMPARE_RUNC:-1}
[ "$compare" = 1 ] && compare=$(command -v runc || echo 0)
with_podman=${ROOTLESS_PODMAN:-1}

# --- the user (idempotent; nothing else on the host changes) ------------------------------
if ! id "$user" >/dev/null 2>&1; then
  getent passwd "$uid" >/dev/null && { echo "$0: uid $uid is taken: set ROOTLESS_UID" >&2; exit 2; }
  useradd --uid "$uid" --user-group --create-home --shell /bin/sh "$user"
fi
uid=$(id -u "$user"); gid=$(id -g "$user"); home=$(getent passwd "$user" | cut -d: -f6)
# useradd may have given the user ranges already (SUB_UID_MIN...): those are used then.
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  grep -q "^$user:" "$f" || echo "$user:$sub:65536" >> "$f"
done
subuid=$(awk -F: -v u="$user" '$1 == u && $3 >= 65536 {print $2; exit}' /etc/subuid)
subgid=$(awk -F: -v u="$user" '$1 == u && $3 >= 65536 {print $2; exit}' /etc/subgid)
[ -n "$subuid" ] && [ -n "$subgid" ] || { echo "$0: $user needs 65536 subordinate ids" >&2; exit 2; }
runtime_dir=/run/user/$uid
mkdir -p "$runtime_dir"; chown "$uid:$gid" "$runtime_dir"; chmod 0700 "$runtime_dir"
user_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# On a pure cgroup v2 host, a subtree delegated to the user as systemd would (owner of the
# directory, cgroup.procs, cgroup.subtree_control and cgroup.threads), with the user's
# commands in its leaf "shell". On cgroup v1 nothing can be delegated: no cgroup.
# The delegated cgroup is named like systemd's user@UID.service (inside a directory of the
# test's own, never the host's user.slice).
deleg= deleg_top=
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  deleg_top=/sys/fs/cgroup/$user.delegated
  deleg=$deleg_top/user@$uid.service
  mkdir -p "$deleg/shell"
  for c in memory pids; do
    grep -qw "$c" /sys/fs/cgroup/cgroup.subtree_control || echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control
  done
  echo "+memory +pids" > "$deleg_top/cgroup.subtree_control"
  for d in "$deleg" "$deleg/shell"; do
    chown "$uid:$gid" "$d" "$d"/cgroup.{procs,subtree_control,threads}
  done
  echo "+memory +pids" > "$deleg/cgroup.subtree_control"
fi
as_user() { # as_user CMD...: CMD as the user, with the environment a login would give
  (cd "$work" && { [ -z "$deleg" ] || echo "$BASHPID" > "$deleg/shell/cgroup.procs"; } && setpriv --reuid "$uid" --regid "$gid" --init-groups \
    env -i HOME="$home" USER="$user" LOGNAME="$user" XDG_RUNTIME_DIR="$runtime_dir" \
    PATH="$user_path" ${CONTAINERS_CONF:+CONTAINERS_CONF="$CONTAINERS_CONF"} "$@")
}

work=$(mktemp -d /tmp/coop-rl.XXXXXX)
chmod 0755 "$work"
cleanup() {
  local status=$?
  for c in $(as_user "$coop" list -q 2>/dev/null | grep '^rl-' || true); do
    as_user "$coop" delete --force "$c" >/dev/null 2>&1 || true
  done
  if [ "$with_podman" = 1 ]; then
    for r in "$coop" ${runc_copy:+"$runc_copy"}; do
      as_user podman --runtime "$r" rm -af -t 0 >/dev/null 2>&1 || true
    done
  fi
  # rootless podman's pause process (it holds the user's namespace between podman calls).
  local pp=$runtime_dir/libpod/tmp/pause.pid
  [ ! -s "$pp" ] || kill "$(cat "$pp")" 2>/dev/null || true
  rm -rf "$work"
  # The delegated subtree, deepest first (the "shell" leaf empties as our subshells exit).
  [ -z "$deleg_top" ] || find "$deleg_top" -depth -type d -exec rmdir {} + 2>/dev/null || true
  summary_on_abort $status
}
trap cleanup EXIT
# The user cannot read the worktree's target/ necessarily: its own copy.
coop=$work/coop
cp "$coop_bin" "$coop"; chmod 0755 "$coop"

# --- coop directly ------------------------------------------------------------------------
bundle=$work/bundle
mkdir -p "$bundle"
make_busybox_rootfs "$bundle/rootfs"
chown -R "$uid:$gid" "$work"
as_user "$coop" spec --rootless -b "$bundle"
state_of() { # state_of ID: the container's status, "none" when coop does not know it
  local out; out=$(as_user "$coop" state "$1" 2>/dev/null) || { echo none; return; }
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$out"
}
listed() { local l; l=$(as_user "$coop" list -q 2>&1); grep -qx "$1" <<<"$l"; }
config() { # config JQ-LIKE-PYTHON: edit the bundle's config.json as the user (python3)
  as_user python3 - "$bundle/config.json" "$1" <<'PY'
import json, sys
p, code = sys.argv[1], sys.argv[2]
c = json.load(open(p))
exec(code)
json.dump(c, open(p, "w"), indent=2)
PY
}
check "spec --rootless maps the user's uid to root" expect_eq "0 $uid 1" \
  "$(as_user python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["linux"]["uidMappings"][0]; print(m["containerID"], m["hostID"], m["size"])' "$bundle/config.json")"
check "spec --rootless has a user namespace and no network namespace" expect_eq "user" \
  "$(as_user python3 -c 'import json,sys; n=[x["type"] for x in json.load(open(sys.argv[1]))["linux"]["namespaces"]]; print("user" if "user" in n and "network" not in n else n)' "$bundle/config.json")"
if [ "$compare" != 0 ]; then
  mkdir -p "$work/runc-spec"; chown "$uid:$gid" "$work/runc-spec"
  (cd "$work/runc-spec" && setpriv --reuid "$uid" --regid "$gid" --init-groups "$compare" spec --rootless)
  # runc 1.1 adds a cgroup namespace only on cgroup v2 hosts; coop's default spec always has one.
  same=$(python3 - "$work/runc-spec/config.json" "$bundle/config.json" <<'PY'
import json, sys
r, c = (json.load(open(p)) for p in sys.argv[1:])
ns = lambda s: [n for n in s["linux"]["namespaces"] if n["type"] != "cgroup"]
diff = [k for k, f in [("mounts", lambda s: s["mounts"]), ("namespaces", ns),
        ("uidMappings", lambda s: s["linux"]["uidMappings"]),
        ("gidMappings", lambda s: s["linux"]["gidMappings"]),
        ("resources", lambda s: s["linux"].get("resources"))] if f(r) != f(c)]
print(" ".join(diff) or "same")
PY
)
  check "spec --rootless: mounts, namespaces, mappings and resources as runc's" expect_eq same "$same"
fi
mkdir -p "$work/plain"; ln -s "$bundle/rootfs" "$work/plain/rootfs"; chown -R "$uid:$gid" "$work/plain"
as_user "$coop" spec -b "$work/plain"
code=0; as_user "$coop" run -b "$work/plain" rl-plain </dev/null >"$work/plain.err" 2>&1 || code=$?
check "a config without a user namespace: one line saying it needs one, nothing left" eval \
  "[ $code != 0 ] && grep -q 'needs a user namespace' $work/plain.err && [ \$(wc -l < $work/plain.err) = 1 ] && ! listed rl-plain"
config 'c["process"]["terminal"] = False; c["process"]["args"] = ["sh", "-c", "echo $(id -u):$(cat /proc/self/uid_map)"]'

out=$(as_user "$coop" run -b "$bundle" rl-run 2>&1) || true
check "run: root in the container is the user outside" expect_eq "0: 0 $uid 1" "$out"
check "the state lives in XDG_RUNTIME_DIR/coop" eval "[ -d $runtime_dir/coop ] && [ ! -e $runtime_dir/coop/rl-run ]"
code=0; (cd "$bundle" && as_user env -u XDG_RUNTIME_DIR "$coop" list >"$work/noxdg" 2>&1) || code=$?
check "without XDG_RUNTIME_DIR: one error naming it" eval \
  "[ $code != 0 ] && grep -q XDG_RUNTIME_DIR $work/noxdg && [ \$(wc -l < $work/noxdg) = 1 ]"

config 'c["process"]["args"] = ["sh", "-c", "echo x > /dev/null && head -c 3 /dev/zero | wc -c"]'
out=$(as_user "$coop" run -b "$bundle" rl-dev 2>&1) || true
check "device nodes are the host's, bound (/dev/null, /dev/zero)" expect_eq 3 "$out"
config 'c["process"]["args"] = ["sh", "-c", "exit 7"]'
code=0; as_user "$coop" run -b "$bundle" rl-code >/dev/null 2>&1 || code=$?
check "run: the exit code comes back" expect_eq 7 "$code"

config 'c["process"]["args"] = ["sleep", "300"]'
check "run -d" eval "as_user $coop run -d -b $bundle rl-bg </dev/null >/dev/null 2>&1"
list=$(as_user "$coop" list 2>&1)
check "list shows it running" eval 'grep -q "^rl-bg .*running" <<<"$list"'
check "state: running" expect_eq running "$(state_of rl-bg)"
check "exec" expect_eq "hello 0" "$(as_user "$coop" exec rl-bg sh -c 'echo hello $(id -u)' 2>&1)"
code=0; as_user "$coop" exec rl-bg sh -c 'exit 5' >/dev/null 2>&1 || code=$?
check "exec: the exit code comes back" expect_eq 5 "$code"
as_user "$coop" exec -d rl-bg sleep 301 >/dev/null 2>&1 || true
n=$(as_user "$coop" ps --format json rl-bg 2>/dev/null | tr -cd ',' | wc -c)
check "ps lists init and the exec'd process (without a cgroup: its pid namespace)" expect_eq 1 "$n"
code=0; as_user "$coop" pause rl-bg >"$work/pause" 2>&1 || code=$?
if [ -z "$deleg" ]; then
  check "pause without a cgroup fails naming the freezer" eval "[ $code != 0 ] && grep -q freezer $work/pause"
  check "still running after the refused pause" expect_eq running "$(state_of rl-bg)"
else
  check "pause in the delegated cgroup" expect_eq "0 paused" "$code $(state_of rl-bg)"
  check "resume" eval "as_user $coop resume rl-bg"
  check "the container's cgroup is in the delegated subtree" eval \
    "[ -d $deleg/coop/rl-bg ] && grep -q . $deleg/coop/rl-bg/cgroup.procs"
fi
check "kill --all KILL" eval "as_user $coop kill --all rl-bg KILL"
stopped() {
  for _ in $(seq 100); do
    [ "$(state_of "$1")" = stopped ] && return 0
    sleep 0.1
  done
  return 1
}
check "stopped after kill --all" stopped rl-bg
check "no process of it is left" eval "! pgrep -u $uid -f 'sleep 30[01]' >/dev/null"
check "delete" eval "as_user $coop delete rl-bg"
check "gone from list" eval "! listed rl-bg"
as_user "$coop" run -d -b "$bundle" rl-force </dev/null >/dev/null 2>&1 || true
check "delete --force of a running container" eval "as_user $coop delete --force rl-force && ! pgrep -u $uid -f 'sleep 300' >/dev/null"

config 'c["linux"]["resources"] = {"memory": {"limit": 67108864}}'
code=0; as_user "$coop" run -d -b "$bundle" rl-mem </dev/null >"$work/mem" 2>&1 || code=$?
if [ -z "$deleg" ]; then
  check "a memory limit without cgroup v2 delegation fails naming both" eval \
    "[ $code != 0 ] && grep -q 'memory limit' $work/mem && grep -q 'delegated' $work/mem"
  check "... and leaves no state behind" eval "! listed rl-mem"
else
  check "a memory limit in the delegated subtree" expect_eq "0 67108864" \
    "$code $(cat "$deleg/coop/rl-mem/memory.max" 2>&1)"
  as_user "$coop" delete --force rl-mem >/dev/null 2>&1 || true
  check "delete removes the container's cgroup" eval "[ ! -e $deleg/coop/rl-mem ]"
  # rootless podman's systemd-style cgroupsPath: a unit of the user's own systemd instance.
  config 'c["linux"]["cgroupsPath"] = "user.slice:libpod:rl-sd"'
  code=0; as_user "$coop" run -d -b "$bundle" rl-sd </dev/null >"$work/sd" 2>&1 || code=$?
  check "cgroupsPath user.slice:libpod:ID goes below user@UID.service" expect_eq "0 67108864" \
    "$code $(cat "$deleg/user.slice/libpod-rl-sd.scope/memory.max" 2>&1)"
  as_user "$coop" delete --force rl-sd >/dev/null 2>&1 || true
  config 'del c["linux"]["cgroupsPath"]'
fi
config 'del c["linux"]["resources"]; c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]'
code=0; as_user "$coop" run -b "$bundle" rl-rlim </dev/null >"$work/rlim" 2>&1 || code=$?
check "an rlimit above the hard limit fails naming it" eval "[ $code != 0 ] && grep -q RLIMIT_NOFILE $work/rlim"
config 'c["process"]["rlimits"] = []; c["process"]["oomScoreAdj"] = -500'
code=0; as_user "$coop" run -b "$bundle" rl-oom </dev/null >"$work/oom" 2>&1 || code=$?
check "a negative oomScoreAdj fails naming it" eval "[ $code != 0 ] && grep -q oom_score_adj $work/oom"
config 'del c["process"]["oomScoreAdj"]; c["linux"]["sysctl"] = {"kernel.domainname": "x"}; c["process"]["args"] = ["true"]'
code=0; as_user "$coop" run -b "$bundle" rl-sysctl </dev/null >"$work/sysctl" 2>&1 || code=$?
check "a sysctl the user namespace does not own fails naming it" eval \
  "[ $code != 0 ] && grep -q kernel.domainname $work/sysctl && grep -q 'user namespace' $work/sysctl"
config 'c["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0"}; c["linux"]["namespaces"].append({"type": "network"}); c["process"]["args"] = ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]'
out=$(as_user "$coop" run -b "$bundle" rl-sysctl2 </dev/null 2>&1) || true
check "a net.* sysctl of the container's own network namespace works" expect_eq 0 "$out"
config 'c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]'
del_sysctl='del c["linux"]["sysctl"]'
# Several ranges: through newuidmap/newgidmap and the user's subordinate ids.
config "$del_sysctl"'; c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": '"$uid"', "size": 1}, {"containerID": 1, "hostID": '"$subuid"', "size": 65536}]; c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": '"$gid"', "size": 1}, {"containerID": 1, "hostID": '"$subgid"', "size": 65536}]; c["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map | tr -s \" \" | sed \"s/^ //\" | tr \"\\n\" ,; id -u"]; c["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [1000]}'
out=$(as_user "$coop" run -b "$bundle" rl-ranges </dev/null 2>&1) || true
check "several ranges through newuidmap/newgidmap (and a user of a subordinate id)" expect_eq \
  "0 $uid 1,1 $subuid 65536,0 $gid 1,1 $subgid 65536,65534" "$out"
# Networking: the caller's own network namespace, joined by path.
config 'c["process"]["user"] = {"uid": 0, "gid": 0}; c["process"]["args"] = ["readlink", "/proc/self/ns/net"]; c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": '"$uid"', "size": 1}]; c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": '"$gid"', "size": 1}]'
as_user unshare --user --map-root-user --net sh -c "sleep 30 & echo \$! > $work/netns.pid; wait" >/dev/null 2>&1 &
for _ in $(seq 100); do [ -s "$work/netns.pid" ] && break; sleep 0.1; done
npid=$(cat "$work/netns.pid")
for _ in $(seq 100); do [ "$(readlink /proc/$npid/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.1; done
want=$(readlink "/proc/$npid/ns/net")
config 'c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "user"] + [{"type": "user", "path": "/proc/'"$npid"'/ns/user"}, {"type": "network", "path": "/proc/'"$npid"'/ns/net"}]; del c["linux"]["uidMappings"]; del c["linux"]["gidMappings"]'
out=$(as_user "$coop" run -b "$bundle" rl-netns </dev/null 2>&1) || true
check "a network namespace the user made, joined by path" expect_eq "$want" "$out"
kill "$npid" 2>/dev/null || true
config 'c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] not in ("user", "network")] + [{"type": "user"}, {"type": "network"}]; c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": '"$uid"', "size": 1}]; c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": '"$gid"', "size": 1}]; c["process"]["args"] = ["sh", "-c", "ls /sys/class/net | tr \"\\n\" \" \""]; c["mounts"] = [m if m["destination"] != "/sys" else {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]} for m in c["mounts"]]'
out=$(as_user "$coop" run -b "$bundle" rl-newnet </dev/null 2>&1) || true
check "a new network namespace has only lo (--network none)" expect_eq "lo " "$out"

# --- rootless podman ----------------------------------------------------------------------
if [ "$with_podman" != 1 ]; then summary; exit; fi
# The user's own configuration for these tests (its storage stays under its home, its
# per-boot state under XDG_RUNTIME_DIR: podman records those paths in its database at first
# use, so they must not change from run to run).
cat > "$work/containers.conf" <<CONF
[containers]
default_ulimits = []
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["coop", "crun", "runc"]
CONF
chmod 0644 "$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
img=localhost/busybox:rootless
if ! as_user podman image exists "$img" 2>/dev/null; then
  # Owned by root in the image (the bundle's copy belongs to the user).
  tar --numeric-owner --owner=0 --group=0 -C "$bundle/rootfs" -cf "$work/rootfs.tar" .
  chown "$uid:$gid" "$work/rootfs.tar"
  as_user podman import --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/rootfs.tar" "$img" >/dev/null 2>"$work/import.err" || { cat "$work/import.err" >&2; exit 1; }
fi
mkdir -p "$work/vol"; echo from-host > "$work/vol/file"; chown -R "$uid:$gid" "$work/vol"

podman_checks() { # podman_checks LABEL RUNTIME
  local l=$1 rt=$2 code out cid
  pm() { as_user podman --runtime "$rt" "$@"; }
  check "$l: run --rm --network none echo hi" expect_eq "hi" "$(pm run --rm --network none $img echo hi 2>&1)"
  code=0; pm run --rm $img sh -c 'exit 3' >/dev/null 2>&1 || code=$?
  check "$l: exit code" expect_eq 3 "$code"
  code=0; pm run --rm $img nosuchprog >/dev/null 2>&1 || code=$?
  check "$l: missing program exits 127" expect_eq 127 "$code"
  cid=$(pm run -d $img sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' 2>&1) || true
  check "$l: run -d" eval "[ \"\$(pm inspect -f '{{.State.Status}}' $cid 2>&1)\" = running ]"
  check "$l: exec" expect_eq "in 0" "$(pm exec "$cid" sh -c 'echo in $(id -u)' 2>&1)"
  code=0; pm exec "$cid" sh -c 'exit 4' >/dev/null 2>&1 || code=$?
  check "$l: exec exit code" expect_eq 4 "$code"
  check "$l: stop" eval "pm stop -t 5 $cid >/dev/null 2>&1"
  check "$l: stopped" expect_eq "exited" "$(pm inspect -f '{{.State.Status}}' "$cid" 2>&1)"
  check "$l: rm" eval "pm rm $cid >/dev/null 2>&1"
  check "$l: --userns=keep-id: id -u is the user's uid" expect_eq "$uid" \
    "$(pm run --rm --userns=keep-id $img id -u 2>&1)"
  out=$(pm run --rm --uidmap 0:1:65536 --gidmap 0:1:65536 $img sh -c 'tr -s " " < /proc/self/uid_map | sed "s/^ //"; id -u; stat -c %u /etc/passwd' 2>&1 | tr '\n' ,) || true
  check "$l: --uidmap 0:1:65536 (the image's files stay root's)" expect_eq "0 1 65536,0,0," "$out"
  check "$l: -v of a directory the user owns" expect_eq "from-host" \
    "$(pm run --rm -v "$work/vol:/vol" $img cat /vol/file 2>&1)"
  pm run --rm -v "$work/vol:/vol" $img sh -c 'echo from-container > /vol/new' >/dev/null 2>&1 || true
  check "$l: -v: a file written inside belongs to the user outside" expect_eq "$uid" \
    "$(stat -c %u "$work/vol/new" 2>&1)"
  rm -f "$work/vol/new"
  if [ -n "$deleg" ]; then
    check "$l: --memory 64m reaches the container's memory.max" expect_eq 67108864 \
      "$(pm run --rm --memory 64m $img cat /sys/fs/cgroup/memory.max 2>&1)"
  else
    # podman itself drops limits for rootless containers on cgroup v1, with a warning.
    out=$(pm run --rm --memory 64m $img true 2>&1) && code=0 || code=$?
    echo "# $l: --memory 64m on this host: exit $code: $(echo "$out" | tail -1)"
  fi
}
podman_checks "podman+coop" "$coop"
if [ "$compare" != 0 ]; then
  runc_copy=$work/runc
  cp "$compare" "$runc_copy"; chmod 0755 "$runc_copy"
  podman_checks "podman+runc (comparison)" "$runc_copy"
fi
summary
