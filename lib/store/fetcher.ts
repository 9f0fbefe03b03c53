/**
 * Downloads images from a store's HTTP server into a local BlobStore: the manifest, then every
 * blob it names, verified, with bounded concurrency, retries, resumption of dropped
 * connections and one shared download per blob. The manifest is stored last, so a local image
 * is only ever visible with all its blobs.
 */
import { describeError } from "../errors.ts";
import type { BlobStore } from "./blob_store.ts";
import { StoreError } from "./errors.ts";
import { parseContentRange } from "./http_range.ts";
import { assertDigest, blobPath, imagePath } from "./layout.ts";
import { imageIdOf, type ImageManifest, MANIFEST_MAX_BYTES, parseManifest } from "./manifest.ts";
import type { ByteSource } from "./storage.ts";

export interface FetchProgress {
  bytesDone: number;
  bytesTotal: number;
  blobsDone: number;
  blobsTotal: number;
}

export interface RetryPolicy {
  /** Attempts without progress before giving up; an attempt that received bytes is free. */
  attempts: number;
  /** Delay before the second attempt; doubled for each one after. */
  baseDelayMs: number;
}

export interface ImageFetcherOptions {
  /** Base URL of the store; `/blobs/…` and `/images/…` are resolved under it. */
  storeUrl: string;
  store: BlobStore;
  /** Blobs downloaded at once; 4 by default. */
  concurrency?: number;
  retry?: RetryPolicy;
  fetch?: typeof fetch;
  /** Sent with every request, e.g. an Authorization header. */
  headers?: HeadersInit;
  /** Waits between attempts; tests pass one that records the delay and returns at once. */
  sleep?: (ms: number) => Promise<void>;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250 };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A failure worth another attempt: a network error, a 5xx or 429, a body cut short. */
class TransientError extends Error {}

interface Download {
  done: Promise<void>;
  /** Told the blob's bytes received so far, after every chunk. */
  listeners: Set<(bytes: number) => void>;
}

export class ImageFetcher {
  readonly #storeUrl: string;
  readonly #store: BlobStore;
  readonly #concurrency: number;
  readonly #retry: RetryPolicy;
  readonly #fetch: typeof fetch;
  readonly #headers: HeadersInit | undefined;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #downloads = new Map<string, Download>();

  constructor(options: ImageFetcherOptions) {
    this.#storeUrl = options.storeUrl.replace(/\/+$/, "");
    this.#store = options.store;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#fetch = options.fetch ?? fetch;
    this.#headers = options.headers;
    this.#sleep = options.sleep ?? sleep;
  }

