/**
 * Garbage collection: removes blobs that no image references. Works on the storage interface,
 * so it runs beside a live server and on any backend.
 *
 * Safety, in order of the steps:
 *   1. Read every manifest. If any cannot be read or parsed, stop without removing anything:
 *      what a broken manifest references is unknown.
 *   2. A blob is a candidate when no image names it and it is older (by mtime) than the grace
 *      period; a blob being uploaded, or uploaded for an image not yet published, is younger.
 *   3. Holding the gc lock (gc_lock.ts), which every publish shares between checking that its
 *      blobs are stored and writing its manifest, the images are listed again and a candidate
 *      named by an image published meanwhile is kept; the rest is removed. A publish that
 *      waited for the lock finds its blob gone, answers 409, and `tml image push` sends the
 *      blob again. Without the lock an old unreferenced blob that a push skipped (the store had
 *      it) could go between the publish's check and its write.
 */
import type { StoreBackend } from "../../lib/store/storage.ts";
import { blobPath, imagePath, parseStorePath } from "../../lib/store/layout.ts";
import { parseManifest } from "../../lib/store/manifest.ts";
import { StoreError } from "../../lib/store/errors.ts";

export interface GcOptions {
  backend: StoreBackend;
  graceMs: number;
  dryRun: boolean;
  now?: Date;
  /** Runs the removal step while no image is being published (GcLock.exclusive). */
  lock: <T>(removal: () => Promise<T>) => Promise<T>;
}

export interface GcReport {
  dry_run: boolean;
  grace_seconds: number;
  images: number;
  blobs: number;
  referenced_blobs: number;
  /** Unreferenced blobs kept because they are younger than the grace period. */
  kept_in_grace: number;
  /** Removed blobs (or, with dry_run, those that would be removed). */
  removed: { sha256: string; size: number; mtime: string }[];
  removed_bytes: number;
}

export async function collectGarbage(options: GcOptions): Promise<GcReport> {
  const { backend, graceMs, dryRun } = options;
  const now = options.now ?? new Date();
  const first = await referencedBlobs(backend);
  const candidates: { sha256: string; size: number; mtime: Date }[] = [];
  let blobs = 0;
  let keptInGrace = 0;
  for await (const entry of backend.list("blobs")) {
    const parsed = parseStorePath(entry.path);
    if (parsed?.kind !== "blob") continue; // Not a blob (a temporary file, say): not ours.
    blobs++;
    if (first.referenced.has(parsed.digest)) continue;
    if (now.getTime() - entry.mtime.getTime() < graceMs) {
      keptInGrace++;
      continue;
    }
    candidates.push({ sha256: parsed.digest, size: entry.size, mtime: entry.mtime });
  }

  let doomed = candidates;
  if (!dryRun && candidates.length > 0) {
    doomed = await options.lock(async () => {
      const second = await referencedBlobs(backend);
      const unreferenced = candidates.filter((blob) => !second.referenced.has(blob.sha256));
      for (const blob of unreferenced) await backend.delete(blobPath(blob.sha256));
      return unreferenced;
    });
  }
  return {
    dry_run: dryRun,
    grace_seconds: graceMs / 1000,
    images: first.images,
    blobs,
    referenced_blobs: first.referenced.size,
    kept_in_grace: keptInGrace,
    removed: doomed.map(({ sha256, size, mtime }) => ({
      sha256,
      size,
      mtime: mtime.toISOString(),
    })),
    removed_bytes: doomed.reduce((total, blob) => total + blob.size, 0),
  };
}

async function referencedBlobs(
  backend: StoreBackend,
): Promise<{ images: number; referenced: Set<string> }> {
  const referenced = new Set<string>();
  let images = 0;
  for await (const entry of backend.list("images")) {
    const parsed = parseStorePath(entry.path);
    if (parsed?.kind !== "image") continue;
    images++;
    let manifest;
    try {
      manifest = parseManifest(await readAll(await backend.openRead(imagePath(parsed.digest))));
    } catch (error) {
      throw new StoreError(
        "invalid_manifest",
        `Cannot collect garbage: image "${parsed.digest}" is unreadable, so what it references ` +
          `is unknown; nothing was removed (${(error as Error).message})`,
        { status: 500, cause: error },
      );
    }
    for (const blob of Object.values(manifest.blobs)) referenced.add(blob.sha256);
  }
  return { images, referenced };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
