/**
 * The UEFI guest recipe against real QEMU (software emulation): its manifest is a plain
 * Treadmill `qemu_layered_v0` image, and QEMU started by hand with OVMF boots it through GRUB
 * to the real `tml puppet`, which finds its channel and secret by name and authenticates.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { readFrames } from "../../lib/protocol/framed_json.ts";
import {
  MAX_PUPPET_FRAME_BYTES,
  PUPPET_FW_CFG_SECRET,
  PUPPET_VIRTIO_PORT_NAME,
  PuppetMessage,
} from "../../lib/protocol/puppet.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { QEMU_IMG, QEMU_SYSTEM, requireOvmf } from "../../lib/qemu_programs.ts";
import { blobPath, kernelBootOf, QEMU_LAYERED, qemuLayerChain } from "../../lib/store/mod.ts";
import { requireProgram } from "../../lib/system_packages.ts";
import { uefiGuest } from "../../tests/support/uefi_guest.ts";

const BOOT_TIMEOUT_MS = 90_000;
const guest = await uefiGuest();
const manifest = (await guest.store.readManifest(guest.imageId))!;
const [layer] = qemuLayerChain(manifest);
const layerFile = join(guest.storeDir, blobPath(layer.sha256));

async function output(command: string, args: string[]): Promise<string> {
  const result = await new Deno.Command(command, { args, stdin: "null" }).output();
  const text = new TextDecoder().decode(result.stdout);
  assert(
    result.success,
    `${command} ${args.join(" ")}: ${new TextDecoder().decode(result.stderr)}`,
  );
  return text;
}

Deno.test("buildUefiGuest() makes a qemu_layered_v0 image of one GPT disk layer booted by firmware", async () => {
  assertEquals(manifest.attrs, { [`${QEMU_LAYERED}.head`]: "disk" });
  assertEquals(kernelBootOf(manifest), undefined);
  assertEquals(qemuLayerChain(manifest).length, 1);
  assertEquals(layer.lower, undefined);
  const info = JSON.parse(
    await output(await requireProgram(QEMU_IMG), ["info", "--output=json", layerFile]),
  );
  assertEquals(info.format, "qcow2");
  assertEquals(info["virtual-size"], layer.virtualSize);
  assertEquals(info["backing-filename"], undefined);
});

Deno.test({
  name: "buildUefiGuest() image boots through OVMF and GRUB to the real tml puppet",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "tml-uefi-" });
    const overlay = join(dir, "disk.qcow2");
    const consoleLog = join(dir, "console.log");
    const socket = join(dir, "puppet.sock");
    const secret = crypto.randomUUID();
    const firmware = await requireOvmf();
    await Deno.copyFile(firmware.vars, join(dir, "vars.fd"));
    await output(await requireProgram(QEMU_IMG), [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-b",
      layerFile,
      "-F",
      "qcow2",
      overlay,
    ]);
    const started = performance.now();
    const qemu = new Deno.Command(await requireProgram(QEMU_SYSTEM), {
      args: [
        ...["-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "512"],
        ...["-nic", "none", "-display", "none", "-no-reboot"],
        ...["-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${firmware.code}`],
        ...["-drive", `if=pflash,format=raw,unit=1,file=${join(dir, "vars.fd")}`],
        ...["-drive", `file=${overlay},format=qcow2,if=virtio`],
        ...["-serial", `file:${consoleLog}`],
        ...["-fw_cfg", `name=${PUPPET_FW_CFG_SECRET},string=${secret}`],
        ...["-device", "virtio-serial"],
        ...["-chardev", `socket,id=puppet,path=${socket},server=on,wait=off`],
        ...["-device", `virtserialport,chardev=puppet,name=${PUPPET_VIRTIO_PORT_NAME}`],
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(qemu.stderr).text();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const conn = await connectWhenListening(socket);
      const frames = readFrames(conn.readable, PuppetMessage, { maxBytes: MAX_PUPPET_FRAME_BYTES });
      const first = await Promise.race([
        frames.next(),
        qemu.status.then(async (status) => {
          throw new Error(`QEMU ended (${status.code}) before the puppet spoke: ${await stderr}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no puppet frame in ${BOOT_TIMEOUT_MS} ms`)),
            BOOT_TIMEOUT_MS,
          );
        }),
      ]).catch(async (error) => {
        const tail = (await Deno.readTextFile(consoleLog).catch(() => "")).slice(-2000);
        throw new Error(`${(error as Error).message}; console ends:\n${tail}`);
      });
      const elapsed = performance.now() - started;
      conn.close();
      assertEquals(first.value, {
        type: "auth",
        protocol_version: PROTOCOL_VERSION,
        secret,
      });
      const log = await Deno.readTextFile(consoleLog);
      assertStringIncludes(log, "Welcome to GRUB!");
      assertStringIncludes(log, "tml-guest: starting the puppet");
      console.error(
        `uefi-guest: QEMU start to the puppet's first frame: ${(elapsed / 1000).toFixed(1)} s`,
      );
    } finally {
      clearTimeout(timer);
      qemu.kill("SIGKILL");
      await qemu.status;
      await stderr;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Connects to QEMU's chardev socket, which appears shortly after QEMU starts. */
async function connectWhenListening(path: string): Promise<Deno.UnixConn> {
  for (let tries = 0;; tries++) {
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (error) {
      if (tries >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
