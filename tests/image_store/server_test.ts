/**
 * `tml image-store serve` as a real process on a real socket: a 256 MiB blob up and down,
 * ranges, resuming a cut-off download, refused uploads that leave nothing behind, concurrent
 * uploads of one blob, bad paths and bodies, publishing, the listing API, `all.txt` across a
 * restart, and tokens kept out of the log.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../lib/testing/asserts.ts";
import { openDirectoryStore } from "../../lib/store/blob_store.ts";
import { ImageFetcher } from "../../lib/store/fetcher.ts";
import { blobPath, imagePath } from "../../lib/store/layout.ts";
import { BASE_EXTENSION, imageIdOf, writeManifest } from "../../lib/store/manifest.ts";
import { sha256Bytes, sha256File } from "../../lib/store/sha256.ts";
import { ImageDetail, ImageList } from "../../lib/protocol/image_store.ts";
import { uploadFile } from "../../roles/client/image/blob_upload.ts";
import { startCuttingProxy } from "./cutting_proxy.ts";
import {
  authHeader,
  hashBody,
  listFiles,
  startImageStore,
  storeStats,
  UPLOAD_TOKEN,
  waitUntil,
  writeRandomFile,
} from "./store_harness.ts";

const MiB = 1024 * 1024;

Deno.test("tml image-store serve: blobs, ranges, uploads, images and all.txt", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tml-image-store-" });
  const root = `${dir}/store`;
  let store = await startImageStore(root);
  try {
    const big = `${dir}/big.bin`;
    const bigDigest = await writeRandomFile(big, 256 * MiB);

    await t.step("a 256 MiB blob uploads, verified, within a minute", async () => {
      const answer = await withDeadline(
        uploadFile({
          url: new URL(`${store.url}/blobs/${bigDigest}`),
          path: big,
          size: 256 * MiB,
          headers: authHeader(),
        }),
        60_000,
        "uploading 256 MiB (a slow upload path regresses to minutes)",
      );
      assertEquals(answer.status, 201, answer.body);
      assertEquals(JSON.parse(answer.body), { sha256: bigDigest, size: 256 * MiB, created: true });
      assertEquals(await sha256File(`${root}/${blobPath(bigDigest)}`), bigDigest);
      // The store answers at once without reading the body: the client must stop sending.
      const again = await withDeadline(
        uploadFile({
          url: new URL(`${store.url}/blobs/${bigDigest}`),
          path: big,
          size: 256 * MiB,
          headers: authHeader(),
        }),
        30_000,
        "uploading a blob the store already has",
      );
      assertEquals([again.status, JSON.parse(again.body).created], [200, false]);
    });

    await t.step("the blob downloads whole, with immutable caching headers", async () => {
      const response = await fetch(`${store.url}/${blobPath(bigDigest)}`);
      assertEquals(response.status, 200);
      assertEquals(response.headers.get("content-length"), String(256 * MiB));
      assertEquals(response.headers.get("etag"), `"${bigDigest}"`);
      assertEquals(response.headers.get("accept-ranges"), "bytes");
      assertEquals(
        response.headers.get("cache-control"),
        "public, max-age=31536000, immutable",
      );
      assertEquals(await hashBody(response), { sha256: bigDigest, size: 256 * MiB });
      const short = await fetch(`${store.url}/blobs/${bigDigest}`, { method: "HEAD" });
      assertEquals(short.status, 200);
      assertEquals(short.headers.get("content-length"), String(256 * MiB));
      const cached = await fetch(`${store.url}/${blobPath(bigDigest)}`, {
        headers: { "if-none-match": `"${bigDigest}"` },
      });
      assertEquals(cached.status, 304);
      await cached.body?.cancel();
    });

    await t.step("single ranges answer 206, ranges past the end 416", async () => {
      using file = await Deno.open(big, { read: true });
      const expected = async (start: number, length: number) => {
        const bytes = new Uint8Array(length);
        await file.seek(start, Deno.SeekMode.Start);
        let filled = 0;
        while (filled < length) filled += (await file.read(bytes.subarray(filled)))!;
        return bytes;
      };
      const url = `${store.url}/${blobPath(bigDigest)}`;
      const cases: [string, number, number][] = [
        ["bytes=0-99", 0, 100],
        ["bytes=1000000-1000009", 1_000_000, 10],
        ["bytes=-16", 256 * MiB - 16, 16],
        [`bytes=${256 * MiB - 5}-`, 256 * MiB - 5, 5],
      ];
      for (const [range, start, length] of cases) {
        const response = await fetch(url, { headers: { range } });
        assertEquals(response.status, 206, range);
        assertEquals(
          response.headers.get("content-range"),
          `bytes ${start}-${start + length - 1}/${256 * MiB}`,
        );
        assertEquals(new Uint8Array(await response.arrayBuffer()), await expected(start, length));
      }
      const past = await fetch(url, { headers: { range: `bytes=${256 * MiB}-` } });
      assertEquals(past.status, 416);
      assertEquals(past.headers.get("content-range"), `bytes */${256 * MiB}`);
      assertEquals((await past.json()).error.code, "invalid_range");
      const stale = await fetch(url, { headers: { range: "bytes=0-9", "if-range": '"other"' } });
      assertEquals(stale.status, 200);
      await stale.body?.cancel();
    });

    await t.step("a download cut off mid-way resumes with a Range request", async () => {
      const { hostname, port } = new URL(store.url);
      const proxy = startCuttingProxy({ hostname, port: Number(port) }, {
        cutConnections: 1,
        cutAfterBytes: 40 * MiB,
      });
      try {
        const local = openDirectoryStore(`${dir}/cache`);
        const fetcher = new ImageFetcher({
          storeUrl: proxy.url,
          store: local,
          retry: { attempts: 3, baseDelayMs: 10 },
        });
        await fetcher.fetchBlob(bigDigest, 256 * MiB);
        assert(await local.verify(bigDigest));
        assertEquals(proxy.requests.length, 2, proxy.requests.join("\n\n"));
        assertMatch(proxy.requests[1], /\r\nrange: bytes=\d+-/i);
        const resumedAt = Number(/range: bytes=(\d+)-/i.exec(proxy.requests[1])![1]);
        assert(resumedAt > 0 && resumedAt <= 40 * MiB, `resumed at ${resumedAt}`);
      } finally {
        proxy.close();
      }
    });

    await t.step("a corrupted upload is refused and leaves nothing behind", async () => {
      const small = `${dir}/small.bin`;
      const digest = await writeRandomFile(small, 3 * MiB);
      const wrong = `${"0".repeat(63)}1`;
      const answer = await uploadFile({
        url: new URL(`${store.url}/blobs/${wrong}`),
        path: small,
        size: 3 * MiB,
        headers: authHeader(),
      });
      assertEquals(answer.status, 422);
      const error = JSON.parse(answer.body).error;
      assertEquals(error.code, "digest_mismatch");
      assertStringIncludes(error.message, digest);
      assertStringIncludes(error.message, wrong);
      assertEquals(await exists(`${root}/${blobPath(wrong)}`), false);
      assertEquals(await exists(`${root}/${blobPath(digest)}`), false);
      assertEquals(await listFiles(`${root}/tmp`), []);
    });

    await t.step("a body shorter than its Content-Length is refused, nothing kept", async () => {
      // The digest is that of the bytes really sent, so only the length check can refuse them.
      const digest = sha256Bytes(new Uint8Array(1000));
      const conn = await Deno.connect({
        hostname: new URL(store.url).hostname,
        port: Number(new URL(store.url).port),
      });
      const head =
        `PUT /blobs/${digest} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${UPLOAD_TOKEN}\r\n` +
        `Content-Length: 4096\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      await conn.write(new Uint8Array(1000));
      await conn.closeWrite();
      const reply = new TextDecoder().decode(await readAll(conn));
      conn.close();
      assertMatch(reply, /^HTTP\/1\.1 400 /);
      assertStringIncludes(reply, "upload_incomplete");
      await waitUntil(async () => (await listFiles(`${root}/tmp`)).length === 0);
      assertEquals(await exists(`${root}/${blobPath(digest)}`), false);
    });

    await t.step("an empty blob stores and downloads", async () => {
      const digest = sha256Bytes(new Uint8Array(0));
      const response = await fetch(`${store.url}/blobs/${digest}`, {
        method: "PUT",
        body: new Uint8Array(0),
        headers: authHeader(),
      });
      assertEquals(await response.json(), { sha256: digest, size: 0, created: true });
      const back = await fetch(`${store.url}/${blobPath(digest)}`);
      assertEquals([back.status, (await back.arrayBuffer()).byteLength], [200, 0]);
    });

    await t.step("concurrent uploads of one blob all succeed, one creates it", async () => {
      const shared = `${dir}/shared.bin`;
      const digest = await writeRandomFile(shared, 24 * MiB);
      const answers = await Promise.all(
        Array.from({ length: 4 }, () =>
          uploadFile({
            url: new URL(`${store.url}/blobs/${digest}`),
            path: shared,
            size: 24 * MiB,
            headers: authHeader(),
          })),
      );
      for (const answer of answers) assert([200, 201].includes(answer.status), answer.body);
      const created = answers.filter((answer) => JSON.parse(answer.body).created).length;
      assertEquals(created, 1);
      assertEquals(await sha256File(`${root}/${blobPath(digest)}`), digest);
      assertEquals(await listFiles(`${root}/tmp`), []);
    });

    await t.step("bad paths, digests, tokens and bodies get 4xx JSON errors", async () => {
      const digest = bigDigest;
      const put = (path: string, body: BodyInit, headers = authHeader()) =>
        fetch(`${store.url}${path}`, { method: "PUT", body, headers });
      const cases: [Promise<Response>, number, string][] = [
        [put(`/blobs/${digest.toUpperCase()}`, "x"), 400, "invalid_digest"],
        [put(`/blobs/${digest.slice(1)}`, "x"), 400, "invalid_digest"],
        [
          put(`/blobs/${digest.slice(0, 2)}%2F${digest.slice(2, 4)}/x/${digest}`, "x"),
          400,
          "invalid_path",
        ],
        [put(`/blobs/aa/bb/cc/${digest}`, "x"), 400, "invalid_path"],
        [put(`/blobs/${digest}/extra`, "x"), 400, "invalid_path"],
        [put(`/blobs/${digest}`, "x", {}), 401, "unauthorized"],
        [put(`/blobs/${digest}`, "x", authHeader("wrong-token")), 401, "unauthorized"],
        [fetch(`${store.url}/blobs/${"e".repeat(64)}`), 404, "not_found"],
        [fetch(`${store.url}/images/${digest}%2e%2e`), 400, "invalid_path"],
        [put(`/images/${"0".repeat(64)}`, new Uint8Array(2 * MiB)), 413, "manifest_too_large"],
        [put(`/images/${sha256Bytes("not toml [")}`, "not toml ["), 400, "invalid_manifest"],
        [put(`/images/${"1".repeat(64)}`, "manifest_version = 0"), 422, "digest_mismatch"],
      ];
      for (const [pending, status, code] of cases) {
        const response = await pending;
        const body = await response.json();
        assertEquals([response.status, body.error?.code], [status, code], JSON.stringify(body));
        assertEquals(typeof body.error.message, "string");
      }
      // `..` sent as is (fetch would normalise it away).
      const raw = await rawRequest(
        store.url,
        `GET /blobs/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      assertMatch(raw, /^HTTP\/1\.1 400/);
      assertStringIncludes(raw, "invalid_path");
      assertEquals(await listFiles(`${root}/tmp`), []);
    });

    const manifest = writeManifest({
      label: "big-disk",
      revision: 7,
      description: "Test *image*",
      attrs: {},
      blobs: { disk: { sha256: bigDigest, size: 256 * MiB, attrs: {} } },
      extensions: [BASE_EXTENSION],
    });
    const imageId = imageIdOf(manifest);

    await t.step("an image naming missing blobs is refused with 409 naming them", async () => {
      const missing = "d".repeat(64);
      const bytes = writeManifest({
        label: "incomplete",
        revision: 0,
        description: "",
        attrs: {},
        blobs: {
          disk: { sha256: bigDigest, size: 256 * MiB, attrs: {} },
          extra: { sha256: missing, size: 10, attrs: {} },
        },
        extensions: [BASE_EXTENSION],
      });
      const response = await fetch(`${store.url}/images/${imageIdOf(bytes)}`, {
        method: "PUT",
        body: new Uint8Array(bytes),
        headers: authHeader(),
      });
      assertEquals(response.status, 409);
      const { error } = await response.json();
      assertEquals([error.code, error.field], ["missing_blobs", "blobs"]);
      assertStringIncludes(error.message, `"extra" (${missing})`);
      assertEquals(await exists(`${root}/${imagePath(imageIdOf(bytes))}`), false);
    });

    await t.step("a complete image publishes and appears in the API and all.txt", async () => {
      const response = await fetch(`${store.url}/images/${imageId}`, {
        method: "PUT",
        body: new Uint8Array(manifest),
        headers: authHeader(),
      });
      assertEquals(response.status, 201);
      assertEquals(await response.json(), { image_id: imageId, created: true });
      const list = ImageList.parse(await (await fetch(`${store.url}/api/v1/images`)).json());
      assertEquals(list.images.map((image) => [image.id, image.label, image.revision]), [
        [imageId, "big-disk", 7],
      ]);
      assertEquals([list.images[0].size, list.images[0].blob_count], [256 * MiB, 1]);
      const detail = ImageDetail.parse(
        await (await fetch(`${store.url}/api/v1/images/${imageId}`)).json(),
      );
      assertEquals(detail.blobs, [{
        label: "disk",
        sha256: bigDigest,
        size: 256 * MiB,
        attrs: {},
      }]);
      const bad = await fetch(`${store.url}/api/v1/images/nope`);
      assertEquals(bad.status, 400);
      await bad.body?.cancel();
      const manifestBack = await fetch(`${store.url}/${imagePath(imageId)}`);
      assertEquals(new Uint8Array(await manifestBack.arrayBuffer()), manifest);
      assertEquals(
        await (await fetch(`${store.url}/all.txt`)).text(),
        `./${blobPath(bigDigest)}\n./${imagePath(imageId)}\n`,
      );
    });

    await t.step("after a restart, all.txt and the listing are the same", async () => {
      const before = await (await fetch(`${store.url}/all.txt`)).text();
      await store.stop("SIGKILL");
      store = await startImageStore(root);
      assertEquals(await (await fetch(`${store.url}/all.txt`)).text(), before);
      assertEquals(await Deno.readTextFile(`${root}/all.txt`), before);
      const list = ImageList.parse(await (await fetch(`${store.url}/api/v1/images`)).json());
      assertEquals(list.images.map((image) => image.id), [imageId]);
      const stats = await storeStats(store.url);
      assertEquals(stats.images, 1);
    });

    await t.step("the upload token never reaches the log", () => {
      assertEquals(store.process.stderr.includes(UPLOAD_TOKEN), false);
      assertEquals(store.process.stdout.includes(UPLOAD_TOKEN), false);
    });
  } finally {
    await store.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  chunks.reduce((at, chunk) => (out.set(chunk, at), at + chunk.length), 0);
  return out;
}

async function rawRequest(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(new TextEncoder().encode(text));
  const reply = new TextDecoder().decode(await readAll(conn));
  conn.close();
  return reply;
}
