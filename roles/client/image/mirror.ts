/**
 * `tml image mirror <store url> <dir>`: makes `dir` a verified copy of a store, driven by the
 * store's `all.txt`, and refreshes it incrementally. Blobs come first and images last, so an
 * image in the mirror always has its blobs. Everything is verified: fetched bytes by the
 * fetcher, blobs already in the mirror by re-hashing them (a damaged one is fetched again;
 * `--trust-existing` skips this), manifests against their ids. An up-to-date mirror transfers
 * no blob bytes. At the end the mirror gets its own `all.txt`, so it can be served and
 * mirrored in turn.
 */
import { printJson } from "../../../lib/cli/output.ts";
import { note } from "../../../lib/cli/output.ts";
import { INDEX_PATH, indexLine } from "../../../lib/protocol/image_store.ts";
import { openDirectoryStore } from "../../../lib/store/blob_store.ts";
import { ImageFetcher } from "../../../lib/store/fetcher.ts";
import { imagePath, parseStorePath } from "../../../lib/store/layout.ts";
import { imageIdOf } from "../../../lib/store/manifest.ts";
import { eachLimited, parseConcurrency } from "./concurrency.ts";
import { transferProgress } from "./progress.ts";
import { ImageStoreClient } from "./store_client.ts";

export interface MirrorOptions {
  concurrency?: string;
  trustExisting?: boolean;
}

export async function mirrorCommand(storeUrl: string, dir: string, options: MirrorOptions) {
  const concurrency = parseConcurrency(options.concurrency);
  const client = new ImageStoreClient({ url: storeUrl });
  const paths = await client.mirrorIndex();
  const blobs: string[] = [];
  const images: string[] = [];
  for (const path of paths) {
    const entry = parseStorePath(path);
    if (entry === undefined) {
      note(`tml: skipping "${path}" from ${INDEX_PATH}: not a store path`);
      continue;
    }
    (entry.kind === "blob" ? blobs : images).push(entry.digest);
  }

  await Deno.mkdir(dir, { recursive: true });
  const store = openDirectoryStore(dir);
  let bytesTransferred = 0;
  const fetcher = new ImageFetcher({
    storeUrl: client.url,
    store,
    concurrency,
    fetch: countingFetch((bytes) => bytesTransferred += bytes),
  });
  const counts = { fetched_blobs: 0, verified_blobs: 0, repaired_blobs: 0, fetched_images: 0 };
  const progress = transferProgress("mirror", paths.length, (n) => `${Math.round(n)}`);
  try {
    await eachLimited(blobs, concurrency, async (digest) => {
      if (await store.has(digest)) {
        if (options.trustExisting || await store.verify(digest)) {
          counts.verified_blobs += options.trustExisting ? 0 : 1;
          progress.add(1);
          return;
        }
        note(`tml: blob "${digest}" in the mirror is damaged; fetching it again`);
        await store.delete(digest);
        counts.repaired_blobs++;
      }
      await fetcher.fetchBlob(digest);
      counts.fetched_blobs++;
      progress.add(1);
    });
    for (const imageId of images) {
      const local = await store.readManifestBytes(imageId);
      if (local !== undefined && imageIdOf(local) !== imageId) {
        note(`tml: image "${imageId}" in the mirror is damaged; fetching it again`);
        await store.backend.delete(imagePath(imageId));
      }
      if (local === undefined || imageIdOf(local) !== imageId) counts.fetched_images++;
      await fetcher.fetchImage(imageId);
      progress.add(1);
    }
  } finally {
    progress.stop();
  }
  await writeIndex(dir, paths.filter((path) => parseStorePath(path) !== undefined));
  printJson({
    store: client.url,
    dir,
    blobs: blobs.length,
    images: images.length,
    ...counts,
    bytes_transferred: bytesTransferred,
  });
}

/** A fetch that reports the body bytes of every response as they arrive. */
function countingFetch(onBytes: (bytes: number) => void): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (response.body === null) return response;
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          onBytes(chunk.length);
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

async function writeIndex(dir: string, paths: string[]): Promise<void> {
  const target = `${dir}/${INDEX_PATH}`;
  const temp = `${target}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(temp, paths.map(indexLine).join(""));
    await Deno.rename(temp, target);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
