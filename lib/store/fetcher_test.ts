import { assert, assertEquals, assertRejects, assertStringIncludes } from "../testing/asserts.ts";
import { type BlobStore, openDirectoryStore } from "./blob_store.ts";
import { DirectoryBackend } from "./directory_backend.ts";
import { StoreError } from "./errors.ts";
import { type FetchProgress, ImageFetcher } from "./fetcher.ts";
import { contentRangeHeader, parseRangeHeader } from "./http_range.ts";
import { blobPath, imagePath, parseStorePath } from "./layout.ts";
import { type ImageManifest, writeManifest } from "./manifest.ts";
import { sha256Bytes } from "./sha256.ts";
import type { ByteRange } from "./storage.ts";

/** How the test server misbehaves for one store path. */
interface Fault {
  /** Answer this many GETs with 503 first. */
  unavailable?: number;
  /** Cut the body of the next GET after this many bytes. */
  cutAfter?: number;
  /** Flip one byte of every answer. */
  corrupt?: boolean;
  /** Answer Range requests with the whole file (200), as some servers do. */
  ignoreRange?: boolean;
  /** Send the body in 16 KiB pieces this many milliseconds apart. */
  trickleMs?: number;
}

interface TestStore {
  url: string;
  upstream: BlobStore;
  local: BlobStore;
  localRoot: string;
  /** Every GET: path and Range header. */
  gets: Array<{ path: string; range: string | null }>;
  faults: Map<string, Fault>;
}

/** A real HTTP store over a temp directory, with Range support and injectable faults. */
async function withTestStore(body: (store: TestStore) => Promise<void>): Promise<void> {
  const upstreamRoot = await Deno.makeTempDir({ prefix: "tml_upstream_" });
  const localRoot = await Deno.makeTempDir({ prefix: "tml_local_" });
  const backend = new DirectoryBackend(upstreamRoot);
  const gets: TestStore["gets"] = [];
  const faults = new Map<string, Fault>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = new URL(request.url).pathname.slice(1);
    const range = request.headers.get("range");
    gets.push({ path, range });
    const fault = faults.get(path) ?? {};
    if (fault.unavailable) {
      fault.unavailable--;
      return new Response("busy", { status: 503 });
    }
    if (parseStorePath(path) === undefined) return new Response("no", { status: 404 });
    const info = await backend.stat(path);
    if (info === undefined) return new Response("not here", { status: 404 });
    let wanted: ByteRange | undefined;
    try {
      wanted = fault.ignoreRange ? undefined : parseRangeHeader(range, info.size);
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      return new Response(null, {
        status: 416,
        headers: { "content-range": `bytes */${info.size}` },
      });
    }
    let bytes = new Uint8Array(
      await new Response(await backend.openRead(path, wanted)).arrayBuffer(),
    );
    if (fault.corrupt) {
      bytes = bytes.slice();
      bytes[bytes.length >> 1] ^= 0x55;
    }
    const headers = new Headers({ "content-length": String(bytes.length) });
    if (wanted !== undefined) headers.set("content-range", contentRangeHeader(wanted, info.size));
    const status = wanted === undefined ? 200 : 206;
    const cut = fault.cutAfter;
    if (fault.trickleMs !== undefined) {
      return new Response(ReadableStream.from(trickle(bytes, fault.trickleMs)), {
        status,
        headers,
      });
    }
    if (cut === undefined) return new Response(bytes, { status, headers });
    delete fault.cutAfter;
    // Content-Length promises the whole body but the stream ends early, like a dropped link.
    return new Response(ReadableStream.from([bytes.subarray(0, cut)]), { status, headers });
  });
  try {
    await body({
      url: `http://127.0.0.1:${server.addr.port}/`,
      upstream: openDirectoryStore(upstreamRoot),
      local: openDirectoryStore(localRoot),
      localRoot,
      gets,
      faults,
    });
  } finally {
    await server.shutdown();
    await Deno.remove(upstreamRoot, { recursive: true });
    await Deno.remove(localRoot, { recursive: true });
  }
}

async function* trickle(bytes: Uint8Array, ms: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += 16_384) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    yield bytes.slice(at, at + 16_384);
  }
}

function patterned(size: number, seed: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * seed + (i >> 9) + seed) & 0xff);
}

