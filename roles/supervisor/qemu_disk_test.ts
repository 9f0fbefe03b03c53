import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "../../lib/testing/asserts.ts";
import { requireProgram } from "../../lib/system_packages.ts";
import { QEMU_IMG } from "../../lib/qemu_programs.ts";
import type { QcowLayer } from "../../lib/store/mod.ts";
import { HostStartError } from "./host_driver.ts";
import { createOverlay, validateLayerChain } from "./qemu_disk.ts";

const MIB = 1024 * 1024;
const qemuImg = await requireProgram(QEMU_IMG);

async function run(args: string[]): Promise<void> {
  const output = await new Deno.Command(qemuImg, { args, stdout: "null", stderr: "piped" })
    .output();
  if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
}

async function virtualSize(path: string): Promise<number> {
  const output = await new Deno.Command(qemuImg, { args: ["info", "--output=json", path] })
    .output();
  return JSON.parse(new TextDecoder().decode(output.stdout))["virtual-size"];
}

/** A base layer and a top layer backed by it (relative path, as in a store), in `dir`. */
async function withChain(
  fn: (dir: string, chain: QcowLayer[], pathOf: (layer: QcowLayer) => string) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "tml-qemu-disk-" });
  try {
    await run(["create", "-q", "-f", "qcow2", `${dir}/base`, String(4 * MIB)]);
    await run(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base", `${dir}/top`]);
    const chain: QcowLayer[] = [
      { label: "base", sha256: "a".repeat(64), size: 0, virtualSize: 4 * MIB },
      { label: "top", sha256: "b".repeat(64), size: 0, virtualSize: 4 * MIB, lower: "base" },
    ];
    await fn(dir, chain, (layer) => `${dir}/${layer.label}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("validateLayerChain() accepts a chain whose layers are what the manifest says", () =>
  withChain(async (_dir, chain, pathOf) => {
    await validateLayerChain(qemuImg, chain, pathOf);
  }));

Deno.test("validateLayerChain() refuses a virtual size other than the manifest's", () =>
  withChain(async (_dir, chain, pathOf) => {
    chain[1].virtualSize = 8 * MIB;
    const error = await assertRejects(
      () => validateLayerChain(qemuImg, chain, pathOf),
      HostStartError,
    );
    assertStringIncludes(error.message, `layer "top"`);
    assertStringIncludes(error.message, `virtual size ${4 * MIB}, the manifest says ${8 * MIB}`);
  }));

Deno.test("validateLayerChain() refuses a layer backed by anything but its lower layer", () =>
  withChain(async (dir, chain, pathOf) => {
    await run(["create", "-q", "-f", "qcow2", `${dir}/other`, String(4 * MIB)]);
    await run(["rebase", "-u", "-F", "qcow2", "-b", "other", `${dir}/top`]);
    const error = await assertRejects(
      () => validateLayerChain(qemuImg, chain, pathOf),
      HostStartError,
    );
    assertStringIncludes(error.message, `its backing file is "other", expected layer "base"`);
  }));

Deno.test("validateLayerChain() refuses a base layer that has a backing file", () =>
  withChain(async (dir, chain, pathOf) => {
    await run(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "top", `${dir}/above`]);
    const above: QcowLayer = { ...chain[0], label: "above" };
    const error = await assertRejects(
      () => validateLayerChain(qemuImg, [above], pathOf),
      HostStartError,
    );
    assertStringIncludes(error.message, `the base layer has backing file "top"`);
  }));

Deno.test("validateLayerChain() refuses raw and encrypted layers", () =>
  withChain(async (dir, chain, pathOf) => {
    await run(["create", "-q", "-f", "raw", `${dir}/base`, String(4 * MIB)]);
    const raw = await assertRejects(
      () => validateLayerChain(qemuImg, [chain[0]], pathOf),
      HostStartError,
    );
    assertStringIncludes(raw.message, `format "raw", expected qcow2`);
    // Legacy AES rather than LUKS: creating LUKS times PBKDF2 on the CPU, which fails on a busy
    // virtual machine ("Unable to get accurate CPU usage"); both are reported as encrypted.
    await run([
      "create",
      "-q",
      "--object",
      "secret,id=sec0,data=passphrase",
      "-f",
      "qcow2",
      "-o",
      "encrypt.format=aes,encrypt.key-secret=sec0",
      `${dir}/base`,
      String(4 * MIB),
    ]);
    const encrypted = await assertRejects(
      () => validateLayerChain(qemuImg, [chain[0]], pathOf),
      HostStartError,
    );
    assertStringIncludes(encrypted.message, "it is encrypted");
  }));

Deno.test("createOverlay() puts a thin overlay on the top layer, grown to the size asked", () =>
  withChain(async (dir) => {
    await createOverlay(qemuImg, `${dir}/top`, `${dir}/job.qcow2`);
    assertEquals(await virtualSize(`${dir}/job.qcow2`), 4 * MIB);
    await createOverlay(qemuImg, `${dir}/top`, `${dir}/bigger.qcow2`, 64 * MIB);
    assertEquals(await virtualSize(`${dir}/bigger.qcow2`), 64 * MIB);
    assertEquals(await virtualSize(`${dir}/top`), 4 * MIB, "the cached layer changed");
    // Thin: the overlay holds no data of its own.
    assert((await Deno.stat(`${dir}/bigger.qcow2`)).size < MIB);
  }));
