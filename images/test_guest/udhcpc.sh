#!/bin/sh
# busybox udhcpc's hook in the test guest, which runs `udhcpc -q` once on a fresh interface:
# applies the lease to the interface (address, prefix length, default route) and notes the
# address in /run/<interface>.address for init's log. Nothing to undo on deconfig (the
# interface has no address yet) and no renewal (udhcpc has left). udhcpc exports interface,
# ip, mask and router.
if [ "$1" = bound ]; then
  ip addr add "$ip/$mask" dev "$interface"
  [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
  echo "$ip/$mask" >"/run/$interface.address"
fi
exit 0