/** Stores `blobs` upstream and a QEMU manifest chaining them; returns the image id. */
async function publish(store: TestStore, blobs: Uint8Array[], label = "test image") {
  const manifest: ImageManifest = {
    label,
    revision: 0,
    description: "",
    attrs: { "org.tockos.treadmill.image.qemu_layered_v0.head": `layer-${blobs.length - 1}` },
    blobs: {},
    extensions: ["org.tockos.treadmill.manifest-ext.base"],
  };
  for (const [i, bytes] of blobs.entries()) {
    await store.upstream.put(sha256Bytes(bytes), ReadableStream.from([bytes]));
    manifest.blobs[`layer-${i}`] = {
      sha256: sha256Bytes(bytes),
      size: bytes.length,
      attrs: {
        "org.tockos.treadmill.image.qemu_layered_v0.blob-virtual-size": "1048576",
        ...(i === 0
          ? {}
          : { "org.tockos.treadmill.image.qemu_layered_v0.lower": `layer-${i - 1}` }),
      },
    };
  }
  return await store.upstream.putManifest(writeManifest(manifest));
}

function fetcher(store: TestStore, concurrency = 4): ImageFetcher {
  return new ImageFetcher({
    storeUrl: store.url,
    store: store.local,
    concurrency,
    retry: { attempts: 3, baseDelayMs: 1 },
  });
}

function getsOf(store: TestStore, bytes: Uint8Array) {
  return store.gets.filter((get) => get.path === blobPath(sha256Bytes(bytes)));
}

async function localBytes(store: TestStore, bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(await store.local.open(sha256Bytes(bytes))).arrayBuffer(),
  );
}

Deno.test("ImageFetcher.fetchImage() downloads, verifies and stores an image", async () => {
  await withTestStore(async (store) => {
    const blobs = [patterned(150_000, 3), patterned(90_000, 5), patterned(10, 7)];
    const id = await publish(store, blobs);
    const progress: FetchProgress[] = [];
    const manifest = await fetcher(store).fetchImage(id, (p) => progress.push({ ...p }));
    assertEquals(manifest.label, "test image");
    for (const bytes of blobs) assertEquals(await localBytes(store, bytes), bytes);
    assertEquals(
      await store.local.readManifestBytes(id),
      await store.upstream.readManifestBytes(id),
    );
    assertEquals(progress.at(-1), {
      bytesDone: 240_010,
      bytesTotal: 240_010,
      blobsDone: 3,
      blobsTotal: 3,
    });
    assertEquals(progress[0].bytesDone, 0);
    assert(progress.every((p, i) => i === 0 || p.bytesDone >= progress[i - 1].bytesDone));
    assertEquals(store.gets.length, 4);
  });
});

Deno.test("ImageFetcher.fetchImage() makes no request for an image already present", async () => {
  await withTestStore(async (store) => {
    const id = await publish(store, [patterned(1000, 3)]);
    await fetcher(store).fetchImage(id);
    const before = store.gets.length;
    const progress: FetchProgress[] = [];
    await fetcher(store).fetchImage(id, (p) => progress.push({ ...p }));
    assertEquals(store.gets.length, before);
    assertEquals(progress.at(-1)?.blobsDone, 1);
  });
});

Deno.test("ImageFetcher.fetchImage() never downloads a blob the store holds", async () => {
  await withTestStore(async (store) => {
    const shared = patterned(40_000, 3);
    const fresh = patterned(20_000, 9);
    const id = await publish(store, [shared, fresh]);
    await store.local.put(sha256Bytes(shared), ReadableStream.from([shared]));
    await fetcher(store).fetchImage(id);
    assertEquals(getsOf(store, shared).length, 0);
    assertEquals(getsOf(store, fresh).length, 1);
  });
});

Deno.test("ImageFetcher.fetchBlob() resumes with a Range request after the body is cut", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(300_000, 11);
    await store.upstream.put(sha256Bytes(bytes), ReadableStream.from([bytes]));
    store.faults.set(blobPath(sha256Bytes(bytes)), { cutAfter: 120_000 });
    await fetcher(store).fetchBlob(sha256Bytes(bytes), bytes.length);
    const gets = getsOf(store, bytes);
    assertEquals(gets.length, 2);
    assertEquals(gets[0].range, null);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? "")?.[1]);
    assert(resumedAt > 0 && resumedAt <= 120_000, `resumed at ${gets[1].range}`);
    assertEquals(await localBytes(store, bytes), bytes);
  });
});

Deno.test("ImageFetcher.fetchBlob() resumes from a server that ignores Range", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(200_000, 13);
    await store.upstream.put(sha256Bytes(bytes), ReadableStream.from([bytes]));
    store.faults.set(blobPath(sha256Bytes(bytes)), { cutAfter: 70_000, ignoreRange: true });
    await fetcher(store).fetchBlob(sha256Bytes(bytes));
    assertEquals(getsOf(store, bytes).length, 2);
    assertEquals(await localBytes(store, bytes), bytes);
  });
});

