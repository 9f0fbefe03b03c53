/**
 * `tml image pull <id> <dir>`: brings an image (manifest and every blob, each verified) into a
 * local store with the shared fetcher, which resumes cut-off downloads and skips blobs the
 * directory already holds.
 */
import { printJson } from "../../../lib/cli/output.ts";
import { openDirectoryStore } from "../../../lib/store/blob_store.ts";
import { ImageFetcher } from "../../../lib/store/fetcher.ts";
import { assertDigest } from "../../../lib/store/layout.ts";
import { manifestTotalSize } from "../../../lib/store/manifest.ts";
import { loadImageClientConfig, requireStoreUrl } from "./config.ts";
import { parseConcurrency } from "./concurrency.ts";
import { transferProgress } from "./progress.ts";

export interface PullOptions {
  store?: string;
  concurrency?: string;
  config?: string;
}

export async function pullCommand(imageId: string, dir: string, options: PullOptions) {
  assertDigest(imageId, "image_id");
  const config = await loadImageClientConfig(options);
  await Deno.mkdir(dir, { recursive: true });
  const store = openDirectoryStore(dir);
  const fetcher = new ImageFetcher({
    storeUrl: requireStoreUrl(config),
    store,
    concurrency: parseConcurrency(options.concurrency),
  });
  let progress: ReturnType<typeof transferProgress> | undefined;
  let lastDone = 0;
  const manifest = await (async () => {
    try {
      return await fetcher.fetchImage(imageId, (update) => {
        progress ??= transferProgress("pull", update.bytesTotal);
        progress.add(update.bytesDone - lastDone);
        lastDone = update.bytesDone;
      });
    } finally {
      progress?.stop();
    }
  })();
  printJson({
    image_id: imageId,
    label: manifest.label,
    revision: manifest.revision,
    blobs: new Set(Object.values(manifest.blobs).map((blob) => blob.sha256)).size,
    size: manifestTotalSize(manifest),
    dir,
  });
}
