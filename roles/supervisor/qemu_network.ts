/**
 * A job VM's network, and where the supervisor reaches the guest's TCP ports (the rendezvous
 * proxy's `HostDriver.hostAddress`). Which network a VM gets is one rule:
 *
 *   site's qemu_args names -nic, -netdev or -net ─> the site's own (tml adds nothing; this
 *   (any value, `-nic none` too)                      includes "no network" for `-nic none`)
 *   no guest port to expose ───────────────────────> `-nic none` (QEMU would add a default NIC)
 *   guest ports to expose (rendezvous_services) ───> QEMU's user network on a virtio NIC:
 *       restrict=on, hostfwd=tcp:127.0.0.1:0-:PORT for each port
 *
 * `restrict=on` keeps the guest from reaching the supervisor's machine and any network beyond
 * it (a job's workload is not trusted with the site's network); the forwards still work. A
 * site whose guests must be online defines its network in `qemu_args`.
 *
 * Host port 0 lets the kernel pick a free port when QEMU binds each forward, so no two VMs (of
 * this supervisor or any other process) ever collide and no port is picked and then lost to a
 * race. Which ports QEMU got is read back once it runs, from its user-network table (HMP
 * `info usernet` through QMP; QMP has no command for it): whoever wrote the forwards, so a
 * site's own user network with hostfwd rules is reachable too.
 */
import type { HostAddress } from "./host_driver.ts";
import { withStartingQemu } from "./qemu_qmp.ts";

/** QEMU's options that configure networking; a template naming any of them owns it. */
const NETWORK_OPTIONS = new Set(["-nic", "-netdev", "-net"]);

/** Whether the site's `qemu_args` defines the machine's networking itself. */
export function templateDefinesNetwork(template: string[]): boolean {
  // QEMU accepts every option with one dash or two.
  return template.some((arg) => NETWORK_OPTIONS.has(arg.replace(/^--/, "-")));
}

/** The arguments tml adds for the VM's network (see the rule above). */
export function networkArgs(template: string[], guestPorts: number[]): string[] {
  if (templateDefinesNetwork(template)) return [];
  if (guestPorts.length === 0) return ["-nic", "none"];
  const forwards = [...new Set(guestPorts)].map((port) => `hostfwd=tcp:127.0.0.1:0-:${port}`);
  return ["-nic", ["user", "model=virtio-net-pci", "restrict=on", ...forwards].join(",")];
}

/**
 * The TCP forwards in `info usernet`'s table, by guest port: where the supervisor connects to
 * reach that port. A forward bound to every address (`*`) is reached on 127.0.0.1. The first
 * forward of a guest port wins when several name it.
 *
 *   Hub -1 (#net050):
 *     Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
 *     TCP[HOST_FORWARD]  11       127.0.0.1 42761       10.0.2.15    22     0     0
 */
export function parseHostForwards(table: string): Map<number, HostAddress> {
  const forwards = new Map<number, HostAddress>();
  for (const line of table.split(/\r?\n/)) {
    const row = /^\s*TCP\[HOST_FORWARD\]\s+\S+\s+(\S+)\s+(\d+)\s+\S+\s+(\d+)\s/.exec(line);
    if (row === null) continue;
    const [, source, hostPort, guestPort] = row;
    if (forwards.has(Number(guestPort))) continue;
    forwards.set(Number(guestPort), {
      hostname: source === "*" || source === "0.0.0.0" ? "127.0.0.1" : source,
      port: Number(hostPort),
    });
  }
  return forwards;
}

/**
 * Reads the running VM's forwards over QMP. Undefined when QEMU exits first: its exit is
 * reported on its own path.
 */
export function readHostForwards(
  qmpSocket: string,
  exited: Promise<unknown>,
): Promise<Map<number, HostAddress> | undefined> {
  return withStartingQemu(qmpSocket, exited, async (client) => {
    const table = await client.execute("human-monitor-command", {
      "command-line": "info usernet",
    });
    return parseHostForwards(String(table));
  });
}
