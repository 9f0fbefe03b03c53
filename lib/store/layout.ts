/**
 * The on-disk and on-the-wire layout of an image store, and the only code that builds its
 * paths. Site caches, image-store servers and static mirrors share it:
 *
 *   <root>/
 *     blobs/ab/cd/ef/abcdef…(64 hex)    a blob, named by the SHA-256 of its bytes
 *     images/12/34/56/123456…(64 hex)   an image manifest, named by the SHA-256 of its bytes
 *
 * The three folders are the first three bytes of the digest in lowercase hex. Digests are
 * validated before they touch a path.
 */
import { z } from "zod";
import { StoreError } from "./errors.ts";

export const Sha256Digest = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");
export type Sha256Digest = z.infer<typeof Sha256Digest>;

/** Throws StoreError `invalid_digest` (400) naming `field` unless `value` is 64 lowercase hex. */
export function assertDigest(value: string, field = "digest"): string {
  if (!Sha256Digest.safeParse(value).success) {
    throw new StoreError(
      "invalid_digest",
      `Invalid ${field}: expected 64 lowercase hex digits, got "${value.slice(0, 80)}"`,
      { field },
    );
  }
  return value;
}

function fanOut(kind: "blobs" | "images", digest: string): string {
  assertDigest(digest);
  return `${kind}/${digest.slice(0, 2)}/${digest.slice(2, 4)}/${digest.slice(4, 6)}/${digest}`;
}

/** `blobs/ab/cd/ef/<digest>` */
export function blobPath(digest: string): string {
  return fanOut("blobs", digest);
}

/** `images/ab/cd/ef/<image id>` */
export function imagePath(imageId: string): string {
  return fanOut("images", imageId);
}

const STORE_PATH =
  /^(?:\.\/)?(blobs|images)\/([0-9a-f]{2})\/([0-9a-f]{2})\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

/** Parses a relative store path (optionally `./`-prefixed); undefined for anything else. */
export function parseStorePath(
  relative: string,
): { kind: "blob" | "image"; digest: string } | undefined {
  const match = STORE_PATH.exec(relative);
  if (match === null) return undefined;
  const [, kind, a, b, c, digest] = match;
  if (digest.slice(0, 6) !== a + b + c) return undefined;
  return { kind: kind === "blobs" ? "blob" : "image", digest };
}