Deno.test("ImageFetcher.fetchImage() refuses corrupted bytes and stores nothing", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(50_000, 17);
    const id = await publish(store, [bytes]);
    store.faults.set(blobPath(sha256Bytes(bytes)), { corrupt: true });
    const error = await assertRejects(() => fetcher(store).fetchImage(id), StoreError);
    assertEquals(error.code, "digest_mismatch");
    assertStringIncludes(error.message, sha256Bytes(bytes));
    assertEquals(getsOf(store, bytes).length, 1);
    assertEquals(await Array.fromAsync(store.local.listBlobs()), []);
    assertEquals(await Array.fromAsync(store.local.listImages()), []);
    const leftovers = await Array.fromAsync(Deno.readDir(`${store.localRoot}/tmp`));
    assertEquals(leftovers, []);
  });
});

Deno.test("ImageFetcher.fetchImage() refuses a manifest whose bytes do not match its id", async () => {
  await withTestStore(async (store) => {
    const id = await publish(store, [patterned(100, 19)]);
    store.faults.set(`images/${id.slice(0, 2)}/${id.slice(2, 4)}/${id.slice(4, 6)}/${id}`, {
      corrupt: true,
    });
    const error = await assertRejects(() => fetcher(store).fetchImage(id), StoreError);
    assertEquals(error.code, "digest_mismatch");
    assertEquals(await store.local.hasImage(id), false);
  });
});

Deno.test("ImageFetcher.fetchImage() retries a manifest cut off on the wire", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(100, 37);
    const id = await publish(store, [bytes]);
    store.faults.set(imagePath(id), { cutAfter: 50 });
    const manifest = await fetcher(store).fetchImage(id);
    assertEquals(manifest.label, "test image");
    assertEquals(store.gets.filter((get) => get.path === imagePath(id)).length, 2);
    assertEquals(await store.local.hasImage(id), true);
  });
});

Deno.test("ImageFetcher.fetchImage() shares one download between concurrent calls", async () => {
  await withTestStore(async (store) => {
    const shared = patterned(400_000, 23);
    const first = await publish(store, [shared, patterned(5000, 29)], "first");
    const second = await publish(store, [shared, patterned(6000, 31)], "second");
    const one = fetcher(store);
    const images = await Promise.all([
      one.fetchImage(first),
      one.fetchImage(second),
      one.fetchImage(first),
    ]);
    assertEquals(images.map((m) => m.label), ["first", "second", "first"]);
    assertEquals(getsOf(store, shared).length, 1);
    assertEquals(await localBytes(store, shared), shared);
  });
});

Deno.test("ImageFetcher.fetchBlob() retries 503 answers with backoff", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(1000, 43);
    await store.upstream.put(sha256Bytes(bytes), ReadableStream.from([bytes]));
    store.faults.set(blobPath(sha256Bytes(bytes)), { unavailable: 2 });
    await fetcher(store).fetchBlob(sha256Bytes(bytes), bytes.length);
    assertEquals(getsOf(store, bytes).length, 3);
    assertEquals(await localBytes(store, bytes), bytes);
  });
});

Deno.test("ImageFetcher.fetchBlob() gives up with fetch_failed after its attempts", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(1000, 47);
    await store.upstream.put(sha256Bytes(bytes), ReadableStream.from([bytes]));
    store.faults.set(blobPath(sha256Bytes(bytes)), { unavailable: 10 });
    const error = await assertRejects(
      () => fetcher(store).fetchBlob(sha256Bytes(bytes)),
      StoreError,
      "503",
    );
    assertEquals(error.code, "fetch_failed");
    assertStringIncludes(error.message, "gave up after 3 attempts");
    assertEquals(getsOf(store, bytes).length, 3);
    assertEquals(await store.local.has(sha256Bytes(bytes)), false);
  });
});

Deno.test("ImageFetcher.fetchBlob() does not retry a missing blob", async () => {
  await withTestStore(async (store) => {
    const missing = patterned(10, 53);
    const error = await assertRejects(
      () => fetcher(store).fetchBlob(sha256Bytes(missing)),
      StoreError,
    );
    assertEquals(error.code, "not_found");
    assertEquals(getsOf(store, missing).length, 1);
  });
});

Deno.test("ImageFetcher.fetchImage() keeps at most `concurrency` downloads running", async () => {
  await withTestStore(async (store) => {
    const blobs = Array.from({ length: 6 }, (_, i) => patterned(20_000, 61 + i * 2));
    const id = await publish(store, blobs);
    let running = 0;
    let peak = 0;
    const counting: typeof fetch = async (input, init) => {
      running++;
      peak = Math.max(peak, running);
      try {
        const response = await fetch(input, init);
        const body = new Uint8Array(await response.arrayBuffer());
        return new Response(body, { status: response.status, headers: response.headers });
      } finally {
        running--;
      }
    };
    const limited = new ImageFetcher({
      storeUrl: store.url,
      store: store.local,
      concurrency: 2,
      fetch: counting,
    });
    await limited.fetchImage(id);
    assertEquals(peak, 2);
    for (const bytes of blobs) assertEquals(await localBytes(store, bytes), bytes);
  });
});

