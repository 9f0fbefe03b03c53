/**
 * `tml image-store gc` beside a live `tml image-store serve`: old unreferenced blobs go, blobs
 * of published images and young uploads stay, `--dry-run` removes nothing, and an image being
 * published never loses a blob to gc: the publish waits while gc removes, then finds the blob
 * missing (409), and `tml image push` sends it again.
 */
import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { blobPath, imagePath } from "../../lib/store/layout.ts";
import { BASE_EXTENSION, imageIdOf, writeManifest } from "../../lib/store/manifest.ts";
import { sha256Bytes } from "../../lib/store/sha256.ts";
import { GcLock } from "../../roles/image_store/gc_lock.ts";
import { runTml } from "../support/tml_process.ts";
import { authHeader, startImageStore } from "./store_harness.ts";

const TWO_DAYS_AGO = new Date(Date.now() - 48 * 3_600_000);

Deno.test("tml image-store gc beside a live server never takes a blob a publish needs", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tml-image-gc-" });
  const root = `${dir}/store`;
  const store = await startImageStore(root);
  const gc = async (...args: string[]) => {
    const result = await runTml(["image-store", "gc", "--root", root, "--grace", "1h", ...args]);
    assertEquals(result.code, 0, result.stderr);
    return JSON.parse(result.stdout);
  };
  const put = async (path: string, body: Uint8Array) =>
    await fetch(`${store.url}${path}`, {
      method: "PUT",
      body: new Uint8Array(body),
      headers: authHeader(),
    });
  const blob = async (text: string, age?: Date) => {
    const bytes = new TextEncoder().encode(text);
    const digest = sha256Bytes(bytes);
    const response = await put(`/blobs/${digest}`, bytes);
    assertEquals(response.status, 201, await response.text());
    if (age !== undefined) await Deno.utime(`${root}/${blobPath(digest)}`, age, age);
    return { digest, bytes };
  };
  const manifest = (label: string, blobs: { digest: string; bytes: Uint8Array }[]) =>
    writeManifest({
      label,
      revision: 0,
      description: "",
      attrs: {},
      blobs: Object.fromEntries(
        blobs.map((b, i) => [`b${i}`, { sha256: b.digest, size: b.bytes.length, attrs: {} }]),
      ),
      extensions: [BASE_EXTENSION],
    });
  const present = (digest: string) =>
    Deno.stat(`${root}/${blobPath(digest)}`).then(() => true, () => false);
  try {
    const used = await blob("in a published image", TWO_DAYS_AGO);
    const unused = await blob("left over from an abandoned push", TWO_DAYS_AGO);
    const reused = await blob("old, and about to be reused", TWO_DAYS_AGO);
    const young = await blob("uploaded a moment ago");
    const published = manifest("published", [used]);
    assertEquals((await put(`/images/${imageIdOf(published)}`, published)).status, 201);

    await t.step("--dry-run lists the old unreferenced blobs and removes nothing", async () => {
      const report = await gc("--dry-run");
      assertEquals(
        report.removed.map((b: { sha256: string }) => b.sha256).sort(),
        [unused.digest, reused.digest].sort(),
      );
      assertEquals([report.kept_in_grace, report.referenced_blobs], [1, 1]);
      assert(await present(unused.digest) && await present(reused.digest));
    });

    const late = manifest("late", [used, reused]);
    const lateId = imageIdOf(late);
    await t.step("a publish waits while gc removes, then finds its blob gone (409)", async () => {
      const lock = new GcLock(root);
      const { publishing } = await lock.exclusive(async () => {
        // gc holds the lock and is about to remove `reused`; the publish comes in now.
        const publishing = put(`/images/${lateId}`, late);
        const settled = await Promise.race([
          publishing.then(() => true),
          new Promise((resolve) => setTimeout(() => resolve(false), 300)),
        ]);
        assertEquals(settled, false, "the publish did not wait for gc's lock");
        await Deno.remove(`${root}/${blobPath(reused.digest)}`);
        // Wrapped: returning the promise itself would hold the lock until it settles.
        return { publishing };
      });
      const answer = await publishing;
      assertEquals(answer.status, 409);
      assertEquals((await answer.json()).error.code, "missing_blobs");
      assertEquals(await Deno.stat(`${root}/${imagePath(lateId)}`).catch(() => null), null);
    });

    await t.step("gc removes what is left over and keeps what images and uploads use", async () => {
      const report = await gc();
      assertEquals(report.removed.map((b: { sha256: string }) => b.sha256), [unused.digest]);
      assertEquals(
        [await present(used.digest), await present(unused.digest), await present(young.digest)],
        [true, false, true],
      );
      const response = await fetch(`${store.url}/${blobPath(used.digest)}`);
      assertEquals(new Uint8Array(await response.arrayBuffer()), used.bytes);
    });

    await t.step("tml image push sends the blob gc took and publishes the image", async () => {
      const source = `${dir}/late`;
      await Deno.mkdir(source);
      await Deno.writeFile(`${source}/manifest.toml`, late);
      await Deno.writeFile(`${source}/b1`, reused.bytes);
      const result = await runTml(["image", "push", source, "--token-file", store.tokenFile], {
        env: { TML_IMAGE_STORE: store.url, XDG_CONFIG_HOME: `${dir}/config` },
      });
      assertEquals(result.code, 0, result.stderr);
      const pushed = JSON.parse(result.stdout);
      assertEquals([pushed.image_id, pushed.uploaded_blobs], [lateId, 1]);
      assert(await present(reused.digest));
      assertEquals((await gc()).removed, []);
    });
  } finally {
    await store.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
