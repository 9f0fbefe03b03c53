/**
 * The image store's HTTP API as zod schemas: the only definition of the JSON bodies that
 * `tml image-store serve` sends and `tml image` reads. Blobs and manifests themselves travel as
 * raw bytes under their store paths (`/blobs/ab/cd/ef/<sha256>`, `/images/ab/cd/ef/<id>`); this
 * module also owns the format of `all.txt`, the mirror index.
 *
 * Routes (uploads need `Authorization: Bearer <token>`):
 *   GET|HEAD /blobs/ab/cd/ef/<sha256>, /blobs/<sha256>     blob bytes (ranges, ETag, immutable)
 *   GET|HEAD /images/ab/cd/ef/<id>, /images/<id>           manifest bytes
 *   GET      /all.txt                                      mirror index, one `./path` a line
 *   PUT      /blobs/<sha256>                               -> BlobUploaded
 *   PUT      /images/<id>                                  -> ImageUploaded (409: blobs missing)
 *   GET      /api/v1/images[?label=L]                      -> ImageList
 *   GET      /api/v1/images/<id>                           -> ImageDetail
 *   GET      /api/v1/stats                                 -> StoreStats
 * Errors are `ApiErrorBody` (api.ts): `{error: {code, message, field?}}`.
 */
import { z } from "zod";
import { ImageId } from "./common.ts";

/** A blob digest: SHA-256 of the blob's bytes, 64 lowercase hex digits. */
export const BlobDigest = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");
export type BlobDigest = z.infer<typeof BlobDigest>;

export const ImageSummary = z.object({
  id: ImageId,
  label: z.string(),
  revision: z.number().int(),
  description: z.string(),
  /** Sum of the sizes of every blob the image names, in bytes. */
  size: z.number().int().nonnegative(),
  blob_count: z.number().int().nonnegative(),
  /** When this store received the image. */
  created: z.iso.datetime(),
});
export type ImageSummary = z.infer<typeof ImageSummary>;

export const ImageList = z.object({ images: z.array(ImageSummary) });
export type ImageList = z.infer<typeof ImageList>;

export const ImageBlobInfo = z.object({
  label: z.string(),
  sha256: BlobDigest,
  size: z.number().int().nonnegative(),
  attrs: z.record(z.string(), z.string()),
});
export type ImageBlobInfo = z.infer<typeof ImageBlobInfo>;

export const ImageDetail = ImageSummary.extend({
  attrs: z.record(z.string(), z.string()),
  blobs: z.array(ImageBlobInfo),
});
export type ImageDetail = z.infer<typeof ImageDetail>;

export const BlobUploaded = z.object({
  sha256: BlobDigest,
  size: z.number().int().nonnegative(),
  /** False when the store already held the blob (the upload was a no-op). */
  created: z.boolean(),
});
export type BlobUploaded = z.infer<typeof BlobUploaded>;

export const ImageUploaded = z.object({
  image_id: ImageId,
  created: z.boolean(),
});
export type ImageUploaded = z.infer<typeof ImageUploaded>;

/** Counters since the server started; tests and operators use them to see what moved. */
export const StoreStats = z.object({
  started: z.iso.datetime(),
  blob_downloads: z.number().int().nonnegative(),
  blob_bytes_sent: z.number().int().nonnegative(),
  image_downloads: z.number().int().nonnegative(),
  blob_uploads: z.number().int().nonnegative(),
  blob_bytes_received: z.number().int().nonnegative(),
  image_uploads: z.number().int().nonnegative(),
  images: z.number().int().nonnegative(),
});
export type StoreStats = z.infer<typeof StoreStats>;

/**
 * The part of the switchboard's `GET /api/v1/whoami` answer (`WhoAmI` in api.ts) an image store
 * relies on. Permissions are read as plain strings: one this store does not know must not fail
 * the check.
 */
export const UploaderIdentity = z.object({
  user_id: z.string(),
  name: z.string(),
  permissions: z.array(z.string()),
});
export type UploaderIdentity = z.infer<typeof UploaderIdentity>;

/** Permission that allows uploads (besides `admin`). */
export const PUSH_IMAGE_PERMISSION = "push_image";

/** Path of the mirror index, relative to the store root and to the store's URL. */
export const INDEX_PATH = "all.txt";

/** One line of `all.txt` for a store-relative path such as `blobs/ab/cd/ef/<sha256>`. */
export function indexLine(relativePath: string): string {
  return `./${relativePath}\n`;
}

/**
 * The store-relative paths listed by an `all.txt` text, in order, without duplicates. Blank
 * lines are skipped; the caller validates each path (with the store layout) before using it.
 */
export function parseIndex(text: string): string[] {
  const seen = new Set<string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    seen.add(line.startsWith("./") ? line.slice(2) : line);
  }
  return [...seen];
}
