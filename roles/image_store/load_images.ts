/**
 * Reads every published image at start: fills the catalog and returns what the mirror index
 * lists. A manifest whose bytes no longer hash to its id, or that no longer parses, is left out
 * with a warning rather than stopping the server; so is a missing blob from the index (a mirror
 * would fail on it). `tml image verify` reports such damage in full.
 */
import type { Logger } from "../../lib/log.ts";
import type { BlobStore } from "../../lib/store/blob_store.ts";
import { imagePath } from "../../lib/store/layout.ts";
import { imageIdOf, parseManifest } from "../../lib/store/manifest.ts";
import { describeError } from "../../lib/errors.ts";
import { ImageCatalog } from "./catalog.ts";
import type { IndexedImage } from "./mirror_index.ts";

export async function loadImages(
  store: BlobStore,
  log: Logger,
): Promise<{ catalog: ImageCatalog; images: IndexedImage[] }> {
  const catalog = new ImageCatalog();
  const images: IndexedImage[] = [];
  const present = new Map<string, boolean>();
  for await (const imageId of store.listImages()) {
    let manifest;
    try {
      const bytes = await store.readManifestBytes(imageId);
      if (bytes === undefined) continue; // Removed since listed.
      if (imageIdOf(bytes) !== imageId) throw new Error("its bytes do not hash to its id");
      manifest = parseManifest(bytes);
    } catch (error) {
      log.warn("image skipped: unreadable manifest", {
        image_id: imageId,
        error: describeError(error),
      });
      continue;
    }
    const info = await store.backend.stat(imagePath(imageId));
    catalog.add(imageId, manifest, info?.mtime ?? new Date());
    const blobDigests: string[] = [];
    for (const blob of Object.values(manifest.blobs)) {
      let has = present.get(blob.sha256);
      if (has === undefined) {
        has = await store.has(blob.sha256);
        present.set(blob.sha256, has);
      }
      if (has) blobDigests.push(blob.sha256);
      else log.warn("image names a missing blob", { image_id: imageId, sha256: blob.sha256 });
    }
    images.push({ id: imageId, blobDigests });
  }
  // Oldest first, so all.txt reads in publication order.
  images.sort((a, b) =>
    catalog.get(a.id)!.created.localeCompare(catalog.get(b.id)!.created) ||
    a.id.localeCompare(b.id)
  );
  return { catalog, images };
}
