#!/bin/busybox sh
# /init of the tml test guest (PID 1, busybox-static). Loads the virtio modules, mounts the
# disk that holds deno and the tml bundle, starts the SSH server when there is a network card,
# finds the puppet's virtio-serial port and its fw_cfg secret by name, and runs the real
# `tml puppet`. When the puppet ends, or the power button is pressed (QMP system_powerdown),
# the guest powers off; if this script dies the kernel panics, and with panic=-1 and QEMU's
# -no-reboot the VM ends either way.
# @PORT_NAME@, @SECRET_NAME@, @MODULES@, @DISK_DEVICE@ and @DISK_MOUNT@ are filled in by
# build.ts (the device is /dev/vda for the test guest, a partition of it for the UEFI guest).
# The disk mounts where build.ts built its tree, so deno's caches that build.ts made there
# (module analysis, V8 code cache: ~3 s of a ~9 s boot under TCG) match this path.
disk='@DISK_MOUNT@'
device='@DISK_DEVICE@'
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /tmp
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
# After the tmpfs mounts: a repository cloned under /tmp builds its tree there.
mkdir -p "$disk"

say() { echo "tml-guest: $* (uptime $(cut -d' ' -f1 /proc/uptime) s)"; }

for module in @MODULES@; do
  insmod "/lib/modules/$module.ko" || say "cannot load module $module"
done
say "modules loaded"

# Devices appear asynchronously after their driver loads; wait up to ~10 s for each.
wait_for() {
  tries=0
  while ! "$@"; do
    tries=$((tries + 1))
    [ "$tries" -gt 200 ] && return 1
    sleep 0.05
  done
}

power_button() {
  for event in /sys/class/input/event*; do
    if [ "$(cat "$event/device/name" 2>/dev/null)" = "Power Button" ]; then
      echo "/dev/${event##*/}"
      return 0
    fi
  done
  return 1
}
if wait_for power_button >/dev/null; then
  button=$(power_button)
  # One input event (24 bytes) from the button is a press; its /dev node may come a bit later.
  (
    wait_for test -c "$button" &&
      dd if="$button" bs=24 count=1 of=/dev/null 2>/dev/null &&
      say "power button pressed" && poweroff -f
  ) &
else
  say "no power button: system_powerdown will not work"
fi

puppet_port() {
  for port in /sys/class/virtio-ports/*; do
    if [ "$(cat "$port/name" 2>/dev/null)" = "@PORT_NAME@" ]; then
      echo "/dev/${port##*/}"
      return 0
    fi
  done
  return 1
}
secret=/sys/firmware/qemu_fw_cfg/by_name/@SECRET_NAME@/raw

if ! wait_for test -b "$device" || ! mount -o ro "$device" "$disk"; then
  say "cannot mount the tml disk $device"
  poweroff -f
fi
mkdir -p /lib64
ln -s "$disk"/lib64/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
ln -s "$disk"/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu

# The SSH server, when the machine has a network card (the supervisor adds one, with QEMU's
# user network, when it exposes the guest's port 22 through its rendezvous server): dropbear on
# port 22 and the address from DHCP (QEMU's own answers at once; udhcpc -q leaves once it has
# the lease, and nothing takes the address away). dropbear listens before the puppet starts, so
# before the job is ready and `tml job ssh` is offered. Users log in as `tml` with the job's
# keys, which the puppet writes to /home/tml/.ssh/authorized_keys. dropbear makes its host key at
# the first connection (-R), so a guest nobody logs into spends nothing on it. All of it costs
# ~0.3 s under TCG (mostly loading dropbear and its libraries; every exec counts).
if [ -e /sys/class/net/eth0 ]; then
  mkdir -p /run/dropbear /dev/pts
  mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
  # dropbear listens on every address, so it starts while DHCP runs.
  "$disk"/opt/tml/dropbear -F -E -R -s -p 22 -P /run/dropbear.pid 2>/run/dropbear.log &
  ip link set eth0 up
  if udhcpc -i eth0 -s /etc/udhcpc.sh -q -n -t 5 -T 1 >/run/udhcpc.log 2>&1; then
    read -r address </run/eth0.address
    say "network up: $address"
  else
    say "no DHCP lease on eth0: $(tail -n 1 /run/udhcpc.log)"
  fi
  # dropbear listens (state 0A) on port 22 (0016), as /proc/net/tcp shows it.
  if wait_for grep -q '^ *[0-9]*: [0-9A-F]*:0016 [0-9A-F]*:0000 0A' /proc/net/tcp; then
    say "ssh server listening on port 22"
  else
    say "the ssh server did not start: $(tail -n 3 /run/dropbear.log)"
  fi
fi

if ! wait_for puppet_port >/dev/null; then
  say "no virtio-serial port named @PORT_NAME@"
  poweroff -f
fi
if ! wait_for test -e "$secret"; then
  say "no fw_cfg file @SECRET_NAME@"
  poweroff -f
fi
port=$(puppet_port)
say "starting the puppet on $port"

# The puppet reaches the port through a loopback TCP relay rather than `--channel file:$port`:
# in Deno a pending read on a file blocks writes to the same file (one task queue per file),
# so a puppet holding the port open for both deadlocks after its first exchange, and a
# virtio-serial port cannot be opened twice (EBUSY). nc holds the port open once, read-write.
ip link set lo up
(
  while true; do
    nc -l -p 7200 <>"$port" >&0 || sleep 0.2
  done
) &

export HOME=/root DENO_DIR=/run/deno DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
# deno writes to its caches: copy the prepared ones from the read-only disk.
mkdir -p "$DENO_DIR" && cp -a "$disk"/opt/tml/deno-dir/. "$DENO_DIR"/
"$disk"/opt/tml/deno run -A --no-config "$disk"/opt/tml/tml.js puppet \
  --channel tcp:127.0.0.1:7200 --secret-file "$secret" --root /run/tml --no-echo
say "the puppet exited with status $?"
poweroff -f
