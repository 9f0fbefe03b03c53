/**
 * `kill -9` of `tml image-store serve` in the middle of an upload: nothing appears under
 * `blobs/` (the bytes received sit in a temporary file outside it), and the restarted server
 * takes the same upload whole.
 */
import { assertEquals } from "../../lib/testing/asserts.ts";
import { blobPath } from "../../lib/store/layout.ts";
import { sha256File } from "../../lib/store/sha256.ts";
import { uploadFile } from "../../roles/client/image/blob_upload.ts";
import {
  authHeader,
  hashBody,
  listFiles,
  startImageStore,
  UPLOAD_TOKEN,
  waitUntil,
  writeAll,
  writeRandomFile,
} from "./store_harness.ts";

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;

Deno.test("tml image-store serve killed with SIGKILL mid-upload leaves no visible blob", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tml-image-crash-" });
  const root = `${dir}/store`;
  let store = await startImageStore(root);
  try {
    const path = `${dir}/blob.bin`;
    const digest = await writeRandomFile(path, SIZE);

    // Everything but the last byte, sent by hand so the upload stays open.
    const { hostname, port } = new URL(store.url);
    const conn = await Deno.connect({ hostname, port: Number(port) });
    await writeAll(
      conn,
      new TextEncoder().encode(
        `PUT /blobs/${digest} HTTP/1.1\r\nHost: ${hostname}\r\n` +
          `Authorization: Bearer ${UPLOAD_TOKEN}\r\nContent-Length: ${SIZE}\r\n\r\n`,
      ),
    );
    const bytes = await Deno.readFile(path);
    await writeAll(conn, bytes.subarray(0, SIZE - 1));
    // The server writes whole 1 MiB blocks: all but the last one reach its temporary file.
    await waitUntil(async () => (await tmpSizes(root)).includes(SIZE - MiB));

    await store.stop("SIGKILL");
    conn.close();
    assertEquals(await listFiles(`${root}/blobs`).catch(() => []), []);

    store = await startImageStore(root);
    const missing = await fetch(`${store.url}/${blobPath(digest)}`, { method: "HEAD" });
    assertEquals(missing.status, 404);
    const answer = await uploadFile({
      url: new URL(`${store.url}/blobs/${digest}`),
      path,
      size: SIZE,
      headers: authHeader(),
    });
    assertEquals([answer.status, JSON.parse(answer.body).created], [201, true], answer.body);
    assertEquals(await sha256File(`${root}/${blobPath(digest)}`), digest);
    assertEquals(await hashBody(await fetch(`${store.url}/${blobPath(digest)}`)), {
      sha256: digest,
      size: SIZE,
    });
    assertEquals(await listFiles(`${root}/blobs`), [blobPath(digest).slice("blobs/".length)]);
  } finally {
    await store.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Sizes of the upload files in the store's `tmp/`. */
async function tmpSizes(root: string): Promise<number[]> {
  const sizes: number[] = [];
  for (const name of await listFiles(`${root}/tmp`)) {
    sizes.push((await Deno.stat(`${root}/tmp/${name}`)).size);
  }
  return sizes;
}
