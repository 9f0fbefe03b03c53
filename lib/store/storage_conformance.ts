/**
 * The behaviour every StoreBackend must show, as Deno tests a backend's test file registers
 * with `runStoreBackendConformance("directory", makeBackend)`. An S3-compatible backend passes
 * the same suite before the image-store server may use it.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../testing/asserts.ts";
import { StoreError } from "./errors.ts";
import { blobPath, imagePath } from "./layout.ts";
import { sha256Bytes } from "./sha256.ts";
import type { ByteSource, StoreBackend } from "./storage.ts";

export interface BackendUnderTest {
  backend: StoreBackend;
  /** Removes everything the backend stored; called after each test. */
  cleanup(): Promise<void>;
}

function patterned(size: number, seed = 1): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * seed + (i >> 8)) & 0xff);
}

/** Yields `bytes` in `chunk`-sized pieces, pausing between them so writers interleave. */
async function* chunked(bytes: Uint8Array, chunk: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += chunk) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    yield bytes.slice(at, at + chunk);
  }
}

/** Yields the first `cut` bytes, then fails like a dropped connection. */
async function* failingAfter(bytes: Uint8Array, cut: number): AsyncIterable<Uint8Array> {
  yield* chunked(bytes.subarray(0, cut), 1000);
  throw new Error("connection reset");
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function paths(backend: StoreBackend, prefix: "blobs" | "images"): Promise<string[]> {
  return (await Array.fromAsync(backend.list(prefix))).map((entry) => entry.path).sort();
}

export function runStoreBackendConformance(
  name: string,
  makeBackend: () => Promise<BackendUnderTest>,
): void {
  function test(title: string, body: (backend: StoreBackend) => Promise<void>): void {
    Deno.test(`StoreBackend(${name}) ${title}`, async () => {
      const { backend, cleanup } = await makeBackend();
      try {
        await body(backend);
      } finally {
        await cleanup();
      }
    });
  }

  test("putVerified() stores verified bytes that read back and stat", async (backend) => {
    const bytes = patterned(300_000);
    const digest = sha256Bytes(bytes);
    const path = blobPath(digest);
    assertEquals(await backend.stat(path), undefined);
    const result = await backend.putVerified(path, ReadableStream.from(chunked(bytes, 65536)), {
      sha256: digest,
      size: bytes.length,
    });
    assertEquals(result, { created: true, size: bytes.length });
    assertEquals((await backend.stat(path))?.size, bytes.length);
    assertEquals(await readAll(await backend.openRead(path)), bytes);
    const again = await backend.putVerified(path, chunked(bytes, 4096), { sha256: digest });
    assertEquals(again, { created: false, size: bytes.length });
  });

  test("putVerified() publishes nothing before the content is verified", async (backend) => {
    const bytes = patterned(100_000, 17);
    const digest = sha256Bytes(bytes);
    const path = blobPath(digest);
    let release!: () => void;
    const released = new Promise<void>((resolve) => release = resolve);
    let halfway!: () => void;
    const atHalf = new Promise<void>((resolve) => halfway = resolve);
    async function* paused(): AsyncIterable<Uint8Array> {
      yield bytes.slice(0, 50_000);
      halfway();
      await released;
      yield bytes.slice(50_000);
    }
    const put = backend.putVerified(path, paused(), { sha256: digest, size: bytes.length });
    await atHalf;
    // Half written: no reader may see the entry, whole or partial.
    assertEquals(await backend.stat(path), undefined);
    assertEquals(await paths(backend, "blobs"), []);
    const early = await assertRejects(() => backend.openRead(path), StoreError);
    assertEquals(early.code, "not_found");
    release();
    assertEquals(await put, { created: true, size: bytes.length });
    assertEquals(await paths(backend, "blobs"), [path]);
  });

  test("putVerified() keeps an existing entry and stops reading the source", async (backend) => {
    const bytes = patterned(20_000, 19);
    const digest = sha256Bytes(bytes);
    await backend.putBytes(blobPath(digest), bytes, digest);
    let cancelled = false;
    let pulled = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1000));
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
    const result = await backend.putVerified(blobPath(digest), source, { sha256: digest });
    assertEquals(result, { created: false, size: bytes.length });
    assert(cancelled, "the source of an existing entry is cancelled");
    assertEquals(pulled, 0);
    assertEquals(await readAll(await backend.openRead(blobPath(digest))), bytes);
    const wrongSize = await assertRejects(
      () =>
        backend.putVerified(blobPath(digest), chunked(bytes, 1000), {
          sha256: digest,
          size: bytes.length + 1,
        }),
      StoreError,
    );
    assertEquals(wrongSize.code, "size_mismatch");
  });

  test("putVerified() stores many different blobs at once", async (backend) => {
    const blobs = Array.from({ length: 8 }, (_, i) => patterned(30_000 + i * 1111, 23 + i));
    const results = await Promise.all(
      blobs.map((bytes) =>
        backend.putVerified(blobPath(sha256Bytes(bytes)), chunked(bytes, 3000), {
          sha256: sha256Bytes(bytes),
          size: bytes.length,
        })
      ),
    );
    assert(results.every((result) => result.created));
    for (const bytes of blobs) {
      assertEquals(await readAll(await backend.openRead(blobPath(sha256Bytes(bytes)))), bytes);
    }
  });

  test("putBytes() stores a manifest under images/ and refuses wrong bytes", async (backend) => {
    const bytes = new TextEncoder().encode("manifest_version = 0\n");
    const id = sha256Bytes(bytes);
    assertEquals(await backend.putBytes(imagePath(id), bytes, id), { created: true });
    assertEquals(await backend.putBytes(imagePath(id), bytes, id), { created: false });
    assertEquals(await readAll(await backend.openRead(imagePath(id))), bytes);
    const other = sha256Bytes("other");
    await assertRejects(
      () => backend.putBytes(imagePath(other), bytes, other),
      StoreError,
      `content hashes to "${id}"`,
    );
    assertEquals(await backend.stat(imagePath(other)), undefined);
  });

  test("openRead() serves inclusive ranges and refuses bad ones", async (backend) => {
    const bytes = patterned(5000, 7);
    const digest = sha256Bytes(bytes);
    await backend.putBytes(blobPath(digest), bytes, digest);
    const read = async (start: number, end: number) =>
      await readAll(await backend.openRead(blobPath(digest), { start, end }));
    assertEquals(await read(0, 0), bytes.subarray(0, 1));
    assertEquals(await read(1000, 2999), bytes.subarray(1000, 3000));
    assertEquals(await read(4999, 4999), bytes.subarray(4999));
    for (const [start, end] of [[0, 5000], [10, 9], [-1, 3], [5000, 5000]]) {
      const error = await assertRejects(() => read(start, end), StoreError, "outside its 5000");
      assertEquals(error.code, "invalid_range");
    }
    // A multi-megabyte blob: ranges that start and end inside different read blocks.
    const large = patterned(2_621_440 + 3, 3);
    const largeDigest = sha256Bytes(large);
    await backend.putVerified(blobPath(largeDigest), chunked(large, 262_144), {
      sha256: largeDigest,
    });
    for (
      const [start, end] of [[1_048_566, 2_097_162], [0, large.length - 1], [2_621_440, 2_621_442]]
    ) {
      assertEquals(
        await readAll(await backend.openRead(blobPath(largeDigest), { start, end })),
        large.subarray(start, end + 1),
      );
    }
    const missing = await assertRejects(
      () => backend.openRead(blobPath(sha256Bytes("missing"))),
      StoreError,
    );
    assertEquals(missing.code, "not_found");
    assertEquals(missing.status, 404);
  });

  test("putVerified() leaves nothing behind on a digest or size mismatch", async (backend) => {
    const bytes = patterned(70_000, 3);
    const digest = sha256Bytes(bytes);
    const wrong = sha256Bytes("something else");
    const mismatch = await assertRejects(
      () => backend.putVerified(blobPath(wrong), chunked(bytes, 8192), { sha256: wrong }),
      StoreError,
    );
    assertEquals(mismatch.code, "digest_mismatch");
    assertStringIncludes(mismatch.message, digest);
    assertStringIncludes(mismatch.message, wrong);
    for (const size of [bytes.length - 1, bytes.length + 1]) {
      const error = await assertRejects(
        () => backend.putVerified(blobPath(digest), chunked(bytes, 8192), { sha256: digest, size }),
        StoreError,
      );
      assertEquals(error.code, "size_mismatch");
    }
    await assertRejects(
      () => backend.putVerified(blobPath(digest), failingAfter(bytes, 5000), { sha256: digest }),
      Error,
      "connection reset",
    );
    assertEquals(await backend.stat(blobPath(digest)), undefined);
    assertEquals(await backend.stat(blobPath(wrong)), undefined);
    assertEquals(await paths(backend, "blobs"), []);
  });

  test("putVerified() refuses paths that are not store paths", async (backend) => {
    const digest = sha256Bytes("x");
    for (
      const path of ["blobs/../../etc/passwd", `blobs/${digest}`, "tmp/x", `/${blobPath(digest)}`]
    ) {
      const error = await assertRejects(
        () => backend.putVerified(path, chunked(new Uint8Array(1), 1), { sha256: digest }),
        StoreError,
      );
      assertEquals(error.code, "invalid_digest");
    }
    const other = await assertRejects(
      () => backend.putBytes(blobPath(sha256Bytes("y")), new Uint8Array([120]), digest),
      StoreError,
    );
    assertEquals(other.code, "invalid_digest");
  });

  test("putVerified() lets concurrent writers of one blob store it once", async (backend) => {
    const bytes = patterned(200_000, 5);
    const digest = sha256Bytes(bytes);
    const results = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) =>
          backend.putVerified(blobPath(digest), chunked(bytes, 10_000 + i * 1000), {
            sha256: digest,
            size: bytes.length,
          }),
      ),
    );
    assertEquals(results.filter((result) => result.created).length, 1);
    assert(results.every((result) => result.size === bytes.length));
    assertEquals(await readAll(await backend.openRead(blobPath(digest))), bytes);
    assertEquals(await paths(backend, "blobs"), [blobPath(digest)]);
  });

  test("putResumable() continues after the bytes an earlier attempt received", async (backend) => {
    const bytes = patterned(50_000, 11);
    const digest = sha256Bytes(bytes);
    const offsets: number[] = [];
    const open = (cut?: number) => (offset: number): Promise<ByteSource> => {
      offsets.push(offset);
      const rest = bytes.subarray(offset);
      return Promise.resolve(cut === undefined ? chunked(rest, 4096) : failingAfter(rest, cut));
    };
    const expected = { sha256: digest, size: bytes.length };
    await assertRejects(() => backend.putResumable(blobPath(digest), open(12_000), expected));
    await assertRejects(() => backend.putResumable(blobPath(digest), open(8_000), expected));
    assertEquals(await backend.stat(blobPath(digest)), undefined);
    assertEquals(
      await backend.putResumable(blobPath(digest), open(), expected),
      { created: true, size: bytes.length },
    );
    assertEquals(offsets, [0, 12_000, 20_000]);
    assertEquals(await readAll(await backend.openRead(blobPath(digest))), bytes);
    assertEquals(
      await backend.putResumable(blobPath(digest), open(), expected),
      { created: false, size: bytes.length },
    );
    assertEquals(offsets.length, 3);
  });

  test("putResumable() verifies kept bytes that are already complete", async (backend) => {
    const bytes = patterned(40_000, 31);
    const digest = sha256Bytes(bytes);
    async function* allThenFail(): AsyncIterable<Uint8Array> {
      yield* chunked(bytes, 10_000);
      throw new Error("connection reset after the last byte");
    }
    const offsets: number[] = [];
    const open = (offset: number): Promise<ByteSource> => {
      offsets.push(offset);
      return Promise.resolve(offset === 0 ? allThenFail() : chunked(bytes.subarray(offset), 10));
    };
    const path = blobPath(digest);
    for (const size of [bytes.length, undefined]) {
      await assertRejects(() => backend.putResumable(path, open, { sha256: digest, size }));
      assertEquals(
        await backend.putResumable(path, open, { sha256: digest, size }),
        { created: true, size: bytes.length },
      );
      assertEquals(await readAll(await backend.openRead(path)), bytes);
      await backend.delete(path);
    }
    // Known size: the complete partial is committed without asking for more. Unknown size:
    // open() is asked for the (empty) rest.
    assertEquals(offsets, [0, 0, bytes.length]);
  });

  test("putResumable() lets concurrent writers of one blob download it once", async (backend) => {
    const bytes = patterned(80_000, 29);
    const digest = sha256Bytes(bytes);
    let opened = 0;
    const open = (offset: number): Promise<ByteSource> => {
      opened++;
      return Promise.resolve(chunked(bytes.subarray(offset), 8192));
    };
    const expected = { sha256: digest, size: bytes.length };
    const results = await Promise.all(
      Array.from({ length: 3 }, () => backend.putResumable(blobPath(digest), open, expected)),
    );
    assertEquals(results.filter((result) => result.created).length, 1);
    assertEquals(opened, 1);
    assertEquals(await readAll(await backend.openRead(blobPath(digest))), bytes);
  });

  test("putResumable() starts over after delivering wrong bytes", async (backend) => {
    const bytes = patterned(30_000, 13);
    const digest = sha256Bytes(bytes);
    const corrupt = bytes.slice();
    corrupt[20_000] ^= 0xff;
    const offsets: number[] = [];
    const from = (content: Uint8Array) => (offset: number): Promise<ByteSource> => {
      offsets.push(offset);
      return Promise.resolve(chunked(content.subarray(offset), 4096));
    };
    const expected = { sha256: digest, size: bytes.length };
    const error = await assertRejects(
      () => backend.putResumable(blobPath(digest), from(corrupt), expected),
      StoreError,
    );
    assertEquals(error.code, "digest_mismatch");
    assertEquals(await backend.stat(blobPath(digest)), undefined);
    await backend.putResumable(blobPath(digest), from(bytes), expected);
    assertEquals(offsets, [0, 0]);
    assertEquals(await readAll(await backend.openRead(blobPath(digest))), bytes);
  });

  test("list() and delete() see blobs and images apart", async (backend) => {
    const blobs = ["a", "bb", "ccc"].map((text) => new TextEncoder().encode(text));
    for (const bytes of blobs) {
      await backend.putBytes(blobPath(sha256Bytes(bytes)), bytes, sha256Bytes(bytes));
    }
    const manifest = new TextEncoder().encode("image");
    await backend.putBytes(imagePath(sha256Bytes(manifest)), manifest, sha256Bytes(manifest));
    const listed = await Array.fromAsync(backend.list("blobs"));
    assertEquals(
      listed.map(({ path, size }) => ({ path, size })).sort((a, b) => a.size - b.size),
      blobs.map((bytes) => ({ path: blobPath(sha256Bytes(bytes)), size: bytes.length })),
    );
    assert(listed.every((entry) => entry.mtime instanceof Date));
    assertEquals(await paths(backend, "images"), [imagePath(sha256Bytes(manifest))]);
    await backend.delete(blobPath(sha256Bytes(blobs[0])));
    await backend.delete(blobPath(sha256Bytes(blobs[0])));
    assertEquals((await paths(backend, "blobs")).length, 2);
    assertEquals(await backend.stat(blobPath(sha256Bytes(blobs[0]))), undefined);
  });
}