  /** Makes image `imageId` and all its blobs present in the local store; returns its manifest. */
  async fetchImage(
    imageId: string,
    onProgress?: (progress: FetchProgress) => void,
  ): Promise<ImageManifest> {
    assertDigest(imageId, "imageId");
    const local = await this.#store.readManifestBytes(imageId);
    const bytes = local ?? await this.#withRetry(
      `image "${imageId}"`,
      () => this.#getManifest(imageId),
    );
    const manifest = parseManifest(bytes);
    // Labels may share a blob: each digest is fetched and counted once.
    const sizes = new Map<string, number>();
    for (const blob of Object.values(manifest.blobs)) sizes.set(blob.sha256, blob.size);
    const received = new Map<string, number>();
    let blobsDone = 0;
    const report = () =>
      onProgress?.({
        bytesDone: [...received.values()].reduce((sum, n) => sum + n, 0),
        bytesTotal: [...sizes.values()].reduce((sum, n) => sum + n, 0),
        blobsDone,
        blobsTotal: sizes.size,
      });
    report();
    await eachLimited([...sizes], this.#concurrency, async ([digest, size]) => {
      await this.#fetchBlob(digest, size, (bytes) => {
        received.set(digest, bytes);
        report();
      });
      received.set(digest, size);
      blobsDone++;
      report();
    });
    if (local === undefined) await this.#store.putManifest(bytes);
    return manifest;
  }

  /** Makes blob `digest` present in the local store; `size`, when known, is checked too. */
  async fetchBlob(digest: string, size?: number): Promise<void> {
    assertDigest(digest);
    await this.#fetchBlob(digest, size);
  }

  async #fetchBlob(digest: string, size?: number, onBytes?: (n: number) => void): Promise<void> {
    let download = this.#downloads.get(digest);
    if (download === undefined) {
      const listeners = new Set<(bytes: number) => void>();
      const notify = (bytes: number) => listeners.forEach((listener) => listener(bytes));
      download = {
        listeners,
        done: this.#download(digest, size, notify).finally(() => this.#downloads.delete(digest)),
      };
      this.#downloads.set(digest, download);
    }
    if (onBytes !== undefined) download.listeners.add(onBytes);
    try {
      await download.done;
    } finally {
      if (onBytes !== undefined) download.listeners.delete(onBytes);
    }
  }

  async #download(digest: string, size: number | undefined, notify: (n: number) => void) {
    if (await this.#store.has(digest)) return;
    await this.#withRetry(`blob "${digest}"`, async (progressed) => {
      await this.#store.putResumable(
        digest,
        (offset) =>
          this.#openBlob(digest, offset, size, (bytes) => {
            if (bytes > offset) progressed();
            notify(bytes);
          }),
        size,
      );
    });
  }

  /** Runs `attempt` until it succeeds, a permanent error, or the attempts run out. */
  async #withRetry<T>(what: string, attempt: (progressed: () => void) => Promise<T>): Promise<T> {
    let failures = 0;
    while (true) {
      let progressed = false;
      try {
        return await attempt(() => progressed = true);
      } catch (error) {
        if (!(error instanceof TransientError)) throw error;
        if (!progressed) failures++;
        if (failures >= this.#retry.attempts) {
          throw new StoreError(
            "fetch_failed",
            `Cannot fetch ${what} from ${this.#storeUrl}: ${
              describeError(error)
            } (gave up after ${failures} attempts)`,
            { cause: error },
          );
        }
        const delay = this.#retry.baseDelayMs * 2 ** Math.max(0, failures - 1);
        await this.#sleep(delay);
      }
    }
  }

  /** GETs `path`, sorting failures into transient and permanent ones. */
  async #get(path: string, headers?: Record<string, string>): Promise<Response> {
    const url = `${this.#storeUrl}/${path}`;
    const merged = new Headers(this.#headers);
    for (const [name, value] of Object.entries(headers ?? {})) merged.set(name, value);
    let response: Response;
    try {
      response = await this.#fetch(url, { headers: merged });
    } catch (error) {
      throw new TransientError(`GET ${url} failed: ${describeError(error)}`, { cause: error });
    }
    // 416 answers a resumption from the very end of the blob; #openBlob reads it.
    if (response.ok || (response.status === 416 && headers?.range !== undefined)) return response;
    await response.body?.cancel();
    const status = `GET ${url} answered ${response.status} ${response.statusText}`.trim();
    if (response.status >= 500 || response.status === 429) throw new TransientError(status);
    if (response.status === 404) {
      throw new StoreError("not_found", `Cannot fetch ${path}: ${status}`);
    }
    throw new StoreError("fetch_failed", `Cannot fetch ${path}: ${status}`);
  }

  async #getManifest(imageId: string): Promise<Uint8Array> {
    const response = await this.#get(imagePath(imageId));
    const chunks: Uint8Array[] = [];
    let size = 0;
    const length = response.headers.get("content-length");
    const total = length === null ? undefined : Number(length);
    for await (const chunk of receive(response.body, 0, 0, total, () => {})) {
      size += chunk.length;
      if (size > MANIFEST_MAX_BYTES) {
        throw new StoreError(
          "invalid_manifest",
          `Cannot fetch image "${imageId}": its manifest exceeds ${MANIFEST_MAX_BYTES} bytes`,
        );
      }
      chunks.push(chunk);
    }
    const bytes = new Uint8Array(size);
    chunks.reduce((at, chunk) => (bytes.set(chunk, at), at + chunk.length), 0);
    const actual = imageIdOf(bytes);
    if (actual !== imageId) {
      throw new StoreError(
        "digest_mismatch",
        `Cannot fetch image "${imageId}": the manifest received hashes to "${actual}"`,
      );
    }
    return bytes;
  }

  /** The blob's bytes from `offset` on, resuming with a Range request when offset > 0. */
  async #openBlob(
    digest: string,
    offset: number,
    size: number | undefined,
    onBytes: (bytes: number) => void,
  ): Promise<ByteSource> {
    const response = await this.#get(
      blobPath(digest),
      offset > 0 ? { range: `bytes=${offset}-` } : undefined,
    );
    let skip = 0;
    let total = size;
    if (response.status === 416) {
      // Every byte already arrived (the partial ends where the blob does): nothing to read,
      // and the store verifies the partial as it is. Anything else is not this blob.
      await response.body?.cancel();
      const range = /^bytes \*\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
      if (range !== null && Number(range[1]) === offset) return ReadableStream.from([]);
      throw new StoreError(
        "size_mismatch",
        `Cannot fetch blob "${digest}": ${offset} bytes were received, but the store answered ` +
          `"${response.headers.get("content-range")}" to "bytes=${offset}-"`,
      );
    }
    if (response.status === 206) {
      const range = parseContentRange(response.headers.get("content-range"));
      if (range === undefined || range.start !== offset) {
        await response.body?.cancel();
        throw new TransientError(
          `GET ${blobPath(digest)} answered range "${
            response.headers.get("content-range")
          }" to "bytes=${offset}-"`,
        );
      }
      total ??= range.size;
    } else {
      // A server that ignores Range sends everything: drop what is already stored.
      skip = offset;
      const length = response.headers.get("content-length");
      if (length !== null) total ??= Number(length);
    }
    return receive(response.body, offset, skip, total, onBytes);
  }
}

/**
 * Yields a response body, dropping its first `skip` bytes and reporting the blob's bytes so
 * far. A body that ends before `total` was cut off: that is transient, and the bytes that did
 * arrive are kept for the Range request of the next attempt.
 */
async function* receive(
  body: ReadableStream<Uint8Array> | null,
  offset: number,
  skip: number,
  total: number | undefined,
  onBytes: (bytes: number) => void,
): AsyncIterable<Uint8Array> {
  let received = offset;
  const reader = (body ?? ReadableStream.from<Uint8Array>([])).getReader();
  try {
    while (true) {
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (error) {
        throw new TransientError(
          `the connection failed after ${received} bytes: ${describeError(error)}`,
          { cause: error },
        );
      }
      if (read.done) break;
      let chunk = read.value;
      if (skip > 0) {
        const dropped = Math.min(skip, chunk.length);
        skip -= dropped;
        chunk = chunk.subarray(dropped);
      }
      if (chunk.length === 0) continue;
      received += chunk.length;
      onBytes(received);
      yield chunk;
    }
  } finally {
    // Stops the transfer when the store gives up early (a size mismatch).
    await reader.cancel().catch(() => {});
  }
  if (total !== undefined && received < total) {
    throw new TransientError(`the connection closed after ${received} of ${total} bytes`);
  }
}

/** Runs `task` on every item, at most `limit` at once; after a failure starts no new ones. */
async function eachLimited<T>(
  items: T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await task(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(limit, items.length) }, worker),
  );
  const rejected = results.find((result) => result.status === "rejected");
  if (rejected !== undefined) throw rejected.reason;
}
