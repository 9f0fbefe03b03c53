/**
 * A content-addressed store of blobs and image manifests, addressed by SHA-256 digest and
 * image id, over any StoreBackend. Site caches, image-store servers and clients all use it.
 */
import { DirectoryBackend } from "./directory_backend.ts";
import { StoreError } from "./errors.ts";
import { blobPath, imagePath, parseStorePath } from "./layout.ts";
import { imageIdOf, type ImageManifest, MANIFEST_MAX_BYTES, parseManifest } from "./manifest.ts";
import { Sha256Hasher } from "./sha256.ts";
import type { ByteRange, ByteSource, StoreBackend } from "./storage.ts";

export class BlobStore {
  readonly backend: StoreBackend;

  constructor(backend: StoreBackend) {
    this.backend = backend;
  }

  async has(digest: string): Promise<boolean> {
    return (await this.backend.stat(blobPath(digest))) !== undefined;
  }

  /** The blob's size in bytes, or undefined when it is not stored. */
  async size(digest: string): Promise<number | undefined> {
    return (await this.backend.stat(blobPath(digest)))?.size;
  }

  /** The blob's bytes, or an inclusive range of them; StoreError `not_found` when absent. */
  open(digest: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    return this.backend.openRead(blobPath(digest), range);
  }

  /** Stores `source` as blob `digest` once its SHA-256 (and `size`, if given) match. */
  put(
    digest: string,
    source: ByteSource,
    size?: number,
  ): Promise<{ created: boolean; size: number }> {
    return this.backend.putVerified(blobPath(digest), source, { sha256: digest, size });
  }

  /** Like put, keeping bytes across failed attempts; see StoreBackend.putResumable. */
  putResumable(
    digest: string,
    open: (offset: number) => Promise<ByteSource>,
    size?: number,
  ): Promise<{ created: boolean; size: number }> {
    return this.backend.putResumable(blobPath(digest), open, { sha256: digest, size });
  }

  /** Re-hashes a stored blob; false when it is missing or its bytes no longer match. */
  async verify(digest: string): Promise<boolean> {
    let stream: ReadableStream<Uint8Array>;
    try {
      stream = await this.open(digest);
    } catch (error) {
      if (error instanceof StoreError && error.code === "not_found") return false;
      throw error;
    }
    const hasher = new Sha256Hasher();
    for await (const chunk of stream) hasher.update(chunk);
    return hasher.digest() === digest;
  }

  /** Removes a blob (cache eviction, a blob that failed verify); absent is fine. */
  delete(digest: string): Promise<void> {
    return this.backend.delete(blobPath(digest));
  }

  async hasImage(imageId: string): Promise<boolean> {
    return (await this.backend.stat(imagePath(imageId))) !== undefined;
  }

  /** The manifest's exact bytes (their SHA-256 is `imageId`), or undefined when absent. */
  async readManifestBytes(imageId: string): Promise<Uint8Array | undefined> {
    const path = imagePath(imageId);
    const info = await this.backend.stat(path);
    if (info === undefined) return undefined;
    if (info.size > MANIFEST_MAX_BYTES) {
      throw new StoreError(
        "invalid_manifest",
        `Cannot read image "${imageId}": its manifest is ${info.size} bytes, more than ${MANIFEST_MAX_BYTES}`,
      );
    }
    try {
      return new Uint8Array(await new Response(await this.backend.openRead(path)).arrayBuffer());
    } catch (error) {
      // Deleted between stat and read.
      if (error instanceof StoreError && error.code === "not_found") return undefined;
      throw error;
    }
  }

  /** The parsed manifest of `imageId`, or undefined when absent. */
  async readManifest(imageId: string): Promise<ImageManifest | undefined> {
    const bytes = await this.readManifestBytes(imageId);
    return bytes === undefined ? undefined : parseManifest(bytes);
  }

  /** Validates and stores a manifest; returns its image id. */
  async putManifest(bytes: Uint8Array): Promise<string> {
    parseManifest(bytes);
    const imageId = imageIdOf(bytes);
    await this.backend.putBytes(imagePath(imageId), bytes, imageId);
    return imageId;
  }

  async *listImages(): AsyncIterable<string> {
    for await (const entry of this.backend.list("images")) {
      const parsed = parseStorePath(entry.path);
      if (parsed !== undefined) yield parsed.digest;
    }
  }

  async *listBlobs(): AsyncIterable<{ digest: string; size: number; mtime: Date }> {
    for await (const entry of this.backend.list("blobs")) {
      const parsed = parseStorePath(entry.path);
      if (parsed !== undefined) {
        yield { digest: parsed.digest, size: entry.size, mtime: entry.mtime };
      }
    }
  }
}

/** A BlobStore over a local directory (created if missing). */
export function openDirectoryStore(root: string): BlobStore {
  return new BlobStore(new DirectoryBackend(root));
}
