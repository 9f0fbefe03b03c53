/**
 * Uploads: `PUT /blobs/<sha256>` and `PUT /images/<id>`, each behind a bearer token.
 *
 * A blob streams to the backend, which hashes it as it writes and publishes it only if the
 * digest (and the declared Content-Length) match; anything else leaves nothing behind. A
 * manifest is accepted only if its SHA-256 is the id in the path, it parses, and every blob it
 * names is already stored (409 naming the missing ones otherwise). Publishing a manifest is what
 * makes an image and its blobs appear in the listing API and in `all.txt`.
 */
import { type Context, Hono } from "hono";
import { TmlError } from "../../lib/errors.ts";
import { StoreError } from "../../lib/store/errors.ts";
import { imageIdOf, MANIFEST_MAX_BYTES, parseManifest } from "../../lib/store/manifest.ts";
import type { BlobUploaded, ImageUploaded } from "../../lib/protocol/image_store.ts";
import type { StoreServerDeps } from "./context.ts";
import { rawPath } from "./file_routes.ts";
import { StoreHttpError } from "./http_errors.ts";
import { storeEntryOf } from "./request_path.ts";
import { bodyBlocks } from "./body_blocks.ts";

export function uploadRoutes(deps: StoreServerDeps): Hono {
  const app = new Hono();
  app.put("/blobs/*", (c) => putBlob(c, deps));
  app.put("/images/*", (c) => putImage(c, deps));
  return app;
}

async function putBlob(c: Context, deps: StoreServerDeps): Promise<Response> {
  const { digest } = storeEntryOf(rawPath(c));
  const uploader = await deps.auth.authorize(c.req.header("authorization") ?? null);
  const declared = contentLength(c);
  if (declared !== undefined && declared > deps.config.max_blob_bytes) {
    throw new StoreHttpError(
      413,
      "blob_too_large",
      `Cannot store blob "${digest}": ${declared} bytes is more than this store's limit of ${deps.config.max_blob_bytes}`,
      { field: "content-length" },
    );
  }
  const body = c.req.raw.body;
  const existing = await deps.store.size(digest);
  if (existing !== undefined) {
    // Content-addressed: the stored bytes are already the ones being offered.
    await body?.cancel();
    return c.json({ sha256: digest, size: existing, created: false } satisfies BlobUploaded, 200);
  }
  const started = performance.now();
  let received = 0;
  const source = bodyBlocks(body, (bytes) => received += bytes);
  let result: { created: boolean; size: number };
  try {
    result = await deps.store.put(digest, source, declared);
  } catch (error) {
    if (error instanceof TmlError) throw error;
    // The request body failed: the client went away or sent less than it declared.
    throw new StoreHttpError(
      400,
      "upload_incomplete",
      `Cannot store blob "${digest}": the upload ended after ${received} bytes` +
        (declared === undefined ? "" : ` of ${declared}`),
      { cause: error },
    );
  } finally {
    deps.stats.blobBytesReceived += received;
  }
  deps.stats.blobUploads++;
  const seconds = (performance.now() - started) / 1000;
  deps.log.info("blob stored", {
    sha256: digest,
    size: result.size,
    created: result.created,
    uploader: uploader.name,
    via: uploader.via,
    mb_per_s: seconds > 0 ? Math.round(result.size / seconds / 1e6) : undefined,
  });
  return c.json(
    { sha256: digest, size: result.size, created: result.created } satisfies BlobUploaded,
    result.created ? 201 : 200,
  );
}

async function putImage(c: Context, deps: StoreServerDeps): Promise<Response> {
  const { digest: imageId } = storeEntryOf(rawPath(c));
  const uploader = await deps.auth.authorize(c.req.header("authorization") ?? null);
  const bytes = await readManifestBody(c, imageId);
  const actual = imageIdOf(bytes);
  if (actual !== imageId) {
    throw new StoreError(
      "digest_mismatch",
      `Cannot publish image "${imageId}": the manifest sent hashes to "${actual}"`,
      { field: "image_id" },
    );
  }
  const manifest = parseManifest(bytes);
  const digests = new Set(Object.values(manifest.blobs).map((blob) => blob.sha256));
  // Between the check and the write, gc must not remove any of the blobs (gc_lock.ts).
  const created = await deps.gcLock.shared(async () => {
    const missing: string[] = [];
    for (const [label, blob] of Object.entries(manifest.blobs)) {
      if (!await deps.store.has(blob.sha256)) missing.push(`"${label}" (${blob.sha256})`);
    }
    if (missing.length > 0) {
      const shown = missing.slice(0, 10).join(", ") +
        (missing.length > 10 ? ` and ${missing.length - 10} more` : "");
      throw new StoreHttpError(
        409,
        "missing_blobs",
        `Cannot publish image "${imageId}": ${missing.length} of its blobs are not in the store: ${shown}`,
        { field: "blobs" },
      );
    }
    const created = !await deps.store.hasImage(imageId);
    await deps.store.putManifest(bytes);
    return created;
  });
  if (deps.catalog.get(imageId) === undefined) deps.catalog.add(imageId, manifest, new Date());
  await deps.index.add({ id: imageId, blobDigests: [...digests] });
  deps.stats.imageUploads++;
  deps.log.info("image published", {
    image_id: imageId,
    label: manifest.label,
    revision: manifest.revision,
    blobs: digests.size,
    created,
    uploader: uploader.name,
    via: uploader.via,
  });
  return c.json({ image_id: imageId, created } satisfies ImageUploaded, created ? 201 : 200);
}

/** The manifest bytes, refusing (413) a body larger than any valid manifest as it arrives. */
async function readManifestBody(c: Context, imageId: string): Promise<Uint8Array> {
  const tooLarge = () =>
    new StoreHttpError(
      413,
      "manifest_too_large",
      `Cannot publish image "${imageId}": a manifest may have at most ${MANIFEST_MAX_BYTES} bytes`,
      { field: "content-length" },
    );
  const declared = contentLength(c);
  const body = c.req.raw.body;
  if (declared !== undefined && declared > MANIFEST_MAX_BYTES) {
    await body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body ?? []) {
    size += chunk.length;
    if (size > MANIFEST_MAX_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  chunks.reduce((at, chunk) => (bytes.set(chunk, at), at + chunk.length), 0);
  return bytes;
}

function contentLength(c: Context): number | undefined {
  const header = c.req.header("content-length");
  if (header === undefined) return undefined;
  if (!/^\d{1,16}$/.test(header.trim())) {
    throw new StoreHttpError(400, "invalid_content_length", `Invalid Content-Length "${header}"`, {
      field: "content-length",
    });
  }
  return Number(header);
}
