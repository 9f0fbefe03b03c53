import { assert, assertEquals, assertRejects } from "../testing/asserts.ts";
import { type BlobStore, openDirectoryStore } from "./blob_store.ts";
import { StoreError } from "./errors.ts";
import { blobPath } from "./layout.ts";
import { imageIdOf, parseManifest } from "./manifest.ts";
import { sha256Bytes } from "./sha256.ts";

const NETBOOT = new URL("../../tests/fixtures/manifests/netboot.toml", import.meta.url);

async function withStore(body: (store: BlobStore, root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "tml_blob_store_" });
  try {
    await body(openDirectoryStore(root), root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

Deno.test("BlobStore.put() stores a blob that has(), size() and open() then see", async () => {
  await withStore(async (store) => {
    const bytes = new TextEncoder().encode("blob content");
    const digest = sha256Bytes(bytes);
    assertEquals(await store.has(digest), false);
    assertEquals(await store.size(digest), undefined);
    assertEquals(await store.put(digest, ReadableStream.from([bytes]), bytes.length), {
      created: true,
      size: bytes.length,
    });
    assertEquals(await store.has(digest), true);
    assertEquals(await store.size(digest), bytes.length);
    assertEquals(await text(await store.open(digest)), "blob content");
    assertEquals(await text(await store.open(digest, { start: 5, end: 11 })), "content");
  });
});

Deno.test("BlobStore.put() refuses content that does not hash to the digest", async () => {
  await withStore(async (store) => {
    const digest = sha256Bytes("expected");
    const error = await assertRejects(
      () => store.put(digest, ReadableStream.from([new TextEncoder().encode("actual")])),
      StoreError,
    );
    assertEquals(error.code, "digest_mismatch");
    assertEquals(await store.has(digest), false);
  });
});

Deno.test("BlobStore.verify() detects a blob corrupted on disk", async () => {
  await withStore(async (store, root) => {
    const bytes = new TextEncoder().encode("pristine");
    const digest = sha256Bytes(bytes);
    await store.put(digest, ReadableStream.from([bytes]));
    assertEquals(await store.verify(digest), true);
    await Deno.writeTextFile(`${root}/${blobPath(digest)}`, "tampered");
    assertEquals(await store.verify(digest), false);
    assertEquals(await store.verify(sha256Bytes("absent")), false);
    await store.delete(digest);
    assertEquals(await store.has(digest), false);
  });
});

Deno.test("BlobStore.putManifest() stores a valid manifest under its image id", async () => {
  await withStore(async (store) => {
    const bytes = await Deno.readFile(NETBOOT);
    const id = await store.putManifest(bytes);
    assertEquals(id, imageIdOf(bytes));
    assertEquals(await store.hasImage(id), true);
    assertEquals(await store.readManifestBytes(id), bytes);
    assertEquals(await store.readManifest(id), parseManifest(bytes));
    assertEquals(await store.readManifestBytes(sha256Bytes("absent")), undefined);
    assertEquals(await Array.fromAsync(store.listImages()), [id]);
  });
});

Deno.test("BlobStore.putManifest() refuses an invalid manifest and stores nothing", async () => {
  await withStore(async (store) => {
    const error = await assertRejects(
      () => store.putManifest(new TextEncoder().encode("manifest_version = 1\n")),
      StoreError,
    );
    assertEquals(error.code, "invalid_manifest");
    assertEquals(await Array.fromAsync(store.listImages()), []);
  });
});

Deno.test("BlobStore.listBlobs() lists digests with sizes", async () => {
  await withStore(async (store) => {
    for (const content of ["one", "three"]) {
      await store.put(
        sha256Bytes(content),
        ReadableStream.from([new TextEncoder().encode(content)]),
      );
    }
    const listed = await Array.fromAsync(store.listBlobs());
    assertEquals(
      listed.map(({ digest, size }) => ({ digest, size })).sort((a, b) => a.size - b.size),
      [{ digest: sha256Bytes("one"), size: 3 }, { digest: sha256Bytes("three"), size: 5 }],
    );
    assert(listed.every((blob) => blob.mtime instanceof Date));
  });
});
