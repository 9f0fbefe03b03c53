#!/bin/sh
# busybox udhcpc's hook in the test guest: applies the lease it got to the interface (address,
# prefix length, default route). udhcpc exports interface, ip, mask and router.
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ;;
  bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