Deno.test("ImageFetcher.fetchBlob() backs off exponentially through the injected sleep", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(1000, 67);
    await store.upstream.put(sha256Bytes(bytes), ReadableStream.from([bytes]));
    store.faults.set(blobPath(sha256Bytes(bytes)), { unavailable: 3 });
    const delays: number[] = [];
    const patient = new ImageFetcher({
      storeUrl: store.url,
      store: store.local,
      retry: { attempts: 4, baseDelayMs: 100 },
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
    });
    await patient.fetchBlob(sha256Bytes(bytes), bytes.length);
    assertEquals(delays, [100, 200, 400]);
    assertEquals(await localBytes(store, bytes), bytes);
  });
});

Deno.test("ImageFetcher.fetchImage() from two fetchers on one store downloads a shared blob once", async () => {
  await withTestStore(async (store) => {
    const shared = patterned(300_000, 71);
    const first = await publish(store, [shared, patterned(3000, 73)], "first");
    const second = await publish(store, [shared, patterned(4000, 79)], "second");
    store.faults.set(blobPath(sha256Bytes(shared)), { trickleMs: 2 });
    // Two supervisors' fetchers over one site cache: the partial file's lock is what they share.
    const other = new ImageFetcher({
      storeUrl: store.url,
      store: openDirectoryStore(store.localRoot),
      retry: { attempts: 3, baseDelayMs: 1 },
    });
    await Promise.all([fetcher(store).fetchImage(first), other.fetchImage(second)]);
    assertEquals(getsOf(store, shared).length, 1);
    assertEquals(await localBytes(store, shared), shared);
    assertEquals(await Array.fromAsync(Deno.readDir(`${store.localRoot}/tmp`)), []);
  });
});

Deno.test("ImageFetcher.fetchBlob() resumes the partial a failed fetcher left behind", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(250_000, 83);
    const digest = sha256Bytes(bytes);
    await store.upstream.put(digest, ReadableStream.from([bytes]));
    store.faults.set(blobPath(digest), { cutAfter: 100_000 });
    // The link dies for good after the first, cut-off answer.
    let calls = 0;
    const failing: typeof fetch = (input, init) =>
      calls++ === 0 ? fetch(input, init) : Promise.reject(new TypeError("network is down"));
    const broken = new ImageFetcher({
      storeUrl: store.url,
      store: store.local,
      retry: { attempts: 2, baseDelayMs: 1 },
      fetch: failing,
    });
    const error = await assertRejects(() => broken.fetchBlob(digest, bytes.length), StoreError);
    assertEquals(error.code, "fetch_failed");
    assertStringIncludes(error.message, "network is down");
    assertEquals(await store.local.has(digest), false);
    await fetcher(store).fetchBlob(digest, bytes.length);
    const gets = getsOf(store, bytes);
    assertEquals(gets.length, 2);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? "")?.[1]);
    assert(resumedAt > 0 && resumedAt <= 100_000, `resumed with ${gets[1].range}`);
    assertEquals(await localBytes(store, bytes), bytes);
  });
});

Deno.test("ImageFetcher.fetchBlob() commits a partial that already holds every byte", async () => {
  await withTestStore(async (store) => {
    const bytes = patterned(60_000, 89);
    const digest = sha256Bytes(bytes);
    await store.upstream.put(digest, ReadableStream.from([bytes]));
    // The first link delivers every byte, then fails instead of ending, then stays down.
    let calls = 0;
    const failing: typeof fetch = async (input, init) => {
      if (calls++ > 0) throw new TypeError("network is down");
      const response = await fetch(input, init);
      const reader = response.body!.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await reader.read();
          if (done) controller.error(new TypeError("connection reset"));
          else controller.enqueue(value);
        },
      });
      return new Response(body, { status: response.status, headers: response.headers });
    };
    const broken = new ImageFetcher({
      storeUrl: store.url,
      store: store.local,
      retry: { attempts: 1, baseDelayMs: 1 },
      fetch: failing,
    });
    await assertRejects(() => broken.fetchBlob(digest), StoreError, "network is down");
    // Without the size the fetcher asks for the rest and hears 416: nothing is left to send.
    await fetcher(store).fetchBlob(digest);
    assertEquals(getsOf(store, bytes).map((get) => get.range), [null, "bytes=60000-"]);
    assertEquals(await localBytes(store, bytes), bytes);
  });
});
