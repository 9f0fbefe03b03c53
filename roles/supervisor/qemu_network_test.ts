import { assertEquals } from "../../lib/testing/asserts.ts";
import { defaultQemuArgs } from "./qemu_args.ts";
import { QEMU_SYSTEM } from "../../lib/qemu_programs.ts";
import { requireProgram } from "../../lib/system_packages.ts";
import {
  networkArgs,
  parseHostForwards,
  readHostForwards,
  templateDefinesNetwork,
} from "./qemu_network.ts";

Deno.test("templateDefinesNetwork() sees -nic, -netdev and -net, with one dash or two", () => {
  assertEquals(templateDefinesNetwork(defaultQemuArgs()), false);
  assertEquals(templateDefinesNetwork(["-m", "512", "-nic", "none"]), true);
  assertEquals(
    templateDefinesNetwork(["--netdev", "tap,id=n0", "-device", "e1000,netdev=n0"]),
    true,
  );
  assertEquals(templateDefinesNetwork(["-net", "nic"]), true);
  // Values that mention a network are not network options.
  assertEquals(templateDefinesNetwork(["-name", "nic-test", "-append", "ip=-net"]), false);
});

Deno.test("networkArgs() adds no NIC without ports, and a user network forwarding them", () => {
  assertEquals(networkArgs(defaultQemuArgs(), []), ["-nic", "none"]);
  assertEquals(networkArgs(defaultQemuArgs(), [22, 8080, 22]), [
    "-nic",
    "user,model=virtio-net-pci,restrict=on," +
    "hostfwd=tcp:127.0.0.1:0-:22,hostfwd=tcp:127.0.0.1:0-:8080",
  ]);
});

Deno.test("networkArgs() adds nothing when the site's template has its own network", () => {
  assertEquals(networkArgs([...defaultQemuArgs(), "-nic", "none"], [22]), []);
  assertEquals(networkArgs(["-netdev", "user,id=n,hostfwd=tcp::2222-:22"], []), []);
});

Deno.test("parseHostForwards() reads each guest port's forward from info usernet", () => {
  // QEMU 7.2's table for a VM with an SSH session open through the first forward.
  const table = [
    "Hub -1 (#net050):",
    "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ",
    "  TCP[ESTABLISHED]   14       127.0.0.1 51842       10.0.2.15    22     0     0",
    "  TCP[HOST_FORWARD]  11       127.0.0.1 42761       10.0.2.15    22     0     0",
    "  TCP[HOST_FORWARD]   9               * 35473       10.0.2.15    80     0     0",
    "  UDP[236 sec]       10       127.0.0.1 40000       10.0.2.15    53     0     0",
    "Hub -1 (n2):",
    "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ",
    "  TCP[HOST_FORWARD]  12        10.1.2.3 34127       10.0.2.15    22     0     0",
    "",
  ].join("\r\n");
  assertEquals(
    parseHostForwards(table),
    new Map([
      [22, { hostname: "127.0.0.1", port: 42761 }],
      [80, { hostname: "127.0.0.1", port: 35473 }],
    ]),
  );
  assertEquals(parseHostForwards(""), new Map());
});

/** A QEMU that never runs its guest (-S): it binds its forwards and answers QMP at no CPU cost. */
function startPausedQemu(qemu: string, dir: string, extra: string[]) {
  const qmp = `${dir}/qmp-${crypto.randomUUID().slice(0, 8)}.sock`;
  const child = new Deno.Command(qemu, {
    args: ["-S", "-display", "none", "-monitor", "none", "-qmp", `unix:${qmp},server=on,wait=off`]
      .concat(defaultQemuArgs(), extra),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return { qmp, child };
}

Deno.test("readHostForwards() reads the free ports QEMU bound; two VMs at once get their own", async () => {
  const qemu = await requireProgram(QEMU_SYSTEM);
  const dir = await Deno.makeTempDir({ prefix: "tml-qemu-net-" });
  const vms = [0, 1].map(() =>
    startPausedQemu(qemu, dir, networkArgs(defaultQemuArgs(), [22, 80]))
  );
  try {
    const tables = await Promise.all(vms.map((vm) => readHostForwards(vm.qmp, vm.child.status)));
    const addresses = tables.flatMap((table) => [table!.get(22)!, table!.get(80)!]);
    assertEquals(addresses.map((address) => address.hostname), Array(4).fill("127.0.0.1"));
    assertEquals(new Set(addresses.map((address) => address.port)).size, 4);
    // QEMU listens on each: a connection is accepted (the paused guest never answers it).
    for (const address of addresses) (await Deno.connect(address)).close();
  } finally {
    for (const vm of vms) vm.child.kill("SIGKILL");
    await Promise.all(vms.map((vm) => vm.child.status));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readHostForwards() gives up when QEMU exits before answering", async () => {
  const qemu = await requireProgram(QEMU_SYSTEM);
  const dir = await Deno.makeTempDir({ prefix: "tml-qemu-net-" });
  try {
    const vm = startPausedQemu(qemu, dir, ["-no-such-option"]);
    assertEquals(await readHostForwards(vm.qmp, vm.child.status), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
