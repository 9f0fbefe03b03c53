/**
 * A StoreBackend over a local directory laid out as layout.ts draws it. Every write lands in
 * `<root>/tmp/` (the same filesystem), is hashed while written, verified, fsynced and then
 * hard-linked into place, so a reader never sees a partial or unverified entry.
 *
 *   source ──> tmp/<uuid>.part ──(size + SHA-256 match, fsync)──> link ──> blobs/ab/cd/ef/<d>
 *                    │                                               │
 *                    └── mismatch / error: unlinked            EEXIST: another writer of the
 *                                                               same bytes won; ours is dropped
 *
 * A link, unlike a rename, never replaces an entry, so a stored blob keeps its inode and mtime
 * (the garbage collector's grace period reads it) however many writers race. A crash leaves
 * at most a file in tmp/, which the next start removes once it is STALE_TMP_MS old; resumable
 * downloads keep theirs there under a per-digest name (`resume-blob-<digest>`) and lock it.
 */
import { dirname, join } from "node:path";
import { StoreError } from "./errors.ts";
import { parseStorePath } from "./layout.ts";
import { hashFileInto, Sha256Hasher } from "./sha256.ts";
import type {
  ByteRange,
  ByteSource,
  ExpectedContent,
  StoreBackend,
  StoredEntry,
} from "./storage.ts";

/** Temp files untouched this long belong to a crashed writer and are removed on start. */
export const STALE_TMP_MS = 60 * 60 * 1000;
const BLOCK = 1024 * 1024;

interface Target {
  path: string;
  file: string;
  kind: "blob" | "image";
  digest: string;
}

export class DirectoryBackend implements StoreBackend {
  readonly root: string;
  readonly #tmp: string;

