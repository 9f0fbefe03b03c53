import { dirname } from "node:path";
import { assertEquals, assertRejects } from "../../lib/testing/asserts.ts";
import { type BlobStore, openDirectoryStore } from "../../lib/store/blob_store.ts";
import { StoreError } from "../../lib/store/errors.ts";
import { blobPath, imagePath } from "../../lib/store/layout.ts";
import { BASE_EXTENSION, type ImageManifest, writeManifest } from "../../lib/store/manifest.ts";
import { sha256Bytes } from "../../lib/store/sha256.ts";
import { collectGarbage, type GcOptions } from "./gc.ts";

const HOUR = 3_600_000;
const TWO_DAYS_AGO = new Date(Date.now() - 48 * HOUR);

interface Fixture {
  root: string;
  store: BlobStore;
  /** Stores a blob, modified `mtime` (now by default); returns its digest. */
  blob(text: string, mtime?: Date): Promise<string>;
  /** Publishes an image naming `digests`; returns its id. */
  image(label: string, digests: string[]): Promise<string>;
  has(digest: string): Promise<boolean>;
  /** Options for collectGarbage with a 1 h grace and a lock that counts its holds. */
  options(overrides?: Partial<GcOptions>): GcOptions & { holds: () => number };
}

async function withStore(body: (fixture: Fixture) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "tml_gc_" });
  const store = openDirectoryStore(root);
  const fixture: Fixture = {
    root,
    store,
    async blob(text, mtime) {
      const bytes = new TextEncoder().encode(text);
      const digest = sha256Bytes(bytes);
      await store.put(digest, ReadableStream.from([bytes]), bytes.length);
      if (mtime !== undefined) await Deno.utime(`${root}/${blobPath(digest)}`, mtime, mtime);
      return digest;
    },
    async image(label, digests) {
      const blobs: ImageManifest["blobs"] = {};
      for (const [i, sha256] of digests.entries()) {
        blobs[`b${i}`] = { sha256, size: (await store.size(sha256))!, attrs: {} };
      }
      return await store.putManifest(
        writeManifest({
          label,
          revision: 0,
          description: "",
          attrs: {},
          blobs,
          extensions: [BASE_EXTENSION],
        }),
      );
    },
    has: (digest) => store.has(digest),
    options(overrides = {}) {
      let holds = 0;
      return {
        backend: store.backend,
        graceMs: HOUR,
        dryRun: false,
        lock: (removal) => {
          holds++;
          return removal();
        },
        holds: () => holds,
        ...overrides,
      };
    },
  };
  try {
    await body(fixture);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("collectGarbage() removes old unreferenced blobs, under the lock, and keeps the rest", async () => {
  await withStore(async (f) => {
    const used = await f.blob("used", TWO_DAYS_AGO);
    const unused = await f.blob("unused", TWO_DAYS_AGO);
    const young = await f.blob("just uploaded");
    await f.image("app", [used]);
    const options = f.options();
    const report = await collectGarbage(options);
    assertEquals(report.removed.map((blob) => blob.sha256), [unused]);
    assertEquals(report.removed_bytes, "unused".length);
    assertEquals(
      [report.images, report.blobs, report.referenced_blobs, report.kept_in_grace],
      [1, 3, 1, 1],
    );
    assertEquals(
      [await f.has(used), await f.has(unused), await f.has(young)],
      [true, false, true],
    );
    assertEquals(options.holds(), 1);
  });
});

Deno.test("collectGarbage() with dryRun reports what would go and removes nothing", async () => {
  await withStore(async (f) => {
    const unused = await f.blob("unused", TWO_DAYS_AGO);
    const options = f.options({ dryRun: true });
    const report = await collectGarbage(options);
    assertEquals([report.dry_run, report.removed.map((blob) => blob.sha256)], [true, [unused]]);
    assertEquals(await f.has(unused), true);
    assertEquals(options.holds(), 0);
  });
});

Deno.test("collectGarbage() removes nothing when a manifest cannot be read", async () => {
  await withStore(async (f) => {
    const unused = await f.blob("unused", TWO_DAYS_AGO);
    const broken = sha256Bytes("broken");
    const path = `${f.root}/${imagePath(broken)}`;
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, "not a manifest [");
    const error = await assertRejects(() => collectGarbage(f.options()), StoreError);
    assertEquals(error.code, "invalid_manifest");
    assertEquals(await f.has(unused), true);
  });
});

Deno.test("collectGarbage() keeps a blob named by an image published before it took the lock", async () => {
  await withStore(async (f) => {
    // An old blob nobody used: a push skips it (the store has it) and publishes an image with it.
    const reused = await f.blob("reused", TWO_DAYS_AGO);
    const unused = await f.blob("unused", TWO_DAYS_AGO);
    const report = await collectGarbage(f.options({
      lock: async (removal) => {
        // The publish got its (shared) lock first: gc waits until its manifest is written.
        await f.image("late", [reused]);
        return await removal();
      },
    }));
    assertEquals(report.removed.map((blob) => blob.sha256), [unused]);
    assertEquals(await f.has(reused), true);
  });
});
