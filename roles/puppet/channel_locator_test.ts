import { assertEquals, assertRejects, assertThrows } from "../../lib/testing/asserts.ts";
import { PUPPET_FW_CFG_SECRET, PUPPET_VIRTIO_PORT_NAME } from "../../lib/protocol/puppet.ts";
import {
  formatChannelSpec,
  locateChannel,
  locateSecret,
  parseChannelSpec,
} from "./channel_locator.ts";
import { PuppetError } from "./errors.ts";

Deno.test("parseChannelSpec() reads tcp, unix and file channels", () => {
  assertEquals(parseChannelSpec("tcp:10.0.2.2:7200", "--channel"), {
    kind: "tcp",
    hostname: "10.0.2.2",
    port: 7200,
  });
  assertEquals(parseChannelSpec("tcp:[::1]:7200", "--channel"), {
    kind: "tcp",
    hostname: "::1",
    port: 7200,
  });
  assertEquals(parseChannelSpec("unix:/run/tml.sock", "--channel"), {
    kind: "unix",
    path: "/run/tml.sock",
  });
  assertEquals(
    formatChannelSpec(parseChannelSpec("file:/dev/vport1p1", "x")),
    "file:/dev/vport1p1",
  );
});

Deno.test("parseChannelSpec() names the source of a bad spec", () => {
  for (const bad of ["tcp:host", "tcp:host:99999", "tcp::7200", "udp:x:1", "unix:", "nonsense"]) {
    const error = assertThrows(() => parseChannelSpec(bad, "TML_PUPPET_CHANNEL"), PuppetError);
    assertEquals(error.field, "channel");
    assertEquals(error.message.endsWith("(TML_PUPPET_CHANNEL)"), true, error.message);
  }
});

Deno.test("locateChannel() takes the flag, then the environment, then the named virtio port", async () => {
  const sysRoot = await Deno.makeTempDir();
  try {
    for (
      const [port, name] of [["vport1p1", "org.qemu.guest_agent.0"], [
        "vport1p2",
        PUPPET_VIRTIO_PORT_NAME,
      ]]
    ) {
      await Deno.mkdir(`${sysRoot}/sys/class/virtio-ports/${port}`, { recursive: true });
      await Deno.writeTextFile(`${sysRoot}/sys/class/virtio-ports/${port}/name`, `${name}\n`);
    }
    assertEquals(await locateChannel({ flag: "tcp:h:1", env: {}, sysRoot }), {
      kind: "tcp",
      hostname: "h",
      port: 1,
    });
    assertEquals(await locateChannel({ env: { TML_PUPPET_CHANNEL: "unix:/s" }, sysRoot }), {
      kind: "unix",
      path: "/s",
    });
    assertEquals(await locateChannel({ env: {}, sysRoot }), {
      kind: "file",
      path: `${sysRoot}/dev/vport1p2`,
    });
    await Deno.remove(`${sysRoot}/sys/class/virtio-ports/vport1p2`, { recursive: true });
    await assertRejects(() => locateChannel({ env: {}, sysRoot }), PuppetError);
  } finally {
    await Deno.remove(sysRoot, { recursive: true });
  }
});

Deno.test("locateSecret() takes the file, then the environment, then fw_cfg", async () => {
  const sysRoot = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${sysRoot}/secret`, "from-file\n");
    assertEquals(await locateSecret({ flag: `${sysRoot}/secret`, env: {}, sysRoot }), "from-file");
    assertEquals(
      await locateSecret({ env: { TML_PUPPET_SECRET: "from-env" }, sysRoot }),
      "from-env",
    );
    await assertRejects(() => locateSecret({ env: {}, sysRoot }), PuppetError);
    const fwCfg = `${sysRoot}/sys/firmware/qemu_fw_cfg/by_name/${PUPPET_FW_CFG_SECRET}`;
    await Deno.mkdir(fwCfg, { recursive: true });
    await Deno.writeTextFile(`${fwCfg}/raw`, "from-fw-cfg");
    assertEquals(await locateSecret({ env: {}, sysRoot }), "from-fw-cfg");
    const missing = await assertRejects(
      () => locateSecret({ flag: `${sysRoot}/nope`, env: {}, sysRoot }),
      PuppetError,
    );
    assertEquals(missing.field, "secret-file");
  } finally {
    await Deno.remove(sysRoot, { recursive: true });
  }
});