  constructor(root: string) {
    this.root = root;
    this.#tmp = join(root, "tmp");
    Deno.mkdirSync(this.#tmp, { recursive: true });
    removeStaleTmp(this.#tmp, Date.now() - STALE_TMP_MS);
  }

  async stat(path: string): Promise<{ size: number; mtime: Date } | undefined> {
    return await statFile(this.#target(path).file);
  }

  async openRead(path: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const target = this.#target(path);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(target.file, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) throw notFound(target.path);
      throw error;
    }
    try {
      const { size } = await file.stat();
      if (range === undefined) return fileStream(file, size);
      const { start, end } = range;
      if (
        !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end ||
        end >= size
      ) {
        throw new StoreError(
          "invalid_range",
          `Cannot read "${target.path}": range ${start}-${end} is outside its ${size} bytes`,
        );
      }
      await file.seek(start, Deno.SeekMode.Start);
      return fileStream(file, end - start + 1);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  async putVerified(
    path: string,
    source: ByteSource,
    expected: ExpectedContent,
  ): Promise<{ created: boolean; size: number }> {
    let target: Target;
    let present: { created: false; size: number } | undefined;
    try {
      target = this.#target(path, expected.sha256);
      present = await this.#present(target, expected);
    } catch (error) {
      await discard(source);
      throw error;
    }
    if (present !== undefined) {
      await discard(source);
      return present;
    }
    const tmp = join(this.#tmp, `${crypto.randomUUID()}.part`);
    const file = await Deno.open(tmp, { write: true, createNew: true });
    try {
      const hasher = new Sha256Hasher();
      let size: number;
      try {
        size = await appendSource(file, source, hasher, 0, target, expected);
        await file.sync();
      } finally {
        file.close();
      }
      return await commit(tmp, target, hasher.digest(), size, expected);
    } finally {
      await removeIfPresent(tmp);
    }
  }

  async putResumable(
    path: string,
    open: (offset: number) => Promise<ByteSource>,
    expected: ExpectedContent,
  ): Promise<{ created: boolean; size: number }> {
    const target = this.#target(path, expected.sha256);
    const partial = join(this.#tmp, `resume-${target.kind}-${target.digest}`);
    const file = await lockPartial(partial);
    // Closing the file releases the lock; the partial is removed (if at all) before that, so
    // a writer waiting for the lock never resumes a file that is gone.
    try {
      const present = await this.#present(target, expected);
      if (present !== undefined) {
        // Another writer finished while this one waited for the lock; the partial this one
        // created is empty and of no further use.
        await removeIfPresent(partial);
        return present;
      }
      let hasher = new Sha256Hasher();
      await file.seek(0, Deno.SeekMode.Start);
      let offset = await hashFileInto(file, hasher);
      if (expected.size !== undefined && offset > expected.size) {
        await file.truncate(0);
        await file.seek(0, Deno.SeekMode.Start);
        hasher = new Sha256Hasher();
        offset = 0;
      }
      let size = offset;
      try {
        // A partial that already holds every byte (its writer died before committing) only
        // needs verifying.
        if (offset !== expected.size) {
          size = await appendSource(file, await open(offset), hasher, offset, target, expected);
        }
        await file.sync();
      } catch (error) {
        if (error instanceof StoreError && error.code === "size_mismatch") {
          await removeIfPresent(partial);
        } else {
          // The bytes so far are kept for the next attempt.
          await file.sync();
        }
        throw error;
      }
      try {
        return await commit(partial, target, hasher.digest(), size, expected);
      } finally {
        await removeIfPresent(partial);
      }
    } finally {
      file.close();
    }
  }

  async putBytes(path: string, bytes: Uint8Array, sha256: string): Promise<{ created: boolean }> {
    const { created } = await this.putVerified(path, ReadableStream.from([bytes]), {
      sha256,
      size: bytes.length,
    });
    return { created };
  }

  async delete(path: string): Promise<void> {
    await removeIfPresent(this.#target(path).file);
  }

  async *list(prefix: "blobs" | "images"): AsyncIterable<StoredEntry> {
    yield* walk(this.root, prefix);
  }

  /** Resolves a store path; `digest`, when given, must be the one the path names. */
  #target(path: string, digest?: string): Target {
    const parsed = parseStorePath(path);
    if (parsed === undefined) {
      throw new StoreError(
        "invalid_digest",
        `Cannot use store path: expected "blobs/…" or "images/…" ending in a 64-hex digest, got "${
          path.slice(0, 200)
        }"`,
        { field: "path" },
      );
    }
    if (digest !== undefined && digest !== parsed.digest) {
      throw new StoreError(
        "invalid_digest",
        `Cannot store "${path}": expected digest "${digest}" is not the one the path names`,
        { field: "sha256" },
      );
    }
    const relative = path.replace(/^\.\//, "");
    return { path: relative, file: join(this.root, relative), ...parsed };
  }

  /** The stored entry, if present; its size must agree with what the writer expects. */
  async #present(
    target: Target,
    expected: ExpectedContent,
  ): Promise<{ created: false; size: number } | undefined> {
    const info = await statFile(target.file);
    if (info === undefined) return undefined;
    if (expected.size !== undefined && info.size !== expected.size) {
      throw sizeMismatch(target, `is stored with ${info.size} bytes, not ${expected.size}`);
    }
    return { created: false, size: info.size };
  }
}

function notFound(path: string): StoreError {
  return new StoreError("not_found", `Cannot read "${path}": not stored`);
}

function sizeMismatch(target: Target, detail: string): StoreError {
  return new StoreError("size_mismatch", `Cannot store "${target.path}": it ${detail}`);
}

async function statFile(file: string): Promise<{ size: number; mtime: Date } | undefined> {
  try {
    const info = await Deno.stat(file);
    return info.isFile ? { size: info.size, mtime: info.mtime ?? new Date(0) } : undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function removeIfPresent(file: string): Promise<void> {
  try {
    await Deno.remove(file);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function removeStaleTmp(tmp: string, cutoff: number): void {
  for (const entry of Deno.readDirSync(tmp)) {
    const file = join(tmp, entry.name);
    const mtime = Deno.lstatSync(file).mtime?.getTime() ?? 0;
    if (mtime < cutoff) Deno.removeSync(file, { recursive: true });
  }
}

/**
 * Streams `length` bytes from the file's current position as a byte stream, closing the file at
 * the end or on cancel. A BYOB reader has its own buffer filled, so a consumer that reuses its
 * buffers (the HTTP server, http1_server.ts) allocates nothing per block, and one that keeps
 * several reads pending gets the file read ahead into them. A default reader gets a fresh
 * 1 MiB block per read, because it keeps the chunk. Nothing is read before it is asked for
 * (high-water mark 0): a block read ahead into the stream's own queue would be fresh memory
 * and one more copy into the reader's buffer.
 */
function fileStream(file: Deno.FsFile, length: number): ReadableStream<Uint8Array> {
  let remaining = length;
  let open = true;
  const close = () => {
    if (open) file.close();
    open = false;
  };
  return new ReadableStream({
    type: "bytes",
    async pull(controller) {
      const request = controller.byobRequest;
      try {
        if (remaining === 0) {
          close();
          controller.close();
          request?.respond(0);
          return;
        }
        if (request?.view) {
          const view = request.view;
          const into = new Uint8Array(
            view.buffer,
            view.byteOffset,
            Math.min(view.byteLength, remaining),
          );
          const n = await file.read(into);
          if (n === null) throw new Error(`file ended ${remaining} bytes early`);
          remaining -= n;
          request.respond(n);
        } else {
          const buffer = new Uint8Array(Math.min(BLOCK, remaining));
          const n = await file.read(buffer);
          if (n === null) throw new Error(`file ended ${remaining} bytes early`);
          remaining -= n;
          controller.enqueue(buffer.subarray(0, n));
        }
      } catch (error) {
        close();
        controller.error(error);
      }
    },
    cancel: close,
  }, { highWaterMark: 0 });
}

/** Tells the sender of a body that will not be read to stop. */
async function discard(source: ByteSource): Promise<void> {
  if (source instanceof ReadableStream) {
    await source.cancel();
  } else {
    await source[Symbol.asyncIterator]().return?.();
  }
}

function writeAllSync(file: Deno.FsFile, chunk: Uint8Array): void {
  let written = 0;
  while (written < chunk.length) written += file.writeSync(chunk.subarray(written));
}

/** Bytes written between two flushes started while a blob is still being written. */
const WRITEBACK_BYTES = 64 << 20;

/**
 * Flushes a file being written to disk in the background, every WRITEBACK_BYTES, never awaited
 * while writing, so the fsync at the end finds little left to write. Otherwise that fsync
 * writes the whole blob after the last byte arrived: ~0.7 s per GiB here, measured (uploads to
 * disk 471-623 MB/s, the same to tmpfs 868).
 */
class BackgroundFlush {
  #pending?: Promise<void>;
  #unflushed = 0;
  #failure?: unknown;

  constructor(private readonly file: Deno.FsFile) {}

  /** Counts written bytes; throws what a flush hit, so a failing disk ends the write early. */
  wrote(bytes: number): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#unflushed += bytes;
    if (this.#unflushed < WRITEBACK_BYTES || this.#pending !== undefined) return;
    this.#unflushed = 0;
    this.#pending = this.file.syncData()
      .catch((error) => void (this.#failure ??= error))
      .finally(() => this.#pending = undefined);
  }

  /** Waits for a flush in flight (the file must not close under it); throws what one hit. */
  async settle(): Promise<void> {
    await this.#pending;
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/**
 * Hashes and writes `source` to `file`. Writes are synchronous on purpose: awaiting real I/O
 * between reads of a request body drops an upload to a few MB/s (notes/platform.md).
 */
async function appendSource(
  file: Deno.FsFile,
  source: ByteSource,
  hasher: Sha256Hasher,
  size: number,
  target: Target,
  expected: ExpectedContent,
): Promise<number> {
  const flush = new BackgroundFlush(file);
  try {
    for await (const chunk of source) {
      size += chunk.length;
      if (expected.size !== undefined && size > expected.size) {
        throw sizeMismatch(target, `sent more than the expected ${expected.size} bytes`);
      }
      hasher.update(chunk);
      writeAllSync(file, chunk);
      flush.wrote(chunk.length);
    }
  } catch (error) {
    await flush.settle().catch(() => {}); // The first failure is the one to report.
    throw error;
  }
  await flush.settle();
  return size;
}

/** Opens and exclusively locks the partial file still linked at `partial`. */
async function lockPartial(partial: string): Promise<Deno.FsFile> {
  while (true) {
    const file = await Deno.open(partial, { read: true, write: true, create: true });
    await file.lock(true);
    // The previous holder may have removed the path before unlocking; lock the new file then.
    const current = await Deno.stat(partial).catch(() => undefined);
    if (current !== undefined && current.ino === (await file.stat()).ino) return file;
    file.close();
  }
}

/** Verifies the finished temp file and links it into place; an existing entry wins. */
async function commit(
  tmp: string,
  target: Target,
  actual: string,
  size: number,
  expected: ExpectedContent,
): Promise<{ created: boolean; size: number }> {
  if (expected.size !== undefined && size !== expected.size) {
    throw sizeMismatch(target, `ended after ${size} bytes, not the expected ${expected.size}`);
  }
  if (actual !== expected.sha256) {
    throw new StoreError(
      "digest_mismatch",
      `Cannot store "${target.path}": content hashes to "${actual}", expected "${expected.sha256}"`,
    );
  }
  const parent = dirname(target.file);
  await Deno.mkdir(parent, { recursive: true });
  try {
    await Deno.link(tmp, target.file);
  } catch (error) {
    // A concurrent writer of the same content got there first; its file is identical.
    if (error instanceof Deno.errors.AlreadyExists) return { created: false, size };
    throw error;
  }
  const dir = await Deno.open(parent, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
  return { created: true, size };
}

async function* walk(root: string, relative: string): AsyncIterable<StoredEntry> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(join(root, relative)));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  for (const entry of entries) {
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory) {
      yield* walk(root, path);
    } else if (entry.isFile && parseStorePath(path) !== undefined) {
      // An entry deleted since the directory was read is simply skipped.
      const info = await statFile(join(root, path));
      if (info !== undefined) yield { path, ...info };
    }
  }
}
