import { assert, assertEquals, assertRejects } from "../testing/asserts.ts";
import { DirectoryBackend, STALE_TMP_MS } from "./directory_backend.ts";
import { StoreError } from "./errors.ts";
import { blobPath } from "./layout.ts";
import { sha256Bytes } from "./sha256.ts";
import type { ByteSource } from "./storage.ts";
import { runStoreBackendConformance } from "./storage_conformance.ts";

runStoreBackendConformance("directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "tml_store_" });
  return {
    backend: new DirectoryBackend(root),
    cleanup: () => Deno.remove(root, { recursive: true }),
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

async function tmpEntries(root: string): Promise<Array<{ name: string; size: number }>> {
  const entries = await Array.fromAsync(Deno.readDir(`${root}/tmp`));
  return await Promise.all(
    entries.map(async ({ name }) => ({
      name,
      size: (await Deno.stat(`${root}/tmp/${name}`)).size,
    })),
  );
}

function patterned(size: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * 13 + (i >> 10)) & 0xff);
}

/**
 * Runs a writer in another process that stores the first `half` bytes of `bytes` through
 * `method`, then stalls; kills it with SIGKILL once it says it is halfway.
 */
async function killWriterHalfway(
  root: string,
  bytes: Uint8Array,
  half: number,
  method: "putVerified" | "putResumable",
): Promise<void> {
  const digest = sha256Bytes(bytes);
  await Deno.writeFile(`${root}/source`, bytes);
  const code = `
    import { DirectoryBackend } from ${
    JSON.stringify(import.meta.resolve("./directory_backend.ts"))
  };
    import { blobPath } from ${JSON.stringify(import.meta.resolve("./layout.ts"))};
    const [root, digest, half, method] = Deno.args;
    const bytes = await Deno.readFile(root + "/source");
    async function* stalling() {
      yield bytes.subarray(0, Number(half));
      console.log("halfway");
      await new Promise(() => setInterval(() => {}, 1000));
    }
    const backend = new DirectoryBackend(root);
    const expected = { sha256: digest, size: bytes.length };
    if (method === "putVerified") {
      await backend.putVerified(blobPath(digest), stalling(), expected);
    } else {
      await backend.putResumable(blobPath(digest), () => Promise.resolve(stalling()), expected);
    }
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      code,
      root,
      digest,
      String(half),
      method,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  while (!said.includes("halfway")) {
    const { done, value } = await reader.read();
    if (done) break;
    said += value;
  }
  child.kill("SIGKILL");
  const status = await child.status;
  await reader.cancel();
  assert(said.includes("halfway"), `the writer stopped before halfway: ${said}`);
  assertEquals(status.signal, "SIGKILL");
  await Deno.remove(`${root}/source`);
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
    assertEquals(await tmpEntries(root), []);
  });
});

Deno.test("DirectoryBackend leaves no temp file after a failed put", async () => {
  await withRoot(async (root) => {
    const backend = new DirectoryBackend(root);
    const wrong = sha256Bytes("wrong");
    const error = await assertRejects(
      () => backend.putBytes(blobPath(wrong), new Uint8Array([1, 2, 3]), wrong),
      StoreError,
    );
    assertEquals(error.code, "digest_mismatch");
    assertEquals(await tmpEntries(root), []);
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
    assertEquals((await tmpEntries(root)).map((entry) => entry.name), ["fresh.part"]);
  });
});

Deno.test("DirectoryBackend leaves no visible blob when its writer is killed mid-write", async () => {
  await withRoot(async (root) => {
    const bytes = patterned(300_000);
    await killWriterHalfway(root, bytes, 120_000, "putVerified");
    const backend = new DirectoryBackend(root);
    assertEquals(await backend.stat(blobPath(sha256Bytes(bytes))), undefined);
    assertEquals(await Array.fromAsync(backend.list("blobs")), []);
    // The dead writer's temp file stays until it is stale, then the next start removes it.
    const left = await tmpEntries(root);
    assertEquals(left.map((entry) => entry.size), [120_000]);
    const old = new Date(Date.now() - STALE_TMP_MS - 60_000);
    await Deno.utime(`${root}/tmp/${left[0].name}`, old, old);
    new DirectoryBackend(root);
    assertEquals(await tmpEntries(root), []);
  });
});

Deno.test("DirectoryBackend.putResumable() continues a killed writer's partial", async () => {
  await withRoot(async (root) => {
    const bytes = patterned(300_000);
    const digest = sha256Bytes(bytes);
    await killWriterHalfway(root, bytes, 170_000, "putResumable");
    const backend = new DirectoryBackend(root);
    assertEquals(await backend.stat(blobPath(digest)), undefined);
    const offsets: number[] = [];
    const open = (offset: number): Promise<ByteSource> => {
      offsets.push(offset);
      return Promise.resolve(ReadableStream.from([bytes.slice(offset)]));
    };
    const result = await backend.putResumable(blobPath(digest), open, {
      sha256: digest,
      size: bytes.length,
    });
    assertEquals(result, { created: true, size: bytes.length });
    assertEquals(offsets, [170_000]);
    assertEquals(await Deno.readFile(`${root}/${blobPath(digest)}`), bytes);
    assertEquals(await tmpEntries(root), []);
  });
});
