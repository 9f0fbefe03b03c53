/**
 * The `tml image` commands as real processes against a real `tml image-store serve`: images
 * built from qcow2 layers with `tml image create`, pushed and pulled so that a second image
 * sharing the first one's base layer moves only its new layer (counted by the server), a whole
 * store mirrored with `tml image mirror` (incrementally: an up-to-date mirror moves no blob
 * bytes) and with plain `wget -i all.txt`, and both mirrors verified byte for byte.
 */
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { requireProgram } from "../../lib/system_packages.ts";
import { QEMU_IMG } from "../../lib/qemu_programs.ts";
import { blobPath } from "../../lib/store/layout.ts";
import { parseManifest, QEMU_LAYERED, qemuLayerChain } from "../../lib/store/manifest.ts";
import { sha256File } from "../../lib/store/sha256.ts";
import { WGET } from "../support/system_programs.ts";
import { runTml } from "../support/tml_process.ts";
import { listFiles, startImageStore, storeStats, writeRandomFile } from "./store_harness.ts";

const MiB = 1024 * 1024;

Deno.test("tml image create, push, pull, mirror and wget -i all.txt against a real store", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tml-image-cli-" });
  const store = await startImageStore(`${dir}/store`);
  // A config directory of its own, so no login or config file of the machine's user is read.
  const env = { TML_IMAGE_STORE: store.url, XDG_CONFIG_HOME: `${dir}/config` };
  const tml = async (...args: string[]) => {
    const result = await runTml(args, { env });
    assertEquals(result.code, 0, `tml ${args.join(" ")}:\n${result.stderr}`);
    return JSON.parse(result.stdout);
  };
  try {
    const base = `${dir}/base.qcow2`;
    const top = `${dir}/top.qcow2`;
    await t.step("qcow2 layers for two images that share a base", async () => {
      const qemuImg = await requireProgram(QEMU_IMG);
      await writeRandomFile(`${dir}/base.raw`, 12 * MiB);
      await run(qemuImg, "convert", "-f", "raw", "-O", "qcow2", `${dir}/base.raw`, base);
      await run(qemuImg, "resize", "-f", "qcow2", base, "64M");
      await run(qemuImg, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", top);
      // qemu-io comes with qemu-img (Debian's qemu-utils).
      await run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 2M", top);
    });

    const one = { dir: `${dir}/one`, imageId: "", baseDigest: "", baseSize: 0 };
    const two = { dir: `${dir}/two`, imageId: "", topDigest: "", topSize: 0 };
    await t.step("tml image create writes a QEMU image from the layers", async () => {
      const first = await tml("image", "create", one.dir, "--label", "app", "--qcow2", base);
      const second = await tml(
        "image",
        "create",
        two.dir,
        "--label",
        "app",
        "--revision",
        "1",
        "--qcow2",
        base,
        "--qcow2",
        top,
      );
      one.imageId = first.image_id;
      two.imageId = second.image_id;
      one.baseDigest = await sha256File(base);
      one.baseSize = (await Deno.stat(base)).size;
      two.topDigest = await sha256File(top);
      two.topSize = (await Deno.stat(top)).size;
      assertEquals(first.blobs, [{
        label: "base",
        sha256: one.baseDigest,
        size: one.baseSize,
        virtual_size: 64 * MiB,
      }]);
      assertEquals(second.blobs.map((blob: { sha256: string }) => blob.sha256), [
        one.baseDigest,
        two.topDigest,
      ]);
      const manifest = parseManifest(await Deno.readFile(`${two.dir}/manifest.toml`));
      assertEquals([manifest.label, manifest.revision], ["app", 1]);
      assertEquals(manifest.attrs[`${QEMU_LAYERED}.head`], "top");
      assertEquals(
        qemuLayerChain(manifest).map(({ label, lower, virtualSize }) => ({
          label,
          lower,
          virtualSize,
        })),
        [
          { label: "base", lower: undefined, virtualSize: 64 * MiB },
          { label: "top", lower: "base", virtualSize: 64 * MiB },
        ],
      );
      assertEquals(await sha256File(`${two.dir}/${blobPath(two.topDigest)}`), two.topDigest);
    });

    await t.step("tml image push of the first image sends its blob", async () => {
      const before = await storeStats(store.url);
      const pushed = await tml("image", "push", one.dir, "--token-file", store.tokenFile);
      assertEquals(pushed, {
        image_id: one.imageId,
        created: true,
        uploaded_blobs: 1,
        uploaded_bytes: one.baseSize,
        total_blobs: 1,
      });
      const after = await storeStats(store.url);
      assertEquals(after.blob_bytes_received - before.blob_bytes_received, one.baseSize);
    });

    await t.step("pushing the second image sends only its new layer", async () => {
      const before = await storeStats(store.url);
      const pushed = await tml("image", "push", two.dir, "--token-file", store.tokenFile);
      assertEquals(pushed, {
        image_id: two.imageId,
        created: true,
        uploaded_blobs: 1,
        uploaded_bytes: two.topSize,
        total_blobs: 2,
      });
      const after = await storeStats(store.url);
      assertEquals(after.blob_bytes_received - before.blob_bytes_received, two.topSize);
      assertEquals(after.blob_uploads - before.blob_uploads, 1);
      assertEquals(after.images, 2);
    });

    const site = `${dir}/site`;
    await t.step(
      "pulling the second image after the first fetches only the new layer",
      async () => {
        const start = await storeStats(store.url);
        const first = await tml("image", "pull", one.imageId, site);
        assertEquals([first.image_id, first.blobs, first.size], [one.imageId, 1, one.baseSize]);
        const middle = await storeStats(store.url);
        assertEquals(middle.blob_bytes_sent - start.blob_bytes_sent, one.baseSize);
        await tml("image", "pull", two.imageId, site);
        const end = await storeStats(store.url);
        assertEquals(end.blob_bytes_sent - middle.blob_bytes_sent, two.topSize);
        assertEquals(end.blob_downloads - middle.blob_downloads, 1);
        const verified = await tml("image", "verify", site);
        assertEquals([verified.ok, verified.images, verified.blobs], [true, 2, 2]);
      },
    );

    const mirror = `${dir}/mirror`;
    await t.step("tml image mirror copies the store byte for byte, verified", async () => {
      const mirrored = await tml("image", "mirror", store.url, mirror);
      assertEquals(
        [mirrored.blobs, mirrored.images, mirrored.fetched_blobs, mirrored.fetched_images],
        [2, 2, 2, 2],
      );
      assertEquals(mirrored.bytes_transferred > one.baseSize + two.topSize, true);
      assertEquals((await tml("image", "verify", mirror)).ok, true);
      await assertSameStore(store.root, mirror);
      assertEquals(
        await Deno.readTextFile(`${mirror}/all.txt`),
        await (await fetch(`${store.url}/all.txt`)).text(),
      );
    });

    await t.step("an up-to-date mirror transfers no blob bytes", async () => {
      const before = await storeStats(store.url);
      const mirrored = await tml("image", "mirror", store.url, mirror);
      assertEquals(
        [mirrored.fetched_blobs, mirrored.fetched_images, mirrored.verified_blobs],
        [0, 0, 2],
      );
      assertEquals(mirrored.bytes_transferred, 0);
      const after = await storeStats(store.url);
      assertEquals(after.blob_bytes_sent - before.blob_bytes_sent, 0);
      assertEquals(after.blob_downloads - before.blob_downloads, 0);
      await assertSameStore(store.root, mirror);
    });

    const wgetMirror = `${dir}/wget`;
    await t.step("wget -i all.txt makes a mirror that verifies byte for byte", async () => {
      const wget = await requireProgram(WGET);
      await run(
        wget,
        "--quiet",
        "--force-directories",
        "--no-host-directories",
        "--directory-prefix",
        wgetMirror,
        "--base",
        `${store.url}/`,
        "--input-file",
        `${store.url}/all.txt`,
      );
      const verified = await tml("image", "verify", wgetMirror);
      assertEquals([verified.ok, verified.images, verified.blobs], [true, 2, 2]);
      await assertSameStore(store.root, wgetMirror);
    });

    await t.step("tml image verify fails on a damaged mirror, naming the blob", async () => {
      const damaged = `${wgetMirror}/${blobPath(two.topDigest)}`;
      using file = await Deno.open(damaged, { read: true, write: true });
      await file.seek(two.topSize - 1, Deno.SeekMode.Start);
      const last = new Uint8Array(1);
      await file.read(last);
      await file.seek(two.topSize - 1, Deno.SeekMode.Start);
      await file.write(Uint8Array.of(last[0] ^ 0xff));
      const result = await runTml(["image", "verify", wgetMirror], { env });
      assert(result.code !== 0, result.stdout);
      assertEquals(JSON.parse(result.stdout).corrupt_blobs, [two.topDigest]);
      assertStringIncludes(result.stderr, two.topDigest);
    });
  } finally {
    await store.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Both directories hold the same blobs and images, with the same bytes. */
async function assertSameStore(expected: string, actual: string): Promise<void> {
  const entries = async (root: string) =>
    (await listFiles(root)).filter((path) => /^(blobs|images)\//.test(path));
  const paths = await entries(expected);
  assertEquals(await entries(actual), paths);
  for (const path of paths) {
    assertEquals(
      await sha256File(`${actual}/${path}`),
      await sha256File(`${expected}/${path}`),
      path,
    );
  }
}

async function run(program: string, ...args: string[]): Promise<void> {
  const output = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
  assert(output.success, `${program} ${args.join(" ")} failed:\n${text}`);
}
