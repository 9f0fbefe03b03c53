/**
 * The storage interface under a blob store: files named by relative store paths
 * (`blobs/ab/cd/ef/<digest>`, `images/…`, built only by layout.ts), written once after their
 * content is verified and never changed afterwards.
 */

/** A byte range; `end` is inclusive, as in an HTTP `Range: bytes=start-end` header. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Bytes to store: a web stream (a request body) or any async iterable of chunks. A backend is
 * done with a chunk when it asks for the next one, so a source may read the next chunk into
 * the same memory (the image store's upload path does: roles/image_store/body_blocks.ts).
 */
export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** What the stored bytes must be; the path's digest must equal `sha256`. */
export interface ExpectedContent {
  sha256: string;
  size?: number;
}

export interface StoredEntry {
  path: string;
  size: number;
  mtime: Date;
}

export interface StoreBackend {
  /** Size and modification time, or undefined when nothing is stored at `path`. */
  stat(path: string): Promise<{ size: number; mtime: Date } | undefined>;
  /** The stored bytes, or the inclusive `range` of them; `not_found`, `invalid_range`. */
  openRead(path: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>>;
  /**
   * Stores `source` at `path` once its size and SHA-256 match `expected`; nothing is stored
   * otherwise. An entry already present is kept and reported as `created: false`.
   */
  putVerified(
    path: string,
    source: ByteSource,
    expected: ExpectedContent,
  ): Promise<{ created: boolean; size: number }>;
  /**
   * Like putVerified, but bytes received before `source` failed are kept, per path, and the
   * next call continues after them: `open(offset)` must yield the content from `offset` on
   * (it is not called when the kept bytes already number `expected.size`). Used by downloads,
   * which resume with `Range: bytes=offset-` after a dropped connection. Concurrent calls for
   * one path run one at a time, so a second caller finds the entry stored and reads nothing.
   */
  putResumable(
    path: string,
    open: (offset: number) => Promise<ByteSource>,
    expected: ExpectedContent,
  ): Promise<{ created: boolean; size: number }>;
  /** Stores small in-memory content (a manifest) after checking its SHA-256. */
  putBytes(path: string, bytes: Uint8Array, sha256: string): Promise<{ created: boolean }>;
  /** Removes the entry; removing a missing entry is not an error. */
  delete(path: string): Promise<void>;
  /** Every entry under `blobs/` or `images/`, in no particular order. */
  list(prefix: "blobs" | "images"): AsyncIterable<StoredEntry>;
}
