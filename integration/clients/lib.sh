# Shared by the client tests: a busybox rootfs and image built offline, and a tiny TAP-ish
# reporter. Sourced, not run.
set -euo pipefail

passed=0
failed=0
check() { # check NAME CMD... : run CMD, count and print the result
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"
  else failed=$((failed + 1)); echo "not ok - $name"; fi
}
expect_eq() { # expect_eq WANT GOT
  [ "$1" = "$2" ] && return 0
  echo "    want: $(printf %q "$1")" >&2; echo "    got:  $(printf %q "$2")" >&2; return 1
}
summary() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}

make_busybox_rootfs() { # make_busybox_rootfs DIR
  local dir=$1 bb
  bb=$(command -v busybox)
  mkdir -p "$dir"/{bin,etc,proc,sys,dev,tmp,root,run}
  cp "$bb" "$dir/bin/busybox"
  local a; for a in $("$dir/bin/busybox" --list); do [ -e "$dir/bin/$a" ] || ln -s busybox "$dir/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/etc/group"
  chmod 1777 "$dir/tmp"
}
