# shellcheck shell=bash
# Shared by the client tests: a tiny TAP-ish reporter, and (from
# ../lib/rootfs.sh) a busybox rootfs and image built offline. Sourced, not run.
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
finished=
summary() {
  finished=1
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
# A step outside `check` that fails stops the script (set -e); its line is kept for the report.
abort_line=
set -E   # the ERR trap also inside functions
trap 'abort_line="$LINENO${FUNCNAME:+ in ${FUNCNAME[0]}() called from line ${BASH_LINENO[0]}}"' ERR
summary_on_abort() { # summary_on_abort STATUS: from the EXIT trap, after the cleanup
  [ -n "$finished" ] && return 0
  failed=$((failed + 1))
  echo "not ok - the script stopped before its end (line ${abort_line:-?}, status $1)"
  echo "$passed passed, $failed failed"
}

# cg_read PID CONTROLLER V1FILE V2FILE: a control file of the cgroup PID is in, as the host
# sees it: V1FILE in CONTROLLER's v1 hierarchy when the host has one, else V2FILE in cgroup2.
cg_read() {
  local pid=$1 ctl=$2 mnt path
  mnt=$(grep ' - cgroup ' /proc/self/mountinfo |
    awk -v c="$ctl" '{n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $5; exit }}')
  if [ -n "$mnt" ]; then
    path=$(awk -F: -v c="$ctl" '{n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $3}' "/proc/$pid/cgroup")
    cat "$mnt$path/$3"
  else
    path=$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")
    cat "/sys/fs/cgroup$path/$4"
  fi
}

# make_busybox_rootfs DIR, make_busybox_image NAME [ARCHIVE [ROOTFS]] and
# make_busybox_oci_archive ROOTFS ARCHIVE NAME.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/rootfs.sh"
