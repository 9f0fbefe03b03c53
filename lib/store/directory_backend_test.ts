import { assertEquals } from "../testing/asserts.ts";
import { DirectoryBackend, STALE_TMP_MS } from "./directory_backend.ts";
import { StoreError } from "./errors.ts";
import { blobPath } from "./layout.ts";
import { sha256Bytes } from "./sha256.ts";
import { runStoreBackendConformance } from "./storage_conformance.ts";

runStoreBackendConformance("directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "tml_store_" });
  return {
    backend: new DirectoryBackend(root),
    close: () => Deno.remove(root, { recursive: true }),
  };
});

async function withRoot(body: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "tml_store_" });
  try {
    await body(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("DirectoryBackend stores blobs at their fan-out path", async () => {
  await withRoot(async (root) => {
    const bytes = new TextEncoder().encode("hello");
    const digest = sha256Bytes(bytes);
    await new DirectoryBackend(root).putBytes(blobPath(digest), bytes, digest);
    const file = `${root}/blobs/${digest.slice(0, 2)}/${digest.slice(2, 4)}/${
      digest.slice(4, 6)
    }/${digest}`;
    assertEquals(await Deno.readFile(file), bytes);
    assertEquals(await Array.fromAsync(Deno.readDir(`${root}/tmp`)), []);
  });
});

Deno.test("DirectoryBackend leaves no temp file after a failed put", async () => {
  await withRoot(async (root) => {
    const backend = new DirectoryBackend(root);
    const wrong = sha256Bytes("wrong");
    await backend.putBytes(blobPath(wrong), new Uint8Array([1, 2, 3]), wrong).catch((error) => {
      if (!(error instanceof StoreError)) throw error;
    });
    assertEquals(await Array.fromAsync(Deno.readDir(`${root}/tmp`)), []);
  });
});

Deno.test("DirectoryBackend removes temp files older than an hour on construction", async () => {
  await withRoot(async (root) => {
    await Deno.mkdir(`${root}/tmp`);
    await Deno.writeTextFile(`${root}/tmp/old.part`, "crashed writer");
    await Deno.writeTextFile(`${root}/tmp/fresh.part`, "live writer");
    const old = new Date(Date.now() - STALE_TMP_MS - 60_000);
    await Deno.utime(`${root}/tmp/old.part`, old, old);
    new DirectoryBackend(root);
    const left = (await Array.fromAsync(Deno.readDir(`${root}/tmp`))).map((entry) => entry.name);
    assertEquals(left, ["fresh.part"]);
  });
});
