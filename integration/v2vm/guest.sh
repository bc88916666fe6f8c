# Stage 2 of the run-in-vm.sh guest: PID 1 (the host's bash) on the overlay root. Mounts the
# rest of a system, a pure cgroup2 hierarchy with every controller enabled, then runs CMD with
# its output on the serial ports, leaves its exit code in the control share and powers off.
# shellcheck shell=bash disable=SC1091
. /.coop-vm/env
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
warn() { echo "run-in-vm guest: $*" >&2; }

# The host directories in KEEP (the checkout, when it lies under /tmp, /var/tmp or /run) stay
# visible: bound aside before the tmpfs mounts below would hide them, moved back after.
keep_n=0
for k in $KEEP; do
  mkdir -p "/.coop-keep/$keep_n" && mount --bind "$k" "/.coop-keep/$keep_n" || warn "cannot keep $k"
  keep_n=$((keep_n + 1))
done
mount -t tmpfs -o mode=0755,nosuid,nodev run /run
mkdir -p /run/coop-vm /run/lock
bb=/run/coop-vm/busybox   # from RAM: exec over 9p is slow under TCG
cp "$KDIR/busybox" "$bb"
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d"; done
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
keep_n=0
for k in $KEEP; do
  if mountpoint -q "/.coop-keep/$keep_n"; then
    mkdir -p "$k" && mount --move "/.coop-keep/$keep_n" "$k" || warn "cannot keep $k"
  fi
  keep_n=$((keep_n + 1))
done

# cgroup v2 only, every controller on for the root's children
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || warn "cannot mount cgroup2"
read -ra controllers < /sys/fs/cgroup/cgroup.controllers
for c in "${controllers[@]}"; do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || warn "cannot enable the $c controller"
done

# The guest kernel's modules (the host's /lib/modules belong to another kernel), loaded on
# demand by busybox's modprobe as well as by name here.
mkdir -p /lib/modules /run/coop-vm/sbin
mount --bind "$KDIR/lib/modules" /lib/modules
ln -s ../busybox /run/coop-vm/sbin/modprobe
echo /run/coop-vm/sbin/modprobe > /proc/sys/kernel/modprobe
for m in $MODULES; do /run/coop-vm/sbin/modprobe "$m" || warn "cannot load module $m"; done

mkdir -p "$WORKDIR"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap work "$WORKDIR" ||
  warn "cannot mount the work directory"
$bb hostname coop-vm
$bb ip link set lo up

# CMD's stdout and stderr are pipes (as on the host), copied to the serial ports in raw mode.
for t in ttyS0 ttyS1; do $bb stty -F /dev/$t raw -echo; done
$bb mkfifo /run/coop-vm/out /run/coop-vm/err
$bb cat /run/coop-vm/out > /dev/ttyS0 & copiers=$!
run() { cd "$WORKDIR" && exec bash /.coop-vm/cmd; }
if [ "$MERGE" = 1 ]; then
  (run) < /dev/null > /run/coop-vm/out 2>&1
else
  $bb cat /run/coop-vm/err > /dev/ttyS1 & copiers="$copiers $!"
  (run) < /dev/null > /run/coop-vm/out 2> /run/coop-vm/err
fi
rc=$?
# The copiers end when the last writer closes; a daemon CMD left behind may hold the pipes
# open, so they get 5 s at most. Then the UARTs drain (stty sets modes with TCSADRAIN).
# shellcheck disable=SC2086
(sleep 5; kill $copiers 2>/dev/null) & timer=$!
# shellcheck disable=SC2086
wait $copiers
kill $timer 2>/dev/null
for t in ttyS0 ttyS1; do $bb stty -F /dev/$t raw; done
echo "$rc" > /.coop-vm/rc
sync
echo 0 > /proc/sys/kernel/printk
$bb poweroff -f
$bb reboot -f
